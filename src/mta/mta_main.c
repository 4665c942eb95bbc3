/*
 * mta_main.c - the mta process (on the component skeleton, ipc/component_loop.h): store and
 * directory handles, the delivery batch, deliver.sock, spool pickup, the
 * maildrop's pickup (mta_pickup.h) and outbound delivery (mta_out.h).
 *
 * Singleton: the only process that writes the store on the delivery path
 * while wharfd runs, so concurrent deliveries share one fsync. Never
 * outlives wharfd (control.h) and never runs as root.
 */
#include "mta/mta_stats.h"
#include "mta/mta.h"
#include "base/clock.h"
#include "base/alloc.h"
#include "base/log.h"
#include "ipc/component_loop.h"
#include "ipc/frame.h"
#include "mta/local.h"
#include "mta/mta_batch.h"
#include "mta/mta_out.h"
#include "mta/mta_pickup.h"
#include "mta/mta_queue.h"
#include "mta/mta_remove.h"
#include "mta/mta_server.h"
#include "spool/spool.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sysexits.h>

struct mta {
    const struct wharf_config *cfg;
    struct event_base *base;
    struct control *ctrl;
    struct store *store;
    struct directory *dir;
    struct mta_batch batch;
    struct mta_server *server;
    struct mta_queue *queue;
    struct mta_out *out;
    struct mta_pickup *pickup;
    struct event *scan_ev;
    /* the full-text index's top-up when no delivery is going on (on_text_topup) */
    struct event *topup_ev;
    uint64_t topup_jobs;                 /* batch.n_jobs at the last look */
    int64_t topup_version;               /* store_data_version at the last look */
    int64_t topup_waited;                /* ms the top-up has waited for the store to be quiet */
    uint64_t topup_runs, topup_deferred; /* for wharf status */
    bool topup_behind;                   /* the last tick was deferred or left bodies to index */
    unsigned quiet_ticks; /* top-up ticks in a row with nothing delivered or indexed */
    /* the organization's routes (doc/routing.md, "Queues"): the routing process's table,
     * looked at every ROUTES_WATCH_MS; a change of its routes makes waiting mail due */
    struct event *routes_ev;
    char *routes_path;
    struct stat routes_st;
    char *routes; /* the last "routes" seen, compact JSON */
    bool stopping;
};

#define ROUTES_WATCH_MS 200

static void on_routes_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct mta *m = arg;
    struct stat st;
    if (stat(m->routes_path, &st) != 0 ||
        (st.st_ino == m->routes_st.st_ino && st.st_size == m->routes_st.st_size &&
         st.st_mtim.tv_sec == m->routes_st.st_mtim.tv_sec &&
         st.st_mtim.tv_nsec == m->routes_st.st_mtim.tv_nsec))
        return;
    m->routes_st = st;
    json_t *t = json_load_file(m->routes_path, 0, NULL);
    char *routes = json_dumps(json_object_get(t, "routes"), JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(t);
    if (routes == NULL || (m->routes != NULL && strcmp(routes, m->routes) == 0)) {
        free(routes);
        return;
    }
    bool first = m->routes == NULL;
    free(m->routes);
    m->routes = routes;
    size_t n = first ? 0 : mta_queue_routes_changed(m->queue);
    if (n > 0)
        log_info("the organization's routes changed: %zu queue entries waiting for them are due "
                 "now",
                 n);
}

static void on_mailbox_changed(void *arg, const char *account, const char *mailbox)
{
    struct mta *m = arg;
    struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                           .u.mailbox_changed = {.owner = account, .mailbox = mailbox}};
    control_publish(m->ctrl, &ev);
}

/* The store's data version (store_data_version); when it cannot be read, the
 * last tick's, as if nobody had committed since (logged). */
static int64_t store_version(struct mta *m)
{
    int64_t v;
    struct buf err = BUF_INIT;
    if (store_data_version(m->store, &v, &err) != 0) {
        log_warning("text index top-up: %s", buf_cstr(&err));
        v = m->topup_version;
    }
    buf_free(&err);
    return v;
}

