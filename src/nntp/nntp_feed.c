/*
 * nntp_feed.c - the nntpfeed component: outbound NNTP feeds (the nntp-feed
 * row of the ports table). One process for the whole server pushes the new
 * articles of the groups each peer of nntp_feed_to is fed, with streaming
 * CHECK/TAKETHIS (RFC 4644) when the peer advertises STREAMING, else IHAVE
 * (RFC 3977 6.3.2).
 *
 * What to send is a durable queue in the store (store_feed_*): when the
 * store's change events say a public folder changed (and once at start),
 * the articles past each peer's cursor in its fed groups are queued in the
 * same transaction that moves the cursor; an entry leaves the queue only on
 * an answer that settles it (239, 235, 438, 435, 439, 437); any other answer
 * or a lost connection leaves it for a later try, with back-off. So an
 * article acknowledged with 240/239/235 reaches each peer however this
 * process or the server crashes; one sent again after a crash between the
 * peer's answer and the removal is refused by the peer as a duplicate.
 *
 * The NEWNEWS pulls of nntp_pull_from (nntp_pull.c) run here too, on the
 * same loop and store: one process talks to the peers, in both directions.
 *
 * Must never: send a peer an article whose Path names it, remove an entry
 * the peer has not answered for, block the loop on the network, or poll
 * the store for work (events and retry timers only).
 */
#include "nntp/nntp.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "ipc/component_loop.h"
#include "ipc/event.h"
#include "net/dotstuff.h"
#include "net/net.h"
#include "net/net_tls_client.h"
#include "nntp/nntp_article.h"
#include "nntp/nntp_client.h"
#include "nntp/nntp_groups.h"
#include "nntp/nntp_parse.h"
#include "nntp/nntp_pull.h"
#include "store/store.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

/* A reply line longer than this is no NNTP reply: the connection is dropped. */
#define FEED_MAX_REPLY 2048

enum peer_state {
    P_IDLE, /* no connection */
    P_GREETING,
    P_CAPS,      /* sent CAPABILITIES */
    P_CAPS_LIST, /* reading its list */
    P_MODE,      /* sent MODE STREAM */
    P_READY,
};

enum feed_cmd { C_CHECK, C_TAKETHIS, C_IHAVE, C_IHAVE_SEND };

struct pending_cmd {
    enum feed_cmd cmd;
    size_t item;
};

struct feeder;

struct peer {
    struct feeder *f;
    char *name;    /* its Path identity */
    char *addr;    /* "ADDRESS:PORT", for the log and the status */
    char *wildmat; /* the groups it is fed */
    struct nntp_link link;
    enum peer_state st;
    bool caps_streaming, streaming;
    struct event *timer; /* reconnect after back-off, or the next entry due */
    int64_t backoff_ms;
    /* the batch in flight: entries read from the queue, offered in order */
    struct store_feed_item *items;
    size_t n_items, next;
    struct pending_cmd *fifo; /* commands awaiting their reply, in order */
    size_t fifo_head, fifo_len;
    char **done; /* msgids answered for (pointers into items) */
    size_t n_done;
    bool answered; /* the batch got an answer: the peer works, back-off reset */
    /* figures for `wharf status` */
    uint64_t sent, duplicates, refused, deferred, queued;
    char last_error[160];
};

struct feeder {
    const struct wharf_config *cfg;
    struct component_loop *loop;
    struct event_base *base;
    struct store *store;
    struct nntp_dialer *dialer;
    struct ssl_ctx_st *tls; /* made as root, then the dialer's */
    struct buf tls_err;
    struct peer *peers;
    size_t n_peers;
    struct event *scan_ev;      /* a scan of the fed groups, once the loop is free */
    struct nntp_puller *puller; /* NEWNEWS pulls (nntp_pull.c) */
};

static void peer_pump(struct peer *p);
static void peer_kick(struct peer *p);

/* ---- the queue: what changed in the fed groups goes in ---- */

