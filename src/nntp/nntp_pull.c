/*
 * nntp_pull.c - NEWNEWS pulls from news servers that only let us read
 * (nntp_pull_from), in the nntpfeed process beside the outbound feeds.
 *
 * Every nntp_pull_interval, per peer: connect, MODE READER, DATE (the
 * peer's clock: what the next pull asks from), NEWNEWS WILDMAT since the
 * last successful pull (kept in the store, store_pull_*), then ARTICLE for
 * each listed Message-ID the history (store_msgid_find) does not hold,
 * pipelined up to nntp_feed_window. Each article read (the dot reader,
 * CRLF only) gets the checks of an inbound feed: nntp_article_check for a
 * peer's article, the Message-ID asked for, no Path naming this server (a
 * loop), groups that exist here and match the peer's wildmat; then our Path
 * entry is put in front and the articles go to the store in batches, one
 * store_deliver each, with unique_msgid (each article once, however many
 * peers list it). The pull's date moves only when every article it listed
 * was settled, so a pull cut short is asked again from the same date.
 *
 * Must never: store an article whose Path names this server, store one
 * twice, move the date past articles not yet stored, or block the loop on
 * the network.
 */
#include "nntp/nntp_pull.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "ipc/event.h"
#include "net/dotread.h"
#include "nntp/nntp_article.h"
#include "nntp/nntp_client.h"
#include "nntp/nntp_groups.h"
#include "nntp/nntp_parse.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PULL_MAX_LINE 2048 /* a status or list line longer than this: the peer is dropped */
#define PULL_BATCH 64      /* articles per store_deliver */

enum pull_state {
    S_IDLE,
    S_GREETING,
    S_MODE,    /* sent MODE READER */
    S_DATE,    /* sent DATE */
    S_NEWNEWS, /* sent NEWNEWS, waiting for 230 */
    S_LIST,    /* reading its list */
    S_FETCH,   /* ARTICLEs in flight, waiting for a status line */
    S_ARTICLE, /* reading an article (the dot reader) */
};

struct pull {
    struct nntp_puller *pl;
    char *name, *addr, *wildmat;
    struct nntp_link link;
    enum pull_state st;
    struct event *timer;
    int64_t since;   /* what this pull asks from */
    int64_t started; /* the peer's DATE at its start: the next pull's since */
    char **want;     /* Message-IDs to fetch */
    size_t n_want, cap_want, sent, answered;
    bool incomplete; /* an article could not be settled: the date stays */
    struct dotread rd;
    struct buf art;
    /* articles read, waiting for their store_deliver */
    struct buf *batch;
    size_t n_batch;
    /* figures for `wharf status` */
    uint64_t pulls, fetched, stored, duplicates, refused;
    char last_error[160];
};

struct nntp_puller {
    const struct wharf_config *cfg;
    struct event_base *base;
    struct store *store;
    struct nntp_dialer *dialer;
    void (*changed)(void *arg, const char *mailbox);
    void *arg;
    struct pull *v;
    size_t n;
};

static void pull_schedule(struct pull *p, int64_t ms)
{
    struct timeval tv = clock_timeval_ms(ms);
    evtimer_add(p->timer, &tv);
}

static void want_free(struct pull *p)
{
    for (size_t i = 0; i < p->n_want; i++)
        free(p->want[i]);
    free(p->want);
    p->want = NULL;
    p->n_want = p->cap_want = p->sent = p->answered = 0;
}

static void batch_drop(struct pull *p)
{
    for (size_t i = 0; i < p->n_batch; i++)
        buf_free(&p->batch[i]);
    p->n_batch = 0;
}

/* The pull ends (why NULL: it worked); the next one after nntp_pull_interval. */
static void pull_end(struct pull *p, const char *why)
{
    nntp_link_close(&p->link);
    want_free(p);
    batch_drop(p);
    buf_reset(&p->art);
    p->st = S_IDLE;
    if (why) {
        snprintf(p->last_error, sizeof(p->last_error), "%s", why);
        log_warning("pull %s (%s): %s", p->name, p->addr, why);
    }
    pull_schedule(p, p->pl->cfg->nntp_pull_interval);
}

