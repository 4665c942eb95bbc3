/*
 * jmap_push.c - JMAP push over EventSource (RFC 8620 7.3) and WebSocket
 * (RFC 8887, io->json), transport-free:
 * the streams of one worker grouped by account, fed by the bus's mailbox
 * events (the store's account state rides on them), coalesced per account
 * (at most one state event each coalesce_ms: the first change after a quiet
 * spell goes out once the loop has read the events that came with it, the
 * later ones of a burst at the end of the window), written as "state"
 * events whose id is the account state, with "ping" events on idle streams.
 *
 * Never polls the store: an account is read only when an event came for it
 * without its state. A stream costs one small struct (a worker may hold
 * thousands for hours): its ping is a place in the queue of the streams of
 * its interval, one timer for them all; the transport owns the bytes
 * (jmap_push_io).
 */
#include "http/jmap_push.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "http/jmap_int.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum {
    T_MAILBOX = 1u << 0,
    T_EMAIL = 1u << 1,
    T_THREAD = 1u << 2,
    T_DELIVERY = 1u << 3,
    T_ALL = 0xf,
};
static const char *const type_names[] = {"Mailbox", "Email", "Thread", "EmailDelivery"};

struct jmap_push_stream {
    struct push_account *acct;
    struct jmap_push_stream *next;
    unsigned types;
    bool close_after_state;
    uint64_t sent_state;   /* the last state this stream was told */
    struct ping_queue *pq; /* NULL when ping is 0 */
    struct jmap_push_stream *ping_prev, *ping_next;
    int64_t ping_due_ms; /* monotonic: when its ping falls due */
    const struct jmap_push_io *io;
    void *ctx;
};

/*
 * The streams that ping every ping_s seconds, in the order their pings fall
 * due: a stream goes to the back when it is sent anything (each is due
 * ping_s after its last event), so the front one is always the next due and
 * one timer serves the queue (not one a stream: ~150 bytes each, with
 * thousands of streams a worker). A queue goes with its last stream.
 */
struct ping_queue {
    struct jmap_push *p;
    struct ping_queue *next;
    unsigned ping_s;
    struct jmap_push_stream *head, *tail;
    struct event *timer;
};

/* The streams of one account in this worker, and what is pending for them. */
struct push_account {
    struct jmap_push *p;
    struct push_account *next;
    char *owner;
    struct buf account_id;
    struct jmap_push_stream *streams;
    unsigned pending;   /* types changed since the last flush */
    uint64_t state;     /* the newest state heard of */
    bool state_unknown; /* an event came without one: ask the store at the flush */
    struct event *flush;
    int64_t flushed_ms; /* monotonic: the last flush (0: never) */
};

struct jmap_push {
    struct event_base *base;
    struct jmap *j;
    unsigned coalesce_ms;
    void (*watch)(void *ctx, const char *owner, bool on);
    void *watch_ctx;
    struct push_account *accounts;
    struct ping_queue *pings;
    size_t n_streams;
};

struct jmap_push *jmap_push_new(struct event_base *base, struct jmap *j, unsigned coalesce_ms,
                                void (*watch)(void *ctx, const char *owner, bool on),
                                void *watch_ctx)
{
    struct jmap_push *p = xcalloc(1, sizeof(*p));
    p->base = base;
    p->j = j;
    p->coalesce_ms = coalesce_ms;
    p->watch = watch;
    p->watch_ctx = watch_ctx;
    return p;
}

static void account_free(struct push_account *a)
{
    event_free(a->flush);
    free(a->owner);
    buf_free(&a->account_id);
    free(a);
}

void jmap_push_free(struct jmap_push *p)
{
    if (p == NULL)
        return;
    while (p->accounts) {
        struct push_account *a = p->accounts;
        while (a->streams) {
            struct jmap_push_stream *s = a->streams;
            a->streams = s->next;
            free(s);
        }
        p->accounts = a->next;
        account_free(a);
    }
    while (p->pings) {
        struct ping_queue *q = p->pings;
        p->pings = q->next;
        event_free(q->timer);
        free(q);
    }
    free(p);
}

size_t jmap_push_streams(const struct jmap_push *p)
{
    return p->n_streams;
}