static struct slice header_of(struct slice a)
{
    for (size_t i = 0; i + 3 < a.len; i++)
        if (memcmp(a.ptr + i, "\r\n\r\n", 4) == 0)
            return slice_make(a.ptr, i + 2);
    return a;
}

/* Queues the articles of g past p's cursor; false on a store failure. */
static bool scan_group(struct feeder *f, struct peer *p, const struct nntp_group *g)
{
    struct buf err = BUF_INIT, data = BUF_INIT;
    uint32_t cursor;
    struct store_message *list = NULL;
    size_t n = 0;
    bool ok = false;
    if (store_feed_cursor(f->store, p->name, g->id, &cursor, &err) != 0 ||
        store_message_list_id(f->store, STORE_PUBLIC_OWNER, g->id, cursor + 1, &list, &n, &err) !=
            0)
        goto out;
    if (n == 0) {
        ok = true;
        goto out;
    }
    struct store_feed_item *items = xcalloc(n, sizeof(*items));
    size_t k = 0;
    int64_t now = wallclock_ms();
    for (size_t i = 0; i < n; i++) {
        int rc =
            store_message_read_id(f->store, STORE_PUBLIC_OWNER, g->id, list[i].uid, &data, &err);
        if (rc < 0)
            goto free_items;
        if (rc > 0)
            continue; /* expunged meanwhile */
        struct slice h = header_of(buf_slice(&data));
        struct slice id = nntp_header_field(h, "Message-ID");
        struct slice path = nntp_header_field(h, "Path");
        if (!nntp_msgid_valid(id))
            continue; /* no article a news server would take */
        if (path.ptr && nntp_path_has(path, slice_from_cstr(p->name)))
            continue; /* it came from there */
        items[k++] = (struct store_feed_item){
            .msgid = slice_strdup(id), .mailbox_id = g->id, .uid = list[i].uid, .due = now};
    }
    if (store_feed_enqueue(f->store, p->name, g->id, list[n - 1].uid, items, k, &err) != 0)
        goto free_items;
    p->queued += k;
    ok = true;
    if (k)
        log_info("feed %s: %zu new article%s of %s queued", p->name, k, k == 1 ? "" : "s", g->name);
free_items:
    for (size_t i = 0; i < k; i++)
        free(items[i].msgid);
    free(items);
out:
    if (!ok)
        log_error("feed %s: cannot queue the articles of %s: %s", p->name, g->name, buf_cstr(&err));
    store_message_list_free(list, n);
    buf_free(&data);
    buf_free(&err);
    return ok;
}

static void on_scan(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct feeder *f = arg;
    struct nntp_groups groups;
    struct buf err = BUF_INIT;
    if (nntp_groups_load(f->store, &groups, &err) != 0) {
        log_error("feed: cannot list the newsgroups: %s", buf_cstr(&err));
        buf_free(&err);
        return;
    }
    buf_free(&err);
    for (size_t i = 0; i < f->n_peers; i++) {
        struct peer *p = &f->peers[i];
        for (size_t k = 0; k < groups.n; k++)
            if (nntp_wildmat(slice_from_cstr(p->wildmat), slice_from_cstr(groups.v[k].name)))
                scan_group(f, p, &groups.v[k]);
        peer_kick(p);
    }
    nntp_groups_free(&groups);
}

static void scan_soon(struct feeder *f)
{
    if (!evtimer_pending(f->scan_ev, NULL))
        event_active(f->scan_ev, EV_TIMEOUT, 0);
}

static void on_event(void *arg, const struct ipc_event *ev)
{
    struct feeder *f = arg;
    const char *owner = ipc_event_owner(ev);
    if (owner && strcmp(owner, STORE_PUBLIC_OWNER) == 0)
        scan_soon(f);
}

/* ---- one peer's connection ---- */

