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
 *
 * Shared accounts (jmap_account.c): a login's streams also hear of the
 * accounts of the owners who share a mailbox with it (one push_share link a
 * login and owner, made from the store's ACLs when a stream opens), under
 * that account's id. Each change of the owner's is let through a link only
 * after the login's rights on the changed mailbox are read again (the
 * store's effective rights, IMAP's): "r" for any change, "l" for a change of
 * the mailbox list. Must never: tell a login of a change in a mailbox it may
 * not see (the state of an account moves with every mailbox of it).
 */
#include "http/jmap_push.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/strmap.h"
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

/* A mailbox of the owner the login could see when last asked, and whether it
 * could read it: a deleted mailbox has no rights left to ask. */
struct share_seen {
    char *name;
    bool read;
};

/* The login's streams hear of the owner's account (shared with the login). */
struct push_share {
    struct push_account *owner, *login;
    struct push_share *next_of_owner, *next_of_login;
    struct share_seen *seen;
    size_t n_seen;
    unsigned pending;    /* types changed in what login may see since the last flush */
    uint64_t sent_state; /* the last state the login's streams were told of */
};

/* The streams of one account in this worker, and what is pending for them.
 * An account lives while it has streams, or a login's streams hear of it. */
struct push_account {
    struct jmap_push *p;
    char *owner; /* the key of jmap_push.accounts */
    struct buf account_id;
    struct jmap_push_stream *streams;
    struct push_share *sharees; /* the logins that hear of this account */
    struct push_share *shares;  /* the accounts this account's streams hear of */
    unsigned pending;           /* types changed since the last flush */
    uint64_t state;             /* the newest state heard of */
    bool state_unknown;         /* an event came without one: ask the store at the flush */
    struct event *flush;
    int64_t flushed_ms; /* monotonic: the last flush (0: never) */
};

struct jmap_push {
    struct event_base *base;
    struct jmap *j;
    unsigned coalesce_ms;
    void (*watch)(void *ctx, const char *owner, bool on);
    void *watch_ctx;
    struct strmap accounts; /* owner -> struct push_account (base/strmap.h) */
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

static void share_free(struct push_share *l);

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
    for (struct strmap_slot *e = NULL; (e = strmap_next(&p->accounts, e)) != NULL;) {
        struct push_account *a = e->val.ptr;
        while (a->streams) {
            struct jmap_push_stream *s = a->streams;
            a->streams = s->next;
            free(s);
        }
        while (a->shares) { /* each link once: from its login's side */
            struct push_share *l = a->shares;
            a->shares = l->next_of_login;
            share_free(l);
        }
        account_free(a);
    }
    strmap_free(&p->accounts);
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

/* own: the stream's own account, whose state is the EventSource event id and
 * the WebSocket pushState (a client resumes from it); a shared account's
 * event carries neither, so the id a client resumes from stays its own. */
static void event_text_make(const struct jmap_push_stream *s, const struct buf *account_id,
                            bool own, unsigned t, uint64_t st, struct event_text *e)
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
    json_t *sc =
        json_pack("{s:s, s:{s:o}}", "@type", "StateChange", "changed", account_id->data, changed);
    if (s->io->json && own)
        json_object_set_new(sc, "pushState", json_string(state));
    char *data = json_dumps(sc, JSON_COMPACT);
    if (s->io->json)
        buf_append_cstr(&e->out, data);
    else if (own)
        buf_printf(&e->out, "event: state\nid: %s\ndata: %s\n\n", state, data);
    else
        buf_printf(&e->out, "event: state\ndata: %s\n\n", data);
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
    event_text_make(s, &s->acct->account_id, true, t, st, e);
    s->io->write(s->ctx, e->out.data, e->out.len);
    s->sent_state = st;
    ping_arm(s);
    return s->close_after_state;
}