/* The articles read go to the store in one transaction; false on a store failure. */
static bool batch_store(struct pull *p)
{
    if (p->n_batch == 0)
        return true;
    struct nntp_puller *pl = p->pl;
    struct nntp_groups groups;
    struct buf err = BUF_INIT;
    if (nntp_groups_load(pl->store, &groups, &err) != 0) {
        log_error("pull %s: cannot list the newsgroups: %s", p->name, buf_cstr(&err));
        buf_free(&err);
        return false;
    }
    struct store_delivery *d = xcalloc(p->n_batch, sizeof(*d));
    struct store_target *t = NULL;
    size_t n_t = 0, n_d = 0;
    /* targets first (their array must not move once deliveries point into it) */
    size_t *first = xcalloc(p->n_batch, sizeof(*first)),
           *count = xcalloc(p->n_batch, sizeof(*count));
    for (size_t i = 0; i < p->n_batch; i++) {
        struct slice a = buf_slice(&p->batch[i]);
        const char *end = memmem(a.ptr, a.len, "\r\n\r\n", 4);
        struct slice h = slice_make(a.ptr, end ? (size_t)(end - a.ptr) + 2 : a.len);
        struct slice ng = nntp_header_field(h, "Newsgroups"), rest = ng, name;
        first[i] = n_t;
        while (nntp_newsgroups_next(&rest, &name)) {
            const struct nntp_group *g = nntp_groups_find(&groups, name);
            if (g == NULL || !nntp_wildmat(slice_from_cstr(p->wildmat), name))
                continue;
            bool seen = false;
            for (size_t k = first[i]; k < n_t; k++)
                seen |= strcmp(t[k].mailbox, g->mailbox) == 0;
            if (seen)
                continue;
            t = xreallocarray(t, n_t + 1, sizeof(*t));
            t[n_t++] = (struct store_target){
                .owner = STORE_PUBLIC_OWNER, .mailbox = xstrdup(g->mailbox), .must_exist = true};
        }
        count[i] = n_t - first[i];
    }
    for (size_t i = 0; i < p->n_batch; i++) {
        if (count[i] == 0) {
            p->refused++;
            continue;
        }
        d[n_d++] = (struct store_delivery){.data = buf_slice(&p->batch[i]),
                                           .targets = t + first[i],
                                           .n_targets = count[i],
                                           .unique_msgid = true};
    }
    bool ok = store_deliver(pl->store, d, n_d, &err) == 0;
    if (!ok)
        log_error("pull %s: cannot store %zu article(s): %s", p->name, n_d, buf_cstr(&err));
    for (size_t i = 0; ok && i < n_d; i++) {
        bool stored = false, dup = false;
        for (size_t k = 0; k < d[i].n_targets; k++) {
            if (d[i].targets[k].status == STORE_OK) {
                stored = true;
                pl->changed(pl->arg, d[i].targets[k].mailbox);
            }
            dup |= d[i].targets[k].status == STORE_DUPLICATE;
        }
        if (stored)
            p->stored++;
        else if (dup)
            p->duplicates++;
        else
            p->incomplete = true; /* a group that could not take it now: asked again */
    }
    if (ok)
        log_info("pull %s: %zu article(s) read, %zu stored in one commit", p->name, p->n_batch,
                 n_d);
    for (size_t k = 0; k < n_t; k++)
        free((char *)t[k].mailbox);
    free(t);
    free(d);
    free(first);
    free(count);
    nntp_groups_free(&groups);
    buf_free(&err);
    batch_drop(p);
    return ok;
}

/* An article read whole for want[i]: checked, our Path entry put in front, batched. */
static void article_take(struct pull *p, size_t i)
{
    struct slice a = buf_slice(&p->art);
    struct nntp_article_info info;
    const char *why = NULL;
    p->fetched++;
    if (dotread_failed(&p->rd))
        why = p->rd.oversize ? "too large (nntp_max_article_size)" : "bare CR or LF";
    else if (!nntp_article_check(a, true, &info, &why))
        ;
    else if (!slice_eq(info.message_id, slice_from_cstr(p->want[i])))
        why = "not the Message-ID asked for";
    else if (nntp_path_has(info.path, slice_from_cstr(p->pl->cfg->myhostname)))
        why = "its Path names this server (a loop)";
    if (why) {
        p->refused++;
        log_info("pull %s: %s refused: %s", p->name, p->want[i], why);
        return;
    }
    struct buf *b = &p->batch[p->n_batch++];
    buf_init(b);
    nntp_article_rebuild(a, &info, p->pl->cfg->myhostname, SLICE_NULL, b);
}

/* Asks for what the window allows. */
static void fetch_more(struct pull *p)
{
    size_t window = (size_t)p->pl->cfg->nntp_feed_window;
    while (p->sent < p->n_want && p->sent - p->answered < window)
        nntp_peer_send(p->link.bev, "ARTICLE %s", p->want[p->sent++]);
}