static int64_t backoff_next(const struct feeder *f, int64_t prev)
{
    int64_t lo = f->cfg->nntp_feed_retry_min, hi = f->cfg->nntp_feed_retry_max;
    int64_t d = prev <= 0 ? lo : prev * 2;
    return d > hi ? hi : d < lo ? lo : d;
}

/* The answered entries leave the queue (one transaction). */
static void flush_done(struct peer *p)
{
    struct buf err = BUF_INIT;
    if (store_feed_done(p->f->store, p->name, p->done, p->n_done, &err) != 0)
        log_error("feed %s: cannot remove answered entries: %s", p->name, buf_cstr(&err));
    p->n_done = 0;
    buf_free(&err);
}

static void batch_free(struct peer *p)
{
    flush_done(p);
    store_feed_items_free(p->items, p->n_items);
    p->items = NULL;
    p->n_items = p->next = 0;
    free(p->fifo);
    p->fifo = NULL;
    p->fifo_head = p->fifo_len = 0;
    free(p->done);
    p->done = NULL;
}

static void peer_close(struct peer *p, const char *why, bool backoff)
{
    nntp_link_close(&p->link);
    batch_free(p);
    p->st = P_IDLE;
    if (why) {
        snprintf(p->last_error, sizeof(p->last_error), "%s", why);
        log_warning("feed %s (%s): %s", p->name, p->addr, why);
    }
    if (backoff) {
        p->backoff_ms = backoff_next(p->f, p->backoff_ms);
        struct timeval tv = clock_timeval_ms(p->backoff_ms);
        evtimer_add(p->timer, &tv);
    }
}

static void settle(struct peer *p, size_t i, uint64_t *figure)
{
    p->done[p->n_done++] = p->items[i].msgid;
    (*figure)++;
}

static void retry_later(struct peer *p, size_t i, const char *why)
{
    struct store_feed_item *it = &p->items[i];
    int64_t d = p->f->cfg->nntp_feed_retry_min;
    for (uint32_t a = 0; a < it->attempts && d < p->f->cfg->nntp_feed_retry_max; a++)
        d *= 2;
    if (d > p->f->cfg->nntp_feed_retry_max)
        d = p->f->cfg->nntp_feed_retry_max;
    struct buf err = BUF_INIT;
    if (store_feed_retry(p->f->store, p->name, it->msgid, wallclock_ms() + d, &err) != 0)
        log_error("feed %s: %s", p->name, buf_cstr(&err));
    buf_free(&err);
    p->deferred++;
    log_info("feed %s: %s deferred (%s)", p->name, it->msgid, why);
}

static void push_cmd(struct peer *p, enum feed_cmd cmd, size_t item)
{
    p->fifo[(p->fifo_head + p->fifo_len) % p->n_items] = (struct pending_cmd){cmd, item};
    p->fifo_len++;
}

/* The group name of a folder id (NULL: none), for an article that has no Newsgroups field. */
static char *group_name(struct peer *p, int64_t mailbox_id)
{
    struct nntp_groups groups;
    struct buf err = BUF_INIT;
    char *name = NULL;
    if (nntp_groups_load(p->f->store, &groups, &err) == 0) {
        for (size_t i = 0; i < groups.n && name == NULL; i++)
            if (groups.v[i].id == mailbox_id)
                name = xstrdup(groups.v[i].name);
        nntp_groups_free(&groups);
    }
    buf_free(&err);
    return name;
}

/* Writes item i's article, dot-stuffed and ended (after TAKETHIS or 335). An
 * article that came in by mail or IMAP gets the Path and Newsgroups a peer
 * requires. False when the article is gone. */