static void on_status(void *arg, json_t *obj)
{
    struct mta *m = arg;
    json_object_set_new(obj, "connections",
                        json_integer((json_int_t)mta_server_connections(m->server)));
    json_object_set_new(obj, "batches", json_integer((json_int_t)m->batch.n_batches));
    json_object_set_new(obj, "deliveries", json_integer((json_int_t)m->batch.n_jobs));
    json_object_set_new(obj, "maildrop", json_integer((json_int_t)mta_pickup_waiting(m->pickup)));
    json_object_set_new(obj, "waiting_outbound",
                        json_integer((json_int_t)mta_queue_deferred(m->queue)));
    json_object_set_new(obj, "sending", json_integer((json_int_t)mta_out_active(m->out)));
    json_object_set_new(obj, "outbound_sessions",
                        json_integer((json_int_t)mta_out_sessions(m->out)));
    int64_t oldest = mta_queue_oldest(m->queue);
    json_object_set_new(obj, "oldest_age",
                        json_integer(oldest ? (json_int_t)(time(NULL) - oldest) : 0));
    json_object_set_new(obj, "text_topups", json_integer((json_int_t)m->topup_runs));
    json_object_set_new(obj, "text_topups_deferred", json_integer((json_int_t)m->topup_deferred));
    /* behind: bodies are known to wait, or someone committed since the last tick */
    json_object_set_new(obj, "text_index_behind",
                        json_integer(m->topup_behind || store_version(m) != m->topup_version));
    mta_stats_status(obj);
}

static void out_spooled(void *arg, const char *id)
{
    struct mta *m = arg;
    mta_queue_take(m->queue, id);
}

static void out_done(void *arg, const char *id, int64_t next_attempt_ms, int64_t org_since)
{
    struct mta *m = arg;
    mta_queue_outbound_done(m->queue, id, next_attempt_ms, org_since);
}

/* The SRS sender of a message relayed to another domain (doc/mta-out.md), or NULL. */
static char *srs_sender(struct mta *m, const struct spool_envelope *env)
{
    struct buf srs = BUF_INIT, err = BUF_INIT;
    int rc = directory_srs_forward(m->dir, env->sender, &srs, &err);
    if (rc < 0)
        log_warning("%s: SRS: %s: the sender is sent unchanged", env->id, buf_cstr(&err));
    else if (rc > 0)
        log_info("%s: from=<%s>, srs=<%s>", env->id, env->sender, srs.data);
    buf_free(&err);
    if (rc > 0)
        return buf_steal(&srs, NULL);
    buf_free(&srs);
    return NULL;
}

static void hook_deliver(void *arg, struct spool_message *sm, const bool *remote)
{
    struct mta *m = arg;
    /* front-ends: accounts homed on another server go there (local.h) */
    size_t n = sm->env.n_rcpts;
    char **homes = xcalloc(n ? n : 1, sizeof(*homes));
    struct buf home = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (remote[i] && sm->env.rcpts[i].state == SPOOL_RCPT_PENDING &&
            local_home_elsewhere(m->dir, sm->env.rcpts[i].address, &home))
            homes[i] = xstrdup(buf_cstr(&home));
    }
    buf_free(&home);
    mta_out_deliver(m->out, sm, remote, homes, srs_sender(m, &sm->env));
    for (size_t i = 0; i < n; i++)
        free(homes[i]);
    free(homes);
}

static void hook_bounce(void *arg, const struct spool_message *sm, const bool *failed,
                        char *const *diag, const char *const *enh)
{
    struct mta *m = arg;
    mta_out_bounce_local(m->out, sm, failed, diag, enh);
}

static void hook_notice(void *arg, const char *about, const char *to, struct slice data,
                        const char *what)
{
    struct mta *m = arg;
    mta_out_spool_notice(m->out, about, to, data, false, false, what);
}

static bool hook_route_id(void *arg, struct slice data, struct buf *out)
{
    struct mta *m = arg;
    return mta_out_route_id(m->out, data, out);
}

static void on_shutdown(void *arg, int64_t deadline_ms)
{
    struct mta *m = arg;
    if (m->stopping)
        return; /* a signal and wharfd's request: one drain */
    m->stopping = true;
    /* no new outbound attempt (it would be cut short); bounces still go to the spool */
    const struct mta_queue_outbound hook = {NULL, hook_bounce, m, hook_notice, hook_route_id};
    mta_queue_set_outbound(m->queue, &hook);
    mta_server_stop_accepting(m->server);
    mta_pickup_stop(m->pickup);
    mta_batch_flush(&m->batch);          /* answer everyone who is waiting */
    struct timeval tv = {0, 100 * 1000}; /* let the replies leave */
    event_base_loopexit(m->base, &tv);
}

_Static_assert((int)IPC_QUEUE_FLUSH == (int)SPOOL_CTL_FLUSH &&
                   (int)IPC_QUEUE_HOLD == (int)SPOOL_CTL_HOLD &&
                   (int)IPC_QUEUE_RELEASE == (int)SPOOL_CTL_RELEASE &&
                   (int)IPC_QUEUE_REQUEUE == (int)SPOOL_CTL_REQUEUE,
               "ipc_queue_action mirrors spool_ctl");