/* Every listed article is settled (or could not be): store, then the date moves. */
static void pull_finish(struct pull *p)
{
    if (!batch_store(p)) {
        pull_end(p, "the store cannot take the articles now");
        return;
    }
    struct buf err = BUF_INIT;
    if (!p->incomplete && store_pull_set(p->pl->store, p->name, p->started, &err) != 0)
        log_error("pull %s: cannot keep its date: %s", p->name, buf_cstr(&err));
    buf_free(&err);
    p->pulls++;
    log_info("pull %s: done, %zu new, %s", p->name, p->n_want,
             p->incomplete ? "some to ask again" : "date moved");
    p->last_error[0] = '\0';
    pull_end(p, NULL);
}

/* One Message-ID of the NEWNEWS list. */
static void list_entry(struct pull *p, struct slice id)
{
    if (!nntp_msgid_valid(id))
        return;
    for (size_t i = 0; i < p->n_want; i++)
        if (slice_eq(id, slice_from_cstr(p->want[i])))
            return;
    struct store_msgid_hit *hits;
    size_t n;
    struct buf err = BUF_INIT;
    int rc = store_msgid_find(p->pl->store, STORE_PUBLIC_OWNER, id, &hits, &n, &err);
    buf_free(&err);
    if (rc != 0) {
        p->incomplete = true;
        return;
    }
    free(hits);
    if (n > 0)
        return; /* the history has it */
    if (p->n_want == p->cap_want) {
        p->cap_want = p->cap_want ? p->cap_want * 2 : 64;
        p->want = xreallocarray(p->want, p->cap_want, sizeof(*p->want));
    }
    p->want[p->n_want++] = slice_strdup(id);
}

static void newnews_send(struct pull *p)
{
    time_t t = (time_t)p->since;
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y%m%d %H%M%S", &tm);
    nntp_peer_send(p->link.bev, "NEWNEWS %s %s GMT", p->wildmat, when);
    log_info("pull %s: NEWNEWS %s since %s", p->name, p->wildmat, when);
    p->st = S_NEWNEWS;
}

/* "111 yyyymmddhhmmss": the peer's time (the NEWNEWS date parser), or -1. */
static int64_t parse_date(struct slice text)
{
    int64_t t;
    if (text.len < 14 || !nntp_parse_datetime(slice_make(text.ptr, 8), slice_make(text.ptr + 8, 6),
                                              wallclock_ms() / 1000, &t))
        return -1;
    return t;
}

static void on_status_line(struct pull *p, struct slice line)
{
    int code;
    struct slice text;
    char why[200];
    if (!nntp_parse_reply(line, &code, &text)) {
        pull_end(p, "not an NNTP reply");
        return;
    }
    snprintf(why, sizeof(why), "%d %.*s", code, (int)(text.len < 120 ? text.len : 120), text.ptr);
    switch (p->st) {
    case S_GREETING:
        if (code != 200 && code != 201) {
            pull_end(p, why);
            return;
        }
        nntp_peer_send(p->link.bev, "MODE READER");
        p->st = S_MODE;
        break;
    case S_MODE:
        if (code != 200 && code != 201) {
            pull_end(p, why);
            return;
        }
        nntp_peer_send(p->link.bev, "DATE");
        p->st = S_DATE;
        break;
    case S_DATE:
        p->started = code == 111 ? parse_date(text) : -1;
        if (p->started < 0)
            p->started = wallclock_ms() / 1000; /* no DATE: our clock */
        newnews_send(p);
        break;
    case S_NEWNEWS:
        if (code != 230) {
            pull_end(p, why);
            return;
        }
        p->st = S_LIST;
        break;
    case S_FETCH:
        if (code == 220) {
            struct dotread_limits lim = {
                .max_size = p->pl->cfg->nntp_max_article_size,
                .newline = DOTREAD_NEWLINE_REJECT,
            };
            buf_reset(&p->art);
            dotread_init(&p->rd, &lim, false, false, &p->art);
            p->st = S_ARTICLE;
            return;
        }
        if (code == 430) { /* gone since it was listed */
            p->answered++;
            fetch_more(p);
            break;
        }
        pull_end(p, why);
        return;
    default:
        break;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct pull *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (p->link.bev) {
        if (p->st == S_ARTICLE) {
            if (dotread_feed_evbuffer(&p->rd, in) != DOTREAD_DONE)
                return;
            article_take(p, p->answered++);
            p->st = S_FETCH;
            if (p->n_batch == PULL_BATCH && !batch_store(p)) {
                pull_end(p, "the store cannot take the articles now");
                return;
            }
            if (p->answered == p->n_want) {
                pull_finish(p);
                return;
            }
            fetch_more(p);
            continue;
        }
        if (p->st == S_FETCH && p->answered == p->n_want) {
            pull_finish(p);
            return;
        }
        size_t n;
        char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
        if (line == NULL) {
            if (evbuffer_get_length(in) > PULL_MAX_LINE)
                pull_end(p, "reply line too long");
            return;
        }
        struct slice l = slice_make(line, n);
        if (n > PULL_MAX_LINE) {
            free(line);
            pull_end(p, "reply line too long");
            return;
        }
        if (p->st == S_LIST) {
            if (n == 1 && line[0] == '.') {
                p->st = S_FETCH;
                log_info("pull %s: %zu new article(s) listed", p->name, p->n_want);
                if (p->n_want == 0) {
                    free(line);
                    pull_finish(p);
                    return;
                }
                fetch_more(p);
            } else {
                list_entry(p, slice_trim(l));
            }
        } else {
            on_status_line(p, l);
        }
        free(line);
    }
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    struct pull *p = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED)
        return;
    struct buf why = BUF_INIT;
    pull_end(p, nntp_link_error(&p->link, what, &why));
    buf_free(&why);
}