static bool send_article(struct peer *p, size_t i)
{
    struct store_feed_item *it = &p->items[i];
    struct buf data = BUF_INIT, err = BUF_INIT;
    int rc = store_message_read_id(p->f->store, STORE_PUBLIC_OWNER, it->mailbox_id, it->uid, &data,
                                   &err);
    if (rc != 0) {
        if (rc < 0)
            log_error("feed %s: cannot read %s: %s", p->name, it->msgid, buf_cstr(&err));
        buf_free(&data);
        buf_free(&err);
        return false;
    }
    struct evbuffer *out = bufferevent_get_output(p->link.bev);
    struct slice a = buf_slice(&data), h = header_of(a);
    char *group =
        nntp_header_field(h, "Newsgroups").ptr == NULL ? group_name(p, it->mailbox_id) : NULL;
    struct buf extra = BUF_INIT;
    nntp_article_missing_fields(h, p->f->cfg->myhostname, group, &extra);
    evbuffer_add(out, extra.data, extra.len);
    buf_free(&extra);
    free(group);
    struct dotstuff ds = DOTSTUFF_INIT;
    dotstuff_evbuffer(&ds, a, out);
    dotstuff_end_evbuffer(&ds, out);
    buf_free(&data);
    buf_free(&err);
    return true;
}

/* Loads the next batch of due entries; false when there is none now (the timer
 * is set for the next one due). */
static bool batch_load(struct peer *p)
{
    batch_free(p);
    struct buf err = BUF_INIT;
    struct store_feed_item *v;
    size_t n;
    size_t window = (size_t)p->f->cfg->nntp_feed_window;
    if (store_feed_pending(p->f->store, p->name, window, &v, &n, NULL, &err) != 0) {
        log_error("feed %s: cannot read the queue: %s", p->name, buf_cstr(&err));
        buf_free(&err);
        return false;
    }
    buf_free(&err);
    int64_t now = wallclock_ms();
    size_t ready = 0;
    while (ready < n && v[ready].due <= now)
        ready++;
    if (ready < n && !evtimer_pending(p->timer, NULL)) {
        struct timeval tv = clock_timeval_ms(v[ready].due - now);
        evtimer_add(p->timer, &tv);
    }
    if (ready == 0) {
        store_feed_items_free(v, n);
        return false;
    }
    for (size_t i = ready; i < n; i++)
        free(v[i].msgid);
    p->items = v;
    p->n_items = ready;
    p->fifo = xcalloc(ready, sizeof(*p->fifo));
    p->done = xcalloc(ready, sizeof(*p->done));
    p->answered = false;
    return true;
}

/* Offers what the window allows; a finished batch is settled and the next one loaded. */
static void peer_pump(struct peer *p)
{
    if (p->st != P_READY)
        return;
    for (int round = 0; round < 64; round++) {
        if (p->next == p->n_items && p->fifo_len == 0) {
            if (p->answered)
                p->backoff_ms = 0;
            if (!batch_load(p))
                return;
        }
        size_t window = p->streaming ? p->n_items : 1;
        while (p->next < p->n_items && p->fifo_len < window) {
            size_t i = p->next++;
            nntp_peer_send(p->link.bev, "%s %s", p->streaming ? "CHECK" : "IHAVE",
                           p->items[i].msgid);
            push_cmd(p, p->streaming ? C_CHECK : C_IHAVE, i);
        }
        if (p->fifo_len > 0)
            return;
    }
}