/* The same for a change of the shared account of link l (the link keeps the state told). */
static bool stream_send_shared(struct jmap_push_stream *s, const struct push_share *l,
                               unsigned types, uint64_t st, struct event_text *e)
{
    unsigned t = types & s->types;
    if (t == 0)
        return false;
    event_text_make(s, &l->owner->account_id, false, t, st, e);
    s->io->write(s->ctx, e->out.data, e->out.len);
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

static struct push_account *account_find(const struct jmap_push *p, const char *owner)
{
    struct strmap_slot *e = strmap_find(&p->accounts, owner);
    return e ? e->val.ptr : NULL;
}

bool jmap_push_listening(const struct jmap_push *p, const char *owner)
{
    const struct push_account *a = account_find(p, owner);
    return a != NULL && a->streams != NULL;
}

static void account_flush(evutil_socket_t fd, short what, void *arg);

/* The account of owner, made (and its events subscribed to) when it is new. */
static struct push_account *account_get(struct jmap_push *p, const char *owner)
{
    struct push_account *a = account_find(p, owner);
    if (a != NULL)
        return a;
    a = xcalloc(1, sizeof(*a));
    a->p = p;
    a->owner = xstrdup(owner);
    buf_init(&a->account_id);
    jmap_account_id(owner, &a->account_id);
    a->flush = evtimer_new(p->base, account_flush, a);
    bool added;
    strmap_add(&p->accounts, a->owner, &added)->val.ptr = a;
    if (p->watch)
        p->watch(p->watch_ctx, owner, true);
    return a;
}

/* Frees a once nothing needs it: no stream of its own, no login hearing of it. */
static void account_put(struct push_account *a)
{
    struct jmap_push *p = a->p;
    if (a->streams != NULL || a->sharees != NULL || a->shares != NULL)
        return;
    strmap_del(&p->accounts, a->owner, NULL);
    if (p->watch)
        p->watch(p->watch_ctx, a->owner, false);
    account_free(a);
}

static void share_free(struct push_share *l)
{
    for (size_t i = 0; i < l->n_seen; i++)
        free(l->seen[i].name);
    free(l->seen);
    free(l);
}

/* Unlinks l from both its accounts and frees it; the owner's account goes
 * when nothing else needs it (the login's is the caller's to put). */
static void share_drop(struct push_share *l)
{
    struct push_account *o = l->owner;
    for (struct push_share **pp = &o->sharees; *pp; pp = &(*pp)->next_of_owner) {
        if (*pp == l) {
            *pp = l->next_of_owner;
            break;
        }
    }
    for (struct push_share **pp = &l->login->shares; *pp; pp = &(*pp)->next_of_login) {
        if (*pp == l) {
            *pp = l->next_of_login;
            break;
        }
    }
    share_free(l);
    account_put(o);
}

/* Unlinks and frees a stream; its account goes with its last stream (with
 * the links of what it heard of). */
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
        while (a->shares)
            share_drop(a->shares);
        account_put(a);
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

/* The streams a flush ended (closeafter=state), removed after it: removing
 * one may free accounts and links the flush still walks. */
struct ended {
    struct jmap_push_stream **v;
    size_t n;
};

static void ended_add(struct ended *e, struct jmap_push_stream *s)
{
    e->v = xreallocarray(e->v, e->n + 1, sizeof(*e->v));
    e->v[e->n++] = s;
}

static void account_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct push_account *a = arg;
    unsigned types = a->pending;
    a->flushed_ms = monotonic_ms();
    uint64_t st = a->state_unknown || a->state == 0 ? account_state(a->p, a->owner) : a->state;
    a->pending = 0;
    a->state = 0;
    a->state_unknown = false;
    struct ended ended = {NULL, 0};
    struct event_text e = {0, BUF_INIT};
    for (struct jmap_push_stream *s = a->streams; s; s = s->next)
        if (stream_send(s, types, st, &e))
            ended_add(&ended, s);
    for (struct push_share *l = a->sharees; l; l = l->next_of_owner) {
        unsigned t = l->pending;
        l->pending = 0;
        if (t == 0 || st <= l->sent_state)
            continue;
        l->sent_state = st;
        struct event_text le = {0, BUF_INIT};
        for (struct jmap_push_stream *s = l->login->streams; s; s = s->next)
            if (stream_send_shared(s, l, t, st, &le))
                ended_add(&ended, s);
        buf_free(&le.out);
    }
    buf_free(&e.out);
    /* a may be gone after this */
    for (size_t i = 0; i < ended.n; i++) {
        const struct jmap_push_io *io = ended.v[i]->io;
        void *ctx = ended.v[i]->ctx;
        stream_remove(ended.v[i]);
        io->end(ctx);
    }
    free(ended.v);
}

/* ---- what a login may hear of a shared account ---- */

static struct share_seen *seen_find(struct push_share *l, const char *name)
{
    for (size_t i = 0; i < l->n_seen; i++)
        if (strcmp(l->seen[i].name, name) == 0)
            return &l->seen[i];
    return NULL;
}

/* Records (rights "l" or "r") or forgets (neither) what the login may see of name. */
static void seen_set(struct push_share *l, const char *name, bool listed, bool read)
{
    struct share_seen *v = seen_find(l, name);
    if (v == NULL && (listed || read)) {
        l->seen = xreallocarray(l->seen, l->n_seen + 1, sizeof(*l->seen));
        v = &l->seen[l->n_seen++];
        v->name = xstrdup(name);
    } else if (v != NULL && !listed && !read) {
        free(v->name);
        *v = l->seen[--l->n_seen];
        return;
    }
    if (v != NULL)
        v->read = read;
}