/* `wharf queue` (the event's queue id is checked by the decoder, ipc/event.c). */
static void on_queue_ctl(struct mta *m, const struct ipc_event_queue_ctl *q)
{
    bool del = q->action == IPC_QUEUE_DELETE;
    enum spool_ctl c = del ? SPOOL_CTL_FLUSH : (enum spool_ctl)q->action;
    mta_queue_control(m->queue, q->queue_id, del, c);
}

static void on_event(void *arg, const struct ipc_event *ev)
{
    struct mta *m = arg;
    if (m->stopping)
        return;
    if (ev->type == IPC_EVENT_QUEUE_CTL)
        on_queue_ctl(m, &ev->u.queue_ctl);
    else if (ev->type == IPC_EVENT_SPOOL_NEW)
        mta_queue_take(m->queue, ev->u.spool_new.queue_id);
}

static void on_scan(evutil_socket_t fd, short what, void *arg)
{
    struct mta *m = arg;
    if (m->stopping)
        return;
    mta_queue_scan(m->queue);
    struct buf err = BUF_INIT;
    if (store_dedupe_expire(m->store, m->cfg->mta_dedupe_max_age / 1000, &err) != 0 ||
        store_gc(m->store, &err) != 0)
        log_warning("store maintenance: %s", buf_cstr(&err));
    buf_free(&err);
    struct timeval tv = clock_timeval_ms(m->cfg->mta_scan_interval);
    evtimer_add(m->scan_ev, &tv);
}

/*
 * The store's full-text index is never written by a delivery (doc/store.md,
 * "Full-text index"): a search tops up what its mailboxes received since, and
 * this timer indexes the rest a little at a time (TOPUP_MESSAGES a tick,
 * one write transaction of the store's), only when the store is quiet: the
 * last tick saw no delivery of ours, none waits in the batch, and no other
 * process committed to the store since the last tick (store_data_version: an
 * nntp worker taking a stream of articles, an lda, IMAP flag changes). So the
 * first search after a burst of mail finds most of it indexed, and during the
 * burst the top-up takes neither the store's write lock nor a CPU from the
 * deliveries (a lone NNTP poster waited for a whole top-up transaction before
 * its commit; bench/README.md). A store busy for TOPUP_IDLE_MS on end still
 * gets one tick's worth, so the index is never left behind for good. It runs
 * every TOPUP_BUSY_MS while there is work, every TOPUP_IDLE_MS otherwise.
 * Once a whole TOPUP_IDLE_MS passed with neither, the store's page cache
 * (full after a burst) and the heap's free pages go back to the system,
 * once a quiet spell.
 */
#define TOPUP_MESSAGES 64
#define TOPUP_BUSY_MS 200
#define TOPUP_IDLE_MS 5000

/* Whether the store has been quiet since the last tick (or waited for long enough). */
static bool topup_quiet(struct mta *m)
{
    bool ours = m->batch.n == 0 && m->batch.n_jobs == m->topup_jobs;
    m->topup_jobs = m->batch.n_jobs;
    int64_t v = store_version(m);
    bool store_quiet = v == m->topup_version;
    m->topup_version = v;
    if (ours && (store_quiet || m->topup_waited >= TOPUP_IDLE_MS))
        return true;
    m->topup_waited += TOPUP_BUSY_MS;
    m->topup_deferred++;
    m->topup_behind = true;
    return false;
}

static void on_text_topup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct mta *m = arg;
    if (m->stopping)
        return;
    int64_t next = TOPUP_BUSY_MS;
    bool quiet = false;
    if (topup_quiet(m)) {
        struct buf err = BUF_INIT;
        size_t n = 0;
        if (store_text_topup(m->store, TOPUP_MESSAGES, &n, &err) != 0)
            log_warning("text index top-up: %s", buf_cstr(&err));
        buf_free(&err);
        m->topup_runs++;
        m->topup_waited = 0;
        m->topup_behind = n >= TOPUP_MESSAGES;
        if (n < TOPUP_MESSAGES)
            next = TOPUP_IDLE_MS;
        quiet = n == 0;
    }
    m->quiet_ticks = quiet ? m->quiet_ticks + 1 : 0;
    if (m->quiet_ticks == 2) { /* the second in a row: TOPUP_IDLE_MS of quiet */
        store_release_memory(m->store);
        alloc_trim();
    }
    struct timeval tv = clock_timeval_ms(next);
    evtimer_add(m->topup_ev, &tv);
}