/* One reply to the oldest command in flight. */
static void on_reply(struct peer *p, int code, struct slice text)
{
    if (p->fifo_len == 0) {
        peer_close(p, "a reply to no command", true);
        return;
    }
    struct pending_cmd c = p->fifo[p->fifo_head];
    p->fifo_head = (p->fifo_head + 1) % p->n_items;
    p->fifo_len--;
    p->answered = true;
    size_t i = c.item;
    /* The peer's words, after the Message-ID a streaming answer repeats (RFC 4644): cut
     * at 40 bytes with it, a reason was never seen. */
    struct slice words = text;
    const char *close =
        words.len > 0 && words.ptr[0] == '<' ? memchr(words.ptr, '>', words.len) : NULL;
    if (close != NULL)
        words = slice_trim(slice_make(close + 1, words.len - (size_t)(close + 1 - words.ptr)));
    char why[160];
    snprintf(why, sizeof(why), "%d %.*s", code, (int)(words.len < 120 ? words.len : 120),
             words.ptr);
    switch (c.cmd) {
    case C_CHECK:
        if (code == 238) {
            nntp_peer_send(p->link.bev, "TAKETHIS %s", p->items[i].msgid);
            if (!send_article(p, i))
                nntp_peer_send(p->link.bev,
                               "."); /* gone since: an empty article, which the peer refuses */
            push_cmd(p, C_TAKETHIS, i);
        } else if (code == 438) {
            settle(p, i, &p->duplicates);
        } else {
            retry_later(p, i, why);
        }
        break;
    case C_TAKETHIS:
    case C_IHAVE_SEND:
        if (code == 239 || code == 235)
            settle(p, i, &p->sent);
        else if (code == 439 || code == 437)
            settle(p, i, &p->refused);
        else if (code == 435)
            settle(p, i, &p->duplicates);
        else
            retry_later(p, i, why);
        if (code == 439 || code == 437)
            log_info("feed %s: %s refused: %s", p->name, p->items[i].msgid, why);
        break;
    case C_IHAVE:
        if (code == 335) {
            if (!send_article(p, i))
                nntp_peer_send(p->link.bev, ".");
            push_cmd(p, C_IHAVE_SEND, i);
        } else if (code == 435) {
            settle(p, i, &p->duplicates);
        } else if (code == 437) {
            settle(p, i, &p->refused);
        } else {
            retry_later(p, i, why);
        }
        break;
    }
    peer_pump(p);
}

/* The session is set up: offer what is queued. */
static void peer_ready(struct peer *p, bool streaming)
{
    p->streaming = streaming;
    p->st = P_READY;
    log_info("feed %s: connected to %s, %s", p->name, p->addr,
             p->streaming ? "streaming (CHECK/TAKETHIS)" : "IHAVE");
    peer_pump(p);
}

static void on_line(struct peer *p, struct slice line)
{
    int code = 0;
    struct slice text = SLICE_NULL;
    if (p->st == P_CAPS_LIST) {
        if (line.len == 1 && line.ptr[0] == '.') {
            if (p->caps_streaming) {
                nntp_peer_send(p->link.bev, "MODE STREAM");
                p->st = P_MODE;
            } else {
                peer_ready(p, false);
            }
        } else if (line.len >= 9 && strncasecmp(line.ptr, "STREAMING", 9) == 0 &&
                   (line.len == 9 || line.ptr[9] == ' ')) {
            p->caps_streaming = true;
        }
        return;
    }
    if (!nntp_parse_reply(line, &code, &text)) {
        peer_close(p, "not an NNTP reply", true);
        return;
    }
    switch (p->st) {
    case P_GREETING:
        if (code != 200 && code != 201) {
            char why[200];
            snprintf(why, sizeof(why), "greeting %d %.*s", code,
                     (int)(text.len < 120 ? text.len : 120), text.ptr);
            peer_close(p, why, true);
            return;
        }
        nntp_peer_send(p->link.bev, "CAPABILITIES");
        p->st = P_CAPS;
        break;
    case P_CAPS:
        if (code == 101) {
            p->st = P_CAPS_LIST;
        } else { /* no CAPABILITIES (RFC 977 servers): ask for streaming all the same */
            nntp_peer_send(p->link.bev, "MODE STREAM");
            p->st = P_MODE;
        }
        break;
    case P_MODE:
        peer_ready(p, code == 203);
        break;
    case P_READY:
        on_reply(p, code, text);
        break;
    default:
        break;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (p->link.bev) {
        size_t n;
        char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
        if (line == NULL) {
            if (evbuffer_get_length(in) > FEED_MAX_REPLY)
                peer_close(p, "reply line too long", true);
            return;
        }
        if (n > FEED_MAX_REPLY) {
            free(line);
            peer_close(p, "reply line too long", true);
            return;
        }
        on_line(p, slice_make(line, n));
        free(line);
    }
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    struct peer *p = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED)
        return;
    if ((what & BEV_EVENT_TIMEOUT) && p->st == P_READY && p->fifo_len == 0) {
        peer_close(p, NULL, false); /* idle: closed, opened again for the next article */
        return;
    }
    struct buf why = BUF_INIT;
    peer_close(p, nntp_link_error(&p->link, what, &why), true);
    buf_free(&why);
}