/* The types of a change to the owner's mailbox name that the login may hear
 * of: its effective rights read now (store_acl_rights, what IMAP asks).
 * list_change: the mailbox list changed (created, renamed to name,
 * (un)subscribed): told with "l"; else its messages or flags: with "r".
 * A mailbox that is gone (deleted) is told to those who could see it. */
static unsigned share_types(struct jmap_push *p, struct push_share *l, const char *name,
                            bool list_change)
{
    struct buf rights = BUF_INIT, err = BUF_INIT;
    unsigned t = 0;
    int rc = store_acl_rights(p->j->store, l->owner->owner, name, l->login->owner, &rights, &err);
    if (rc == 0) {
        bool listed = strchr(buf_cstr(&rights), 'l') != NULL;
        bool read = strchr(buf_cstr(&rights), 'r') != NULL;
        seen_set(l, name, listed, read);
        t = read ? T_ALL : listed && list_change ? T_MAILBOX : 0;
    } else if (rc == 1) {
        struct share_seen *v = seen_find(l, name);
        t = v == NULL ? 0 : v->read ? T_ALL : T_MAILBOX;
        if (v)
            seen_set(l, name, false, false);
    }
    buf_free(&rights);
    buf_free(&err);
    return t;
}

/* Makes the links of login's account a match the owners who share with it now
 * (a mailbox with "l" or "r"); the others are dropped. */
static void shares_refresh(struct jmap_push *p, struct push_account *a)
{
    struct store_acl_share *sh = NULL;
    size_t n = 0;
    struct buf err = BUF_INIT;
    if (store_acl_shared(p->j->store, a->owner, &sh, &n, &err) != 0) {
        buf_free(&err);
        return; /* the links it had stay: each change is checked again anyway */
    }
    buf_free(&err);
    struct push_share *keep = NULL;
    for (size_t i = 0; i < n; i++) {
        bool listed = strchr(sh[i].rights, 'l') != NULL, read = strchr(sh[i].rights, 'r') != NULL;
        if (!listed && !read)
            continue;
        struct push_share *l = a->shares;
        while (l != NULL && strcmp(l->owner->owner, sh[i].owner) != 0)
            l = l->next_of_login;
        if (l == NULL) {
            for (l = keep; l != NULL && strcmp(l->owner->owner, sh[i].owner) != 0;)
                l = l->next_of_login;
        } else {
            /* out of the old list, into the kept one */
            for (struct push_share **pp = &a->shares; *pp; pp = &(*pp)->next_of_login) {
                if (*pp == l) {
                    *pp = l->next_of_login;
                    break;
                }
            }
            l->next_of_login = keep;
            keep = l;
            for (size_t k = 0; k < l->n_seen; k++)
                free(l->seen[k].name);
            l->n_seen = 0;
        }
        if (l == NULL) {
            l = xcalloc(1, sizeof(*l));
            l->login = a;
            l->owner = account_get(p, sh[i].owner);
            l->next_of_owner = l->owner->sharees;
            l->owner->sharees = l;
            l->sent_state = account_state(p, sh[i].owner);
            l->next_of_login = keep;
            keep = l;
        }
        seen_set(l, sh[i].mailbox, listed, read);
    }
    store_acl_shared_free(sh, n);
    while (a->shares) /* those that share nothing any more */
        share_drop(a->shares);
    a->shares = keep;
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
    struct push_account *a = account_get(p, user);
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
    /* a client learns of new shares from the session state and opens a new stream */
    shares_refresh(p, a);
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
    const char *owner, *name, *old_name = NULL;
    unsigned types;
    uint64_t st;
    if (ev->type == IPC_EVENT_MAILBOX_CHANGED) {
        owner = ev->u.mailbox_changed.owner;
        name = ev->u.mailbox_changed.mailbox;
        st = ev->u.mailbox_changed.account_state;
        types = T_ALL;
    } else if (ev->type == IPC_EVENT_MAILBOX_LIST) {
        owner = ev->u.mailbox_list.owner;
        name = ev->u.mailbox_list.name;
        old_name = ev->u.mailbox_list.old_name;
        st = ev->u.mailbox_list.account_state;
        types = T_MAILBOX;
    } else
        return;
    struct push_account *a = owner ? account_find(p, owner) : NULL;
    if (a == NULL)
        return;
    bool due = false;
    if (a->streams != NULL) {
        a->pending |= types;
        due = true;
    }
    for (struct push_share *l = a->sharees; l; l = l->next_of_owner) {
        if (l->pending == T_ALL && types == T_ALL)
            continue; /* told of everything already: no rights to read again */
        unsigned t = name ? share_types(p, l, name, types == T_MAILBOX) & types : 0;
        if (old_name != NULL)
            seen_set(l, old_name, false, false); /* renamed: share_types saw the new name */
        l->pending |= t;
        due = due || t != 0;
    }
    if (!due)
        return;
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