static void pull_start(struct pull *p)
{
    struct buf err = BUF_INIT;
    if (store_pull_since(p->pl->store, p->name, &p->since, &err) != 0) {
        log_error("pull %s: cannot read its date: %s", p->name, buf_cstr(&err));
        buf_free(&err);
        pull_schedule(p, p->pl->cfg->nntp_pull_interval);
        return;
    }
    buf_free(&err);
    p->st = S_GREETING;
    p->incomplete = false;
    if (nntp_link_open(&p->link, &err) != 0)
        pull_end(p, buf_cstr(&err));
    buf_free(&err);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pull *p = arg;
    if (p->st == S_IDLE)
        pull_start(p);
}

int nntp_pull_check_config(const struct wharf_config *cfg, struct buf *err)
{
    return nntp_peer_list_check(&cfg->nntp_pull_from, "nntp_pull_from", err);
}

struct nntp_puller *nntp_pull_new(const struct wharf_config *cfg, struct store *st,
                                  struct nntp_dialer *dialer,
                                  void (*changed)(void *arg, const char *mailbox), void *arg)
{
    struct nntp_puller *pl = xcalloc(1, sizeof(*pl));
    pl->cfg = cfg;
    pl->base = dialer->base;
    pl->store = st;
    pl->dialer = dialer;
    pl->changed = changed;
    pl->arg = arg;
    pl->n = cfg->nntp_pull_from.n;
    pl->v = pl->n ? xcalloc(pl->n, sizeof(*pl->v)) : NULL;
    struct buf w = BUF_INIT;
    for (size_t i = 0; i < pl->n; i++) {
        struct nntp_peer_spec ps;
        const char *why;
        nntp_peer_spec_parse(slice_from_cstr(cfg->nntp_pull_from.v[i]), &ps, &why);
        struct pull *p = &pl->v[i];
        p->pl = pl;
        p->name = slice_strdup(ps.name);
        p->addr = slice_strdup(ps.addr);
        nntp_link_init(&p->link, dialer, &ps, on_read, on_bev_event, p);
        buf_reset(&w);
        nntp_peer_spec_wildmat(&ps, &w);
        p->wildmat = xstrdup(buf_cstr(&w));
        p->timer = evtimer_new(pl->base, on_timer, p);
        p->batch = xcalloc(PULL_BATCH, sizeof(*p->batch));
        buf_init(&p->art);
        log_info("pull %s: from %s%s, groups %s, every %lld ms", p->name, p->addr,
                 p->link.tls ? " (TLS)" : "", p->wildmat, (long long)cfg->nntp_pull_interval);
        pull_schedule(p, 0); /* the first pull at start */
    }
    buf_free(&w);
    return pl;
}

void nntp_pull_status(const struct nntp_puller *pl, json_t *obj)
{
    json_t *pulls = json_object();
    for (size_t i = 0; i < pl->n; i++) {
        const struct pull *p = &pl->v[i];
        json_object_set_new(pulls, p->name,
                            json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "address",
                                      p->addr, "state", p->st == S_IDLE ? "idle" : "pulling",
                                      "pulls", (json_int_t)p->pulls, "fetched",
                                      (json_int_t)p->fetched, "stored", (json_int_t)p->stored,
                                      "duplicates", (json_int_t)p->duplicates, "refused",
                                      (json_int_t)p->refused, "last_error", p->last_error));
    }
    json_object_set_new(obj, "pulls", pulls);
}

void nntp_pull_free(struct nntp_puller *pl)
{
    if (pl == NULL)
        return;
    for (size_t i = 0; i < pl->n; i++) {
        struct pull *p = &pl->v[i];
        nntp_link_free(&p->link);
        want_free(p);
        batch_drop(p);
        free(p->batch);
        buf_free(&p->art);
        event_free(p->timer);
        free(p->name);
        free(p->addr);
        free(p->wildmat);
    }
    free(pl->v);
    free(pl);
}