static void peer_connect(struct peer *p)
{
    struct buf err = BUF_INIT;
    p->st = P_GREETING;
    p->caps_streaming = p->streaming = false;
    if (nntp_link_open(&p->link, &err) != 0)
        peer_close(p, buf_cstr(&err), true);
    buf_free(&err);
}

/* There may be work: connect (unless waiting out a back-off), or offer more. */
static void peer_kick(struct peer *p)
{
    if (p->st == P_READY) {
        peer_pump(p);
        return;
    }
    if (p->st != P_IDLE || evtimer_pending(p->timer, NULL))
        return;
    struct store_feed_item *v;
    size_t n;
    struct buf err = BUF_INIT;
    if (store_feed_pending(p->f->store, p->name, 1, &v, &n, NULL, &err) != 0) {
        log_error("feed %s: cannot read the queue: %s", p->name, buf_cstr(&err));
        buf_free(&err);
        return;
    }
    buf_free(&err);
    int64_t due = n ? v[0].due : 0;
    store_feed_items_free(v, n);
    if (n == 0)
        return;
    int64_t now = wallclock_ms();
    if (due > now) {
        struct timeval tv = clock_timeval_ms(due - now);
        evtimer_add(p->timer, &tv);
        return;
    }
    peer_connect(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    peer_kick(arg);
}

/* ---- the process ---- */

static void on_status(void *arg, json_t *obj)
{
    struct feeder *f = arg;
    json_t *peers = json_object();
    for (size_t i = 0; i < f->n_peers; i++) {
        struct peer *p = &f->peers[i];
        uint64_t total = 0;
        struct store_feed_item *v = NULL;
        size_t n = 0;
        struct buf err = BUF_INIT;
        if (store_feed_pending(f->store, p->name, 0, &v, &n, &total, &err) == 0)
            store_feed_items_free(v, n);
        buf_free(&err);
        json_object_set_new(
            peers, p->name,
            json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:s}", "address", p->addr, "state",
                      p->st == P_READY  ? "connected"
                      : p->st == P_IDLE ? "idle"
                                        : "connecting",
                      "streaming", p->streaming, "backlog", (json_int_t)total, "sent",
                      (json_int_t)p->sent, "duplicates", (json_int_t)p->duplicates, "refused",
                      (json_int_t)p->refused, "deferred", (json_int_t)p->deferred, "last_error",
                      p->last_error));
    }
    json_object_set_new(obj, "peers", peers);
    if (f->puller)
        nntp_pull_status(f->puller, obj);
}

/* A pull stored an article: readers and the outbound feeds are told. */
static void pulled(void *arg, const char *mailbox)
{
    struct feeder *f = arg;
    struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                           .u.mailbox_changed = {.owner = STORE_PUBLIC_OWNER, .mailbox = mailbox}};
    control_publish(f->loop->control, &ev);
    if (f->n_peers)
        scan_soon(f);
}

static int feed_check_config(const struct wharf_config *cfg, struct buf *err)
{
    if (nntp_peer_list_check(&cfg->nntp_feed_to, "nntp_feed_to", err) != 0 ||
        !net_addr_source_list_check(&cfg->nntp_feed_source_address, "nntp_feed_source_address",
                                    err))
        return -1;
    return nntp_pull_check_config(cfg, err);
}