static bool ping_linked(const struct jmap_push_stream *s)
{
    return s->pq->head == s || s->ping_prev != NULL;
}

static void ping_unlink(struct jmap_push_stream *s)
{
    struct ping_queue *q = s->pq;
    if (s->ping_prev)
        s->ping_prev->ping_next = s->ping_next;
    else
        q->head = s->ping_next;
    if (s->ping_next)
        s->ping_next->ping_prev = s->ping_prev;
    else
        q->tail = s->ping_prev;
    s->ping_prev = s->ping_next = NULL;
}

/* The queue's timer at its front stream's deadline (a timer that fires early
 * finds nothing due and is set again). */
static void ping_queue_schedule(struct ping_queue *q, int64_t now)
{
    if (q->head != NULL && !evtimer_pending(q->timer, NULL)) {
        struct timeval tv = clock_timeval_ms(q->head->ping_due_ms - now);
        evtimer_add(q->timer, &tv);
    }
}

/* s was sent something: its next ping is ping_s from now, at the back. */
static void ping_arm(struct jmap_push_stream *s)
{
    struct ping_queue *q = s->pq;
    if (q == NULL)
        return;
    int64_t now = monotonic_ms();
    if (ping_linked(s))
        ping_unlink(s);
    s->ping_due_ms = now + (int64_t)q->ping_s * 1000;
    s->ping_prev = q->tail;
    if (q->tail)
        q->tail->ping_next = s;
    else
        q->head = s;
    q->tail = s;
    ping_queue_schedule(q, now);
}

static void ping_fire(evutil_socket_t fd, short what, void *arg)
{
    struct ping_queue *q = arg;
    (void)fd, (void)what;
    char line[64];
    int n = snprintf(line, sizeof(line), "event: ping\ndata: {\"interval\":%u}\n\n", q->ping_s);
    int64_t now = monotonic_ms();
    /* each stream sent to goes to the back, due ping_s later: the loop ends */
    while (q->head != NULL && q->head->ping_due_ms <= now) {
        struct jmap_push_stream *s = q->head;
        s->io->write(s->ctx, line, (size_t)n);
        ping_arm(s);
    }
    ping_queue_schedule(q, now);
}

/* Puts a new stream that pings every ping_s at the back of its queue. */
static void ping_join(struct jmap_push *p, struct jmap_push_stream *s, unsigned ping_s)
{
    struct ping_queue *q = p->pings;
    while (q != NULL && q->ping_s != ping_s)
        q = q->next;
    if (q == NULL) {
        q = xcalloc(1, sizeof(*q));
        q->p = p;
        q->ping_s = ping_s;
        q->timer = evtimer_new(p->base, ping_fire, q);
        q->next = p->pings;
        p->pings = q;
    }
    s->pq = q;
}

/* Takes s out of its ping queue; the queue goes with its last stream. */
static void ping_leave(struct jmap_push_stream *s)
{
    struct ping_queue *q = s->pq;
    if (q == NULL)
        return;
    if (ping_linked(s))
        ping_unlink(s);
    s->pq = NULL;
    if (q->head != NULL)
        return;
    for (struct ping_queue **pp = &q->p->pings; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    }
    event_free(q->timer);
    free(q);
}

/* The bytes of one state event; a flush makes them once for the streams that
 * want the same types in the same framing (an account's 100 streams: one). */
struct event_text {
    unsigned key; /* types | json << 4; 0: empty */
    struct buf out;
};

static void event_text_make(const struct jmap_push_stream *s, unsigned t, uint64_t st,
                            struct event_text *e)
{
    unsigned key = t | (s->io->json ? 1u << 4 : 0);
    if (e->key == key)
        return;
    e->key = key;
    buf_reset(&e->out);
    char state[32];
    jmap_state_string(st, state);
    json_t *changed = json_object();
    for (size_t i = 0; i < 4; i++)
        if (t & (1u << i))
            json_object_set_new(changed, type_names[i], json_string(state));
    json_t *sc = json_pack("{s:s, s:{s:o}}", "@type", "StateChange", "changed",
                           s->acct->account_id.data, changed);
    if (s->io->json)
        json_object_set_new(sc, "pushState", json_string(state));
    char *data = json_dumps(sc, JSON_COMPACT);
    if (s->io->json)
        buf_append_cstr(&e->out, data);
    else
        buf_printf(&e->out, "event: state\nid: %s\ndata: %s\n\n", state, data);
    free(data);
    json_decref(sc);
}

