/*
 * mta_pickup.c - the pickup: maildrop files into the spool (see mta_pickup.h).
 *
 * Must never: remove a maildrop file before its spool entry is durable,
 * believe a file about who wrote it, or let one bad file stop the others.
 */
#include "mta/mta_pickup.h"
#include "base/clock.h"

#include "base/alloc.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a user can leave that cannot be moved aside (a directory with files
 * in it) is logged at most this often, not at every turn. */
#define MTA_PICKUP_STUCK_LOG_S 3600

struct mta_pickup {
    const struct wharf_config *cfg;
    struct mta_queue *q;
    struct maildrop_limits lim;
    int dirfd; /* DATA/maildrop */
    struct event *ev;
    size_t waiting;
    size_t stuck;             /* entries of this turn that could not be moved */
    time_t stuck_quiet_until; /* no warnings about them before */
};

/* What became of one entry of the maildrop. */
enum pickup_result {
    PICKUP_DONE,       /* queued, or moved aside */
    PICKUP_STUCK,      /* could not be moved or removed: skipped, not counted */
    PICKUP_SPOOL_DOWN, /* the spool cannot be written: the rest waits */
};

static void on_run(evutil_socket_t fd, short what, void *arg);

struct mta_pickup *mta_pickup_new(struct event_base *base, const struct wharf_config *cfg,
                                  struct mta_queue *q, struct buf *err)
{
    char *dir = maildrop_dir(cfg);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        buf_printf(err, "cannot open the maildrop %s: %s", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    free(dir);
    struct mta_pickup *p = xcalloc(1, sizeof(*p));
    p->cfg = cfg;
    p->q = q;
    p->dirfd = fd;
    maildrop_limits_from_config(&p->lim, cfg);
    p->ev = evtimer_new(base, on_run, p);
    return p;
}

/* Counts an entry that is stuck; true when it is time to say so. */
static bool stuck(struct mta_pickup *p)
{
    p->stuck++;
    return time(NULL) >= p->stuck_quiet_until;
}

/* Removes a picked-up file; its spool entry is durable already. */
static enum pickup_result remove_file(struct mta_pickup *p, const char *name, const char *id)
{
    if (unlinkat(p->dirfd, name, 0) == 0 && fsync(p->dirfd) == 0)
        return PICKUP_DONE;
    if (stuck(p))
        log_error("%s: cannot remove maildrop file %s: %s (it is recognised as queued)", id, name,
                  strerror(errno));
    return PICKUP_STUCK;
}

static enum pickup_result set_aside(struct mta_pickup *p, const char *name, uid_t uid,
                                    const char *why)
{
    struct buf err = BUF_INIT;
    enum pickup_result r = PICKUP_DONE;
    if (spool_set_aside(p->cfg, p->dirfd, name, &err) == 0) {
        log_warning("maildrop file %s (uid %u): %s: moved to spool/corrupt", name, (unsigned)uid,
                    why);
    } else {
        r = PICKUP_STUCK;
        if (stuck(p))
            log_warning("maildrop file %s (uid %u): %s: %s", name, (unsigned)uid, why,
                        buf_cstr(&err));
    }
    buf_free(&err);
    return r;
}

/* The spool id of file name, or false when it is no file of ours. */
static bool file_id(struct mta_pickup *p, const char *name, uid_t *uid_r, char id_r[32])
{
    struct stat st;
    if (!maildrop_name_valid(name) || fstatat(p->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return false;
    *uid_r = st.st_uid;
    maildrop_spool_id(name, st.st_uid, id_r);
    return true;
}

void mta_pickup_recover(struct mta_pickup *p)
{
    char **names;
    size_t n;
    struct buf err = BUF_INIT;
    if (maildrop_list(p->dirfd, false, &names, &n, &err) != 0)
        log_error("%s", buf_cstr(&err));
    for (size_t i = 0; i < n; i++) {
        char id[32];
        uid_t uid;
        if (file_id(p, names[i], &uid, id) && spool_exists(p->cfg, id)) {
            log_info("%s: maildrop file %s was queued before a restart", id, names[i]);
            remove_file(p, names[i], id);
        }
    }
    spool_list_free(names, n);
    buf_free(&err);
}

static enum pickup_result pickup_one(struct mta_pickup *p, const char *name)
{
    char id[32];
    uid_t uid = (uid_t)-1;
    if (!file_id(p, name, &uid, id)) {
        struct stat st;
        if (fstatat(p->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return PICKUP_DONE; /* gone */
        return set_aside(p, name, st.st_uid, "not a maildrop file name");
    }
    if (spool_exists(p->cfg, id)) /* queued, then the mta stopped before the removal */
        return remove_file(p, name, id);
    struct maildrop_entry e;
    struct stat st;
    struct buf err = BUF_INIT;
    int r = maildrop_read(p->dirfd, name, &p->lim, &e, &st, &err);
    if (r != 0) {
        enum pickup_result res = r < 0 ? set_aside(p, name, uid, buf_cstr(&err)) : PICKUP_DONE;
        buf_free(&err);
        return res;
    }
    if (st.st_uid != uid) { /* replaced since the id was made: the next turn takes it */
        maildrop_entry_free(&e);
        return PICKUP_DONE;
    }
    struct passwd *pw = getpwuid(st.st_uid);
    time_t now = time(NULL);
    const struct mta_pickup_origin o = {
        .uid = st.st_uid,
        .user = pw ? pw->pw_name : NULL,
        .trusted = st.st_uid == 0 || st.st_uid == getuid(),
        .arrival = st.st_ctime < now ? st.st_ctime : now,
    };
    struct spool_message sm;
    bool sender_set;
    const char *why;
    enum pickup_result res = PICKUP_DONE;
    if (mta_pickup_convert(p->cfg, id, &e, &o, &sm, &sender_set, &why) != MTA_PICKUP_OK) {
        res = set_aside(p, name, st.st_uid, why);
    } else if (spool_write(p->cfg, &sm, &err) != 0) {
        log_error("%s: cannot queue maildrop file %s: %s (tried again later)", id, name,
                  buf_cstr(&err));
        res = PICKUP_SPOOL_DOWN;
        spool_message_free(&sm);
    } else {
        res = remove_file(p, name, id);
        /* Postfix's pickup and qmgr lines */
        log_info("%s: uid=%u from=<%s>%s%s%s", id, (unsigned)st.st_uid, e.sender,
                 sender_set ? " (sender set with -f by " : "",
                 sender_set ? (o.user ? o.user : "an unnamed uid") : "", sender_set ? ")" : "");
        log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queue active)", id, e.sender, sm.data.len,
                 e.n_rcpts);
        spool_message_free(&sm);
        mta_queue_take(p->q, id);
    }
    maildrop_entry_free(&e);
    buf_free(&err);
    return res;
}

/* One turn: up to MTA_PICKUP_PER_RUN files, then again at once (more are
 * waiting) or after the interval. What is stuck is not counted: it must
 * neither use up a turn nor make the next one come at once. */
static void on_run(evutil_socket_t fd, short what, void *arg)
{
    struct mta_pickup *p = arg;
    char **names;
    size_t n, i = 0, done = 0;
    struct buf err = BUF_INIT;
    if (maildrop_list(p->dirfd, true, &names, &n, &err) != 0)
        log_error("%s", buf_cstr(&err));
    buf_free(&err);
    enum pickup_result r = PICKUP_DONE;
    for (; i < n && done < MTA_PICKUP_PER_RUN && r != PICKUP_SPOOL_DOWN; i++) {
        r = pickup_one(p, names[i]);
        done += r == PICKUP_DONE;
    }
    p->waiting = n - i;
    spool_list_free(names, n);
    time_t now = time(NULL);
    if (p->stuck && now >= p->stuck_quiet_until)
        p->stuck_quiet_until = now + MTA_PICKUP_STUCK_LOG_S;
    p->stuck = 0;
    int64_t ms = r != PICKUP_SPOOL_DOWN && p->waiting ? 0 : p->cfg->mta_pickup_interval;
    struct timeval tv = clock_timeval_ms(ms);
    evtimer_add(p->ev, &tv);
    (void)fd;
    (void)what;
}

void mta_pickup_start(struct mta_pickup *p)
{
    on_run(-1, 0, p);
}

void mta_pickup_stop(struct mta_pickup *p)
{
    evtimer_del(p->ev);
}

size_t mta_pickup_waiting(const struct mta_pickup *p)
{
    return p->waiting;
}

void mta_pickup_free(struct mta_pickup *p)
{
    if (p == NULL)
        return;
    event_free(p->ev);
    close(p->dirfd);
    free(p);
}