/* Still root: the CA file of nntp_feed_tls_ca_file is the admin's to place. */
static void feed_as_root(void *arg)
{
    struct feeder *f = arg;
    f->tls = net_tls_client_ctx_new(f->cfg->nntp_feed_tls_ca_file, &f->tls_err);
}

static int feed_main(struct component_ctx *ctx)
{
    struct feeder f = {.cfg = ctx->cfg};
    const struct component_hooks hooks = {
        .as_root = feed_as_root, .status = on_status, .event = on_event, .arg = &f};
    f.loop = component_loop_start(ctx, &hooks);
    f.base = f.loop->base;
    struct buf err = BUF_INIT;
    if (feed_check_config(f.cfg, &err) != 0)
        log_fatal(EX_CONFIG, "%s", buf_cstr(&err));
    f.store = store_open(f.cfg, &err);
    if (f.store == NULL)
        log_fatal(EX_TEMPFAIL, "cannot open the store: %s", buf_cstr(&err));
    if (f.tls == NULL)
        log_fatal(EX_CONFIG, "feed: %s", buf_cstr(&f.tls_err));
    buf_free(&f.tls_err);
    f.dialer = nntp_dialer_new(f.base, f.cfg, f.tls);
    f.n_peers = f.cfg->nntp_feed_to.n;
    f.peers = f.n_peers ? xcalloc(f.n_peers, sizeof(*f.peers)) : NULL;
    struct buf w = BUF_INIT;
    for (size_t i = 0; i < f.n_peers; i++) {
        struct nntp_peer_spec ps;
        const char *why;
        nntp_peer_spec_parse(slice_from_cstr(f.cfg->nntp_feed_to.v[i]), &ps, &why);
        struct peer *p = &f.peers[i];
        p->f = &f;
        p->name = slice_strdup(ps.name);
        p->addr = slice_strdup(ps.addr);
        nntp_link_init(&p->link, f.dialer, &ps, on_read, on_bev_event, p);
        buf_reset(&w);
        nntp_peer_spec_wildmat(&ps, &w);
        p->wildmat = xstrdup(buf_cstr(&w));
        p->timer = evtimer_new(f.base, on_timer, p);
        log_info("feed %s: to %s%s, groups %s", p->name, p->addr, p->link.tls ? " (TLS)" : "",
                 p->wildmat);
    }
    buf_free(&w);
    buf_free(&err);
    f.scan_ev = evtimer_new(f.base, on_scan, &f);
    if (f.n_peers) {
        /* what changed in the public folders; a scan at start catches up on the rest */
        control_subscribe(f.loop->control, IPC_EVENT_MAILBOX_CHANGED, IPC_SUBSCRIBE_OWNER,
                          STORE_PUBLIC_OWNER);
        control_subscribe(f.loop->control, IPC_EVENT_MAILBOX_LIST, IPC_SUBSCRIBE_OWNER,
                          STORE_PUBLIC_OWNER);
        scan_soon(&f);
    }
    if (f.cfg->nntp_pull_from.n)
        f.puller = nntp_pull_new(f.cfg, f.store, f.dialer, pulled, &f);
    int rc = component_loop_run(f.loop);
    nntp_pull_free(f.puller);
    for (size_t i = 0; i < f.n_peers; i++) {
        struct peer *p = &f.peers[i];
        peer_close(p, NULL, false);
        nntp_link_free(&p->link);
        event_free(p->timer);
        free(p->name);
        free(p->addr);
        free(p->wildmat);
    }
    free(f.peers);
    event_free(f.scan_ev);
    nntp_dialer_free(f.dialer);
    store_close(f.store);
    component_loop_free(f.loop);
    return rc;
}

const struct component_def nntpfeed_component = {
    .name = "nntpfeed",
    .exchange_name = "NNTP",
    .kind = COMPONENT_SINGLETON,
    .main = feed_main,
    .job = "pushes new articles to the news servers of nntp_feed_to, pulls from nntp_pull_from",
    .check_config = feed_check_config,
};