int mta_main(struct component_ctx *ctx)
{
    struct mta m = {.cfg = ctx->cfg};
    const struct component_hooks hooks = {.priorities = 3,
                                          .status = on_status,
                                          .shutdown = on_shutdown,
                                          .event = on_event,
                                          .arg = &m};
    struct component_loop *loop = component_loop_start(ctx, &hooks);
    m.base = loop->base;
    m.ctrl = loop->control;
    control_subscribe(m.ctrl, IPC_EVENT_SPOOL_NEW, IPC_SUBSCRIBE_ALL, NULL);
    control_subscribe(m.ctrl, IPC_EVENT_QUEUE_CTL, IPC_SUBSCRIBE_ALL, NULL);
    struct buf err = BUF_INIT;
    if (spool_init(m.cfg, &err) != 0)
        log_fatal(EX_UNAVAILABLE, "spool: %s", buf_cstr(&err));
    m.store = store_open(m.cfg, &err);
    if (m.store == NULL)
        log_fatal(EX_UNAVAILABLE, "%s", buf_cstr(&err));
    m.dir = directory_open(m.cfg, &err);
    if (m.dir == NULL)
        log_fatal(EX_UNAVAILABLE, "directory: %s", buf_cstr(&err));
    mta_batch_init(&m.batch, m.base, (size_t)m.cfg->mta_batch_max, m.store, m.dir,
                   on_mailbox_changed, &m);
    m.server = mta_server_start(m.base, m.cfg, &m.batch, &err);
    if (m.server == NULL)
        log_fatal(EX_UNAVAILABLE, "%s", buf_cstr(&err));
    m.queue = mta_queue_new(m.cfg, &m.batch);
    m.out = mta_out_new(m.base, m.cfg, out_spooled, out_done, &m, &err);
    if (m.out == NULL)
        log_fatal(EX_CONFIG, "outbound delivery: %s", buf_cstr(&err));
    const struct mta_queue_outbound hook = {hook_deliver, hook_bounce, &m, hook_notice,
                                            hook_route_id};
    mta_queue_set_outbound(m.queue, &hook);
    struct mta_remove *rm = mta_remove_new(m.base, m.cfg, &err);
    if (rm == NULL)
        log_fatal(EX_OSERR, "spool removal thread: %s", buf_cstr(&err));
    mta_queue_set_remove(m.queue, rm);
    mta_out_set_remove(m.out, rm);
    m.pickup = mta_pickup_new(m.base, m.cfg, m.queue, &err);
    if (m.pickup == NULL)
        log_fatal(EX_UNAVAILABLE, "%s", buf_cstr(&err));
    /* before the spool scan: an entry a crash left in both places is queued once */
    mta_pickup_recover(m.pickup);
    mta_pickup_start(m.pickup);
    m.routes_path = config_data_path(m.cfg, "routing/state.json");
    m.routes_ev = event_new(m.base, -1, EV_PERSIST, on_routes_watch, &m);
    struct timeval watch = clock_timeval_ms(ROUTES_WATCH_MS);
    evtimer_add(m.routes_ev, &watch);
    m.scan_ev = evtimer_new(m.base, on_scan, &m);
    struct timeval now = {0, 0};
    evtimer_add(m.scan_ev, &now); /* the scan at start, once the loop runs */
    m.topup_ev = evtimer_new(m.base, on_text_topup, &m);
    struct timeval topup = clock_timeval_ms(TOPUP_BUSY_MS);
    evtimer_add(m.topup_ev, &topup);
    log_info("ready: deliver.sock, batches of up to %lld", (long long)m.cfg->mta_batch_max);

    component_loop_run(loop);

    /* a flush may spool bounces, which add jobs: flush until quiet (bounded:
     * a bounce never causes another one) */
    for (int i = 0; i < 4 && m.batch.n > 0; i++)
        mta_batch_flush(&m.batch);
    mta_server_free(m.server);
    const struct mta_queue_outbound none = {0};
    mta_queue_set_outbound(m.queue, &none); /* m.out goes away now */
    mta_out_free(m.out);
    mta_pickup_free(m.pickup);
    mta_queue_free(m.queue);
    mta_batch_free(&m.batch);
    mta_remove_free(rm); /* after everything that may finish an entry */
    event_free(m.scan_ev);
    event_free(m.topup_ev);
    event_free(m.routes_ev);
    free(m.routes_path);
    free(m.routes);
    component_loop_free(loop);
    directory_close(m.dir);
    store_close(m.store);
    buf_free(&err);
    return 0;
}