/* Writes a state event of types (masked by the stream's) at state st, its text
 * from e when a stream before it had the same; true when the stream must end
 * now (closeafter=state). */
static bool stream_send(struct jmap_push_stream *s, unsigned types, uint64_t st,
                        struct event_text *e)
{
    unsigned t = types & s->types;
    if (t == 0 || st <= s->sent_state)
        return false;
    event_text_make(s, t, st, e);
    s->io->write(s->ctx, e->out.data, e->out.len);
    s->sent_state = st;
    ping_arm(s);
    return s->close_after_state;
}

/* One event to one stream (a stream that opens). */
static bool stream_send_one(struct jmap_push_stream *s, unsigned types, uint64_t st)
{
    struct event_text e = {0, BUF_INIT};
    bool end = stream_send(s, types, st, &e);
    buf_free(&e.out);
    return end;
}

/* Unlinks and frees a stream; its account goes with its last stream. */
static void stream_remove(struct jmap_push_stream *s)
{
    struct push_account *a = s->acct;
    struct jmap_push *p = a->p;
    for (struct jmap_push_stream **pp = &a->streams; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    ping_leave(s);
    free(s);
    p->n_streams--;
    if (a->streams == NULL) {
        for (struct push_account **pp = &p->accounts; *pp; pp = &(*pp)->next) {
            if (*pp == a) {
                *pp = a->next;
                break;
            }
        }
        if (p->watch)
            p->watch(p->watch_ctx, a->owner, false);
        account_free(a);
    }
}

static uint64_t account_state(struct jmap_push *p, const char *owner)
{
    uint64_t st = 0;
    struct buf err = BUF_INIT;
    if (store_account_state(p->j->store, owner, &st, &err) != 0)
        st = 0;
    buf_free(&err);
    return st;
}

static void account_flush(evutil_socket_t fd, short what, void *arg)
{
    struct push_account *a = arg;
    unsigned types = a->pending;
    a->flushed_ms = monotonic_ms();
    uint64_t st = a->state_unknown || a->state == 0 ? account_state(a->p, a->owner) : a->state;
    a->pending = 0;
    a->state = 0;
    a->state_unknown = false;
    /* a stream that ends frees itself, and the account with its last one */
    struct event_text e = {0, BUF_INIT};
    struct jmap_push_stream *s = a->streams;
    while (s) {
        struct jmap_push_stream *next = s->next;
        bool last = next == NULL;
        if (stream_send(s, types, st, &e)) {
            const struct jmap_push_io *io = s->io;
            void *ctx = s->ctx;
            stream_remove(s);
            io->end(ctx);
            if (last)
                break; /* a may be gone */
        }
        s = next;
    }
    buf_free(&e.out);
}

static struct push_account *account_find(struct jmap_push *p, const char *owner)
{
    for (struct push_account *a = p->accounts; a; a = a->next)
        if (strcmp(a->owner, owner) == 0)
            return a;
    return NULL;
}

/* "Email,Mailbox" or "*" into a mask; false on an unknown or empty name. */
static bool types_parse(const char *s, unsigned *mask_r)
{
    *mask_r = 0;
    if (strcmp(s, "*") == 0) {
        *mask_r = T_ALL;
        return true;
    }
    while (*s) {
        size_t len = strcspn(s, ",");
        bool known = false;
        for (size_t i = 0; i < 4; i++) {
            if (strlen(type_names[i]) == len && strncmp(s, type_names[i], len) == 0) {
                *mask_r |= 1u << i;
                known = true;
            }
        }
        /* types of capabilities this server lacks are never pushed (RFC 8620 7.3) */
        (void)known;
        s += len;
        if (*s == ',')
            s++;
    }
    return true;
}

bool jmap_push_args_ok(const char *types, const char *closeafter, const char *ping, struct buf *err)
{
    unsigned mask;
    char *end = NULL;
    unsigned long ping_s = ping ? strtoul(ping, &end, 10) : 0;
    if (types == NULL || !types_parse(types, &mask)) {
        buf_append_cstr(err, "types must be * or a comma-separated list of type names");
        return false;
    }
    if (closeafter == NULL || (strcmp(closeafter, "state") != 0 && strcmp(closeafter, "no") != 0)) {
        buf_append_cstr(err, "closeafter must be state or no");
        return false;
    }
    if (ping == NULL || *ping < '0' || *ping > '9' || *end != '\0' || ping_s > 86400) {
        buf_append_cstr(err, "ping must be a number of seconds");
        return false;
    }
    return true;
}

struct jmap_push_stream *jmap_push_open(struct jmap_push *p, const char *user, const char *types,
                                        const char *closeafter, const char *ping,
                                        const char *last_event_id, const struct jmap_push_io *io,
                                        void *ctx, struct buf *err)
{
    if (!jmap_push_args_ok(types, closeafter, ping, err))
        return NULL;
    unsigned mask;
    types_parse(types, &mask);
    unsigned long ping_s = strtoul(ping, NULL, 10);
    /* RFC 8620 7.3: no minimum above 30 s, no maximum below 300 s */
    if (ping_s > 0 && ping_s < JMAP_PUSH_PING_MIN)
        ping_s = JMAP_PUSH_PING_MIN;
    if (ping_s > JMAP_PUSH_PING_MAX)
        ping_s = JMAP_PUSH_PING_MAX;
    struct push_account *a = account_find(p, user);
    if (a == NULL) {
        a = xcalloc(1, sizeof(*a));
        a->p = p;
        a->owner = xstrdup(user);
        buf_init(&a->account_id);
        jmap_account_id(user, &a->account_id);
        a->flush = evtimer_new(p->base, account_flush, a);
        a->next = p->accounts;
        p->accounts = a;
        if (p->watch)
            p->watch(p->watch_ctx, user, true);
    }
    struct jmap_push_stream *s = xcalloc(1, sizeof(*s));
    s->acct = a;
    s->types = mask;
    s->close_after_state = strcmp(closeafter, "state") == 0;
    s->io = io;
    s->ctx = ctx;
    if (ping_s)
        ping_join(p, s, (unsigned)ping_s);
    s->next = a->streams;
    a->streams = s;
    p->n_streams++;
    uint64_t seen = 0;
    uint64_t now = account_state(p, user);
    if (last_event_id && jmap_state_parse(last_event_id, &seen)) {
        /* missed changes are told at once (RFC 8620 7.3) */
        s->sent_state = seen;
        if (now > seen && stream_send_one(s, T_ALL, now)) {
            stream_remove(s);
            io->end(ctx);
            return NULL;
        }
    } else if (!s->close_after_state) {
        /* where the client starts from: also says the stream is listening */
        stream_send_one(s, T_ALL, now > 0 ? now : 1);
    }
    ping_arm(s);
    return s;
}

void jmap_push_close(struct jmap_push_stream *s)
{
    if (s)
        stream_remove(s);
}

void jmap_push_event(struct jmap_push *p, const struct ipc_event *ev)
{
    const char *owner;
    unsigned types;
    uint64_t st;
    if (ev->type == IPC_EVENT_MAILBOX_CHANGED) {
        owner = ev->u.mailbox_changed.owner;
        st = ev->u.mailbox_changed.account_state;
        types = T_ALL;
    } else if (ev->type == IPC_EVENT_MAILBOX_LIST) {
        owner = ev->u.mailbox_list.owner;
        st = ev->u.mailbox_list.account_state;
        types = T_MAILBOX;
    } else
        return;
    struct push_account *a = owner ? account_find(p, owner) : NULL;
    if (a == NULL)
        return;
    a->pending |= types;
    /* 0: a publisher that does not know the state; the flush asks the store */
    if (st == 0)
        a->state_unknown = true;
    else if (st > a->state)
        a->state = st;
    if (!evtimer_pending(a->flush, NULL)) {
        /* Quiet for coalesce_ms: now (after the events read with this one); else at the
         * end of the window the last flush opened. */
        int64_t wait = a->flushed_ms == 0 ? 0 : a->flushed_ms + p->coalesce_ms - monotonic_ms();
        struct timeval tv = clock_timeval_ms(wait);
        evtimer_add(a->flush, &tv);
    }
}
