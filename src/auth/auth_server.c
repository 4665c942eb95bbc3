/*
 * auth_server.c - the auth process: answers IPC_AUTH_REQUEST frames on
 * DATA_DIRECTORY/run/auth.sock with IPC_AUTH_REPLY (formats in auth_proto.h).
 *
 * One libevent loop owns the socket, the directory and the rate limits; a
 * small pool of threads (auth_threads) runs the hash checks, which cost tens
 * of milliseconds each, so that one check never holds up the other clients.
 * A finished check comes back to the loop through base/offload.h. Failed logins are
 * answered late (auth_fail_delay, doubling per failure from that address),
 * and logged in one line fail2ban can match:
 *     auth failed: service=smtp user=<name> rip=192.0.2.1 reason=...
 *
 * Throttling never refuses the right password from a clean address
 * (doc/accounts.md, "Failed logins, bans and limits"):
 *   - per client address (IPv6: per /64): failures in auth_ratelimit_window
 *     make the delay grow; auth_ratelimit_ip_failures of them ban that
 *     address alone for auth_ban_time (every login from it is refused);
 *   - per account: the (account, address) pairs that failed are counted; when
 *     auth_ratelimit_user_failures addresses failed for one account, its
 *     failures get the longest delay and logins to it are refused from
 *     addresses it has not logged in from within auth_known_address_time,
 *     while its usual addresses log in as ever;
 *   - mynetworks and exempt_networks are never banned nor account-limited.
 * `wharf auth bans` and `wharf auth unban ADDR` reach the ban table with
 * IPC_AUTH_ADMIN_REQUEST frames on the same socket, accepted only from root
 * or this process's own user (SO_PEERCRED).
 * An unknown user costs the same hash check as a wrong password (against a
 * dummy yescrypt hash) and gets the same reply after the same delay.
 *
 * It runs as its own user (auth_user), the only one that can open the
 * credential database (DATA/auth/credentials.db); it creates auth.sock as
 * root first, for the wharf user's processes, then drops to that user.
 *
 * It must never: send a hash or say whether an account exists, log a
 * password, guess at a malformed frame (the connection is closed and logged),
 * or grow without bound (connections, queue and rate-limit table are capped).
 */
#include "auth/auth.h"
#include "base/clock.h"
#include "auth/auth_proto.h"
#include "auth/auth_ratelimit.h"
#include "auth/auth_tokens.h"
#include "auth/login_cache.h"
#include "auth/password.h"
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/log.h"
#include "base/offload.h"
#include "directory/directory.h"
#include "directory/directory_client.h"
#include "ipc/component_loop.h"
#include "ipc/channel.h"
#include "ipc/frame.h"
#include "ipc/service.h"
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

/* Longest user name written to a log line; the rest is cut with "...". */
#define AUTH_LOG_USER_MAX 100

struct job {
    struct offload_job oj;     /* in the crypt pool */
    struct job *wprev, *wnext; /* in the list of answers waiting for their delay */
    struct auth_server *srv;
    struct ipc_conn *conn; /* held while the job lives */
    uint64_t id;
    char *service, *username, *password, *rip, *user_key;
    char *rip_key;        /* the address as counted and banned (IPv6: its /64) */
    bool exempt;          /* rip is in mynetworks or exempt_networks */
    bool banned;          /* refused because rip_key is banned: not counted again */
    char *account, *hash; /* hash: the account's, or the dummy */
    bool known, secure, ok;
    bool want_session, end_session; /* AUTH_FLAG_SESSION, AUTH_FLAG_END_SESSION */
    char *session;                  /* the token made for want_session */
    /* A directory that checks passwords (LDAP): the DN to bind as, the hash of the
     * password of the account's last login (NULL: none within ldap_login_cache_ttl),
     * the one to keep as of this login (new, or the cached one when the password is
     * the same), and what the bind said. */
    char *dn, *cached, *new_hash;
    bool renewed;        /* new_hash is the cached one, kept as of this login */
    bool cached_refused; /* LDAP refused the password whose hash is cached */
    /* ldap_password_check = hash: the account's password value as LDAP holds it
     * (NULL: none), or no_secret: no LDAP server could give it; refused: why the
     * value cannot be checked (a cleartext or unknown scheme). */
    char *secret;
    bool no_secret;
    const char *refused;
    void *lookup; /* the LOGIN (or ACCOUNT) question to the directory process, while asked */
    /* `wharf token add|list USER` with a directory that checks passwords (LDAP): the
     * request, answered once the directory process says the account exists. */
    json_t *admin;
    bool stale, unavailable;
    enum auth_result result;
    const char *reason;
    struct event *timer;
};

/*
 * The login cache's file, DATA/auth/login-cache (login_cache.h), so that a
 * reload or a restart during an LDAP outage keeps the logins. One auth
 * process at a time owns it, the one holding the flock of login-cache.lock:
 * after a reload the new process reads the file at once but owns it only
 * once the old one has ended (it writes its last logins as it goes), then
 * reads it again. The owner alone writes it, LOGINS_SAVE_DELAY_MS after a
 * change (LOGINS_RENEW_DELAY_MS after a login that only renews an entry's
 * date), in a thread of its own (a file of auth_ratelimit_entries lines is no
 * work for the loop), and at its end. Without a cache the owner removes it.
 */
struct logins_file {
    char *path;
    int lock_fd; /* -1: no lock, the cache stays in memory */
    bool owned;
    struct event *timer;    /* a save after a change; before owning, the lock tried again */
    struct offload *writer; /* the writes, one at a time */
    bool writing;
    int64_t due;    /* when the next write is to start (monotonic ms), 0: none */
    uint64_t saved; /* the cache's version the file holds */
};

struct auth_server {
    const struct wharf_config *cfg;
    uint64_t n_ok, n_failed, n_tempfail; /* verdicts since start (status, /metrics) */
    struct event_base *base;
    struct directory *dir;
    struct auth_tokens *tokens; /* app passwords for Bearer (DATA/auth/tokens) */
    char *dummy_hash;
    /*
     * rl_ip: failures per address key; rl_pair: per "account\naddress";
     * rl_user: per account, the addresses (pairs) that failed; known: pairs
     * that logged in (window auth_known_address_time); bans: banned address
     * keys (window auth_ban_time, count: the failures that banned it).
     */
    struct ratelimit *rl_ip, *rl_user, *rl_pair, *known, *bans;
    struct ipc_service *service; /* auth.sock */
    char *sock_path;
    struct component_loop *loop; /* the skeleton: privileges, loop, control, signals */
    int listen_fd;               /* bound as root, before the skeleton drops it */
    struct offload *crypt;       /* the hash checks, off the loop */
    struct job *waiting;
    struct directory_client *dclient; /* LOGIN and ACCOUNT questions, when the directory binds */
    struct login_cache *logins;       /* the hashes of LDAP logins, for an outage (or NULL) */
    struct logins_file logins_file;   /* where they outlive this process */
    bool ldap_hash;                   /* ldap_password_check = hash: values, not binds */
    bool stale_logged;                /* "served stale" said for this outage */
    size_t pending;                   /* every job alive: queued, checking or waiting out a delay */
    bool stopping;                    /* checks finishing now are nobody's: freed unanswered */
};

/* ---- jobs ---- */

static void job_free(struct job *j)
{
    if (j->timer)
        event_free(j->timer);
    if (j->lookup)
        directory_client_cancel(j->srv->dclient, j->lookup);
    free(j->dn);
    xfree_secret(j->cached);
    xfree_secret(j->new_hash);
    xfree_secret(j->secret);
    free(j->service);
    free(j->username);
    xfree_secret(j->password);
    free(j->rip);
    free(j->rip_key);
    free(j->user_key);
    free(j->account);
    free(j->hash);
    xfree_secret(j->session);
    json_decref(j->admin);
    ipc_conn_release(j->conn);
    j->srv->pending--;
    free(j);
}

/* Makes attacker-chosen text safe for one log line: printable ASCII, no <>, bounded. */
static void log_safe(struct buf *out, const char *s)
{
    size_t i = 0;
    for (; i < AUTH_LOG_USER_MAX && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        buf_append_byte(out, (c < 0x21 || c > 0x7e || c == '<' || c == '>') ? '?' : (char)c);
    }
    if (s[i])
        buf_append_cstr(out, "...");
}

static void job_send(struct job *j)
{
    struct buf payload = BUF_INIT;
    auth_proto_put_reply(&payload, j->id, j->result, j->result == AUTH_OK ? j->account : "",
                         j->result == AUTH_OK ? j->session : NULL);
    ipc_conn_send(j->conn, IPC_AUTH_REPLY, payload.data, payload.len);
    buf_free(&payload);
}

static void waiting_remove(struct job *j)
{
    if (j->wprev)
        j->wprev->wnext = j->wnext;
    else
        j->srv->waiting = j->wnext;
    if (j->wnext)
        j->wnext->wprev = j->wprev;
}

static void job_delayed_reply(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    waiting_remove(j);
    job_send(j);
    job_free(j);
}

/* The verdict is known: count it, log it, answer (late when it is a failure). */
static void job_finish(struct job *j)
{
    struct auth_server *srv = j->srv;
    const struct wharf_config *cfg = srv->cfg;
    struct buf user = BUF_INIT;
    log_safe(&user, j->username);
    struct buf pair = BUF_INIT;
    buf_printf(&pair, "%s\n%s", j->user_key, j->rip_key);
    if (j->result == AUTH_OK && j->want_session) { /* the webmail's sign-in */
        struct buf tok = BUF_INIT, err = BUF_INIT;
        if (auth_tokens_add_session(srv->tokens, j->account, &tok, &err) == 0) {
            j->session = buf_steal(&tok, NULL);
        } else {
            log_error("auth: %s", buf_cstr(&err));
            j->result = AUTH_TEMPFAIL;
            j->reason = "cannot save the session";
        }
        buf_free(&tok);
        buf_free(&err);
    }
    if (j->result == AUTH_OK) {
        srv->n_ok++;
        /* The address is now a usual one of the account: a spray never locks it out. */
        ratelimit_reset(srv->rl_pair, pair.data);
        ratelimit_set(srv->known, pair.data, 1, monotonic_ms());
        log_info("auth ok: service=%s user=<%s> rip=%s account=%s%s", j->service, user.data, j->rip,
                 j->account, j->secure ? "" : " tls=no");
        job_send(j);
        job_free(j);
    } else if (j->result == AUTH_TEMPFAIL) {
        srv->n_tempfail++;
        log_warning("auth tempfail: service=%s user=<%s> rip=%s reason=%s", j->service, user.data,
                    j->rip, j->reason);
        job_send(j);
        job_free(j);
    } else {
        srv->n_failed++; /* wrong credentials and rate-limit refusals */
        int64_t now = monotonic_ms();
        /* A banned address's attempts are not counted again: the ban says it all. */
        unsigned n = j->banned ? UINT32_MAX : ratelimit_fail(srv->rl_ip, j->rip_key, now);
        unsigned spread = 0;
        if (j->result == AUTH_FAILED) {
            spread = ratelimit_count(srv->rl_user, j->user_key, now);
            if (ratelimit_fail(srv->rl_pair, pair.data, now) == 1) /* a new address failed */
                spread = ratelimit_fail(srv->rl_user, j->user_key, now);
        }
        log_info("auth failed: service=%s user=<%s> rip=%s reason=%s", j->service, user.data,
                 j->rip, j->reason);
        if (!j->banned && !j->exempt && n >= (unsigned)cfg->auth_ratelimit_ip_failures) {
            ratelimit_set(srv->bans, j->rip_key, n, now);
            ratelimit_reset(srv->rl_ip, j->rip_key);
            log_warning("auth: banned rip=%s for %llds after %u failed logins (auth_ratelimit_ip_"
                        "failures); lift with: wharf auth unban %s",
                        j->rip_key, (long long)(cfg->auth_ban_time / 1000), n, j->rip_key);
        }
        if (!ipc_conn_is_open(j->conn)) { /* nobody is left to hear the late answer */
            job_free(j);
            buf_free(&user);
            buf_free(&pair);
            return;
        }
        /* Grows with the failures from this address, or with those spread over an account. */
        if (spread >= (unsigned)cfg->auth_ratelimit_user_failures)
            n = UINT32_MAX;
        else if (spread > n)
            n = spread;
        int64_t delay = cfg->auth_fail_delay;
        for (unsigned k = 1; k < n && delay > 0 && delay < cfg->auth_fail_delay_max; k++)
            delay *= 2;
        if (delay > cfg->auth_fail_delay_max)
            delay = cfg->auth_fail_delay_max;
        struct timeval tv = clock_timeval_ms(delay);
        j->timer = evtimer_new(srv->base, job_delayed_reply, j);
        evtimer_add(j->timer, &tv);
        j->wnext = srv->waiting;
        if (j->wnext)
            j->wnext->wprev = j;
        srv->waiting = j;
    }
    buf_free(&user);
    buf_free(&pair);
}

/* ---- the login cache's file (struct logins_file) ---- */

#define LOGINS_FILE "auth/login-cache"
#define LOGINS_LOCK "auth/login-cache.lock"
/* A change of hash (a first login, a new password, a refusal) is in the file this long
 * after it at most: a crash of the auth process loses the logins of these last seconds
 * (a stop or a reload writes them at once). */
#define LOGINS_SAVE_DELAY_MS 10000
/* A login that only renews an entry's date waits longer: writing the whole file at the
 * pace of the logins is not worth what a crash loses (that much of the entry's time). */
#define LOGINS_RENEW_DELAY_MS 300000
/* How often the lock is tried while the auth process before a reload still runs. */
#define LOGINS_LOCK_RETRY_MS 100

struct logins_write {
    struct offload_job oj;
    const char *path;
    struct buf text;
    uint64_t version;
    int err; /* errno of a failed write, 0 */
};

/* Reads the file into the cache (what is there already and newer stays): what the
 * file holds is no change to write again. */
static void logins_read(struct auth_server *srv, const char *note)
{
    struct logins_file *f = &srv->logins_file;
    bool unchanged = login_cache_version(srv->logins) == f->saved;
    size_t n = 0;
    struct buf err = BUF_INIT;
    int r = login_cache_load(srv->logins, f->path, monotonic_ms(), wallclock_ms(), &n, &err);
    if (r < 0)
        log_warning("auth: login cache not read, logins start afresh: %s", buf_cstr(&err));
    else if (r == 0)
        log_info("auth: login cache: %zu entries read from %s%s", n, f->path, note);
    if (unchanged)
        f->saved = login_cache_version(srv->logins);
    buf_free(&err);
}

/* A write within delay_ms, unless one is due sooner (started once a write under way ends). */
static void logins_save_later(struct auth_server *srv, int64_t delay_ms)
{
    struct logins_file *f = &srv->logins_file;
    if (!f->owned || srv->stopping || srv->logins == NULL ||
        login_cache_version(srv->logins) == f->saved)
        return;
    int64_t due = monotonic_ms() + delay_ms;
    if (f->due != 0 && f->due <= due)
        return;
    f->due = due;
    if (!f->writing) {
        struct timeval tv = clock_timeval_ms(delay_ms);
        evtimer_add(f->timer, &tv); /* sooner than it was, if it was pending */
    }
}

/* The lock is ours: the file's last state is read, or without a cache the file removed. */
static void logins_own(struct auth_server *srv)
{
    struct logins_file *f = &srv->logins_file;
    f->owned = true;
    if (srv->logins == NULL) {
        if (unlink(f->path) == 0)
            log_info("auth: removed %s: no login cache (ldap_login_cache_ttl = 0, or no LDAP)",
                     f->path);
        else if (errno != ENOENT)
            log_warning("auth: cannot remove %s: %s", f->path, strerror(errno));
        return;
    }
    logins_read(srv, "");
    logins_save_later(srv, LOGINS_SAVE_DELAY_MS); /* logins while another process owned it */
}

static void logins_write_run(void *arg, struct offload_job *oj)
{
    struct logins_write *w = OFFLOAD_CONTAINER(oj, struct logins_write, oj);
    w->err = datadir_write_file(w->path, w->text.data, w->text.len, 0600) == 0 ? 0 : errno;
}

static void logins_write_done(void *arg, struct offload_job *oj)
{
    struct auth_server *srv = arg;
    struct logins_write *w = OFFLOAD_CONTAINER(oj, struct logins_write, oj);
    srv->logins_file.writing = false;
    if (w->err != 0)
        log_error("auth: cannot write the login cache %s: %s", w->path, strerror(w->err));
    else
        srv->logins_file.saved = w->version;
    explicit_bzero(w->text.data, w->text.len);
    buf_free(&w->text);
    free(w);
    struct logins_file *f = &srv->logins_file;
    if (f->due != 0 && !srv->stopping) { /* changed meanwhile */
        struct timeval tv = clock_timeval_ms(f->due - monotonic_ms());
        evtimer_add(f->timer, &tv);
    } else {
        logins_save_later(srv, LOGINS_SAVE_DELAY_MS); /* the write failed: again */
    }
}

static void logins_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct auth_server *srv = arg;
    struct logins_file *f = &srv->logins_file;
    if (!f->owned) {
        if (flock(f->lock_fd, LOCK_EX | LOCK_NB) == 0) {
            logins_own(srv);
        } else {
            struct timeval tv = clock_timeval_ms(LOGINS_LOCK_RETRY_MS);
            evtimer_add(f->timer, &tv);
        }
        return;
    }
    if (f->writing || srv->logins == NULL)
        return;
    f->due = 0;
    if (login_cache_version(srv->logins) == f->saved)
        return;
    struct logins_write *w = xcalloc(1, sizeof(*w));
    w->path = f->path;
    w->version = login_cache_version(srv->logins);
    login_cache_format(srv->logins, monotonic_ms(), wallclock_ms(), &w->text);
    f->writing = true;
    (void)offload_submit(f->writer, &w->oj); /* never full: no cap, one write at a time */
}

/* At the start (privileges dropped): the file's lock, and the file read when it is ours
 * or, while the process before a reload still owns it, read now and again once it has
 * ended. Without a cache, and with no lock file left by one, there is nothing to do. */
static void logins_open(struct auth_server *srv)
{
    struct logins_file *f = &srv->logins_file;
    f->path = config_data_path(srv->cfg, LOGINS_FILE);
    char *lock = config_data_path(srv->cfg, LOGINS_LOCK);
    f->lock_fd = srv->logins != NULL || access(lock, F_OK) == 0
                     ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)
                     : -1;
    if (f->lock_fd < 0 && srv->logins != NULL)
        log_error("auth: cannot open %s: %s; the login cache is kept in memory only", lock,
                  strerror(errno));
    free(lock);
    if (f->lock_fd < 0)
        return;
    if (srv->logins != NULL) {
        struct buf err = BUF_INIT;
        struct offload_params op = {.name = "login cache writer",
                                    .threads = 1,
                                    .run = logins_write_run,
                                    .done = logins_write_done,
                                    .arg = srv};
        f->writer = offload_new(srv->base, &op, &err);
        if (f->writer == NULL)
            log_fatal(EX_OSERR, "%s", buf_cstr(&err));
        buf_free(&err);
    }
    f->timer = evtimer_new(srv->base, logins_timer_cb, srv);
    if (flock(f->lock_fd, LOCK_EX | LOCK_NB) == 0) {
        logins_own(srv);
        return;
    }
    if (srv->logins != NULL)
        logins_read(srv, " (the auth process before a reload still runs: read again once it "
                         "has ended)");
    struct timeval tv = clock_timeval_ms(LOGINS_LOCK_RETRY_MS);
    evtimer_add(f->timer, &tv);
}

/* At the end: the last logins written (once the process before a reload, if it still
 * runs, has written its own, which are read first). */
static void logins_close(struct auth_server *srv)
{
    struct logins_file *f = &srv->logins_file;
    offload_free(f->writer); /* a write under way ends first */
    f->writer = NULL;
    if (f->timer)
        event_free(f->timer);
    f->timer = NULL;
    /* Still not ours: wait for it (the supervisor ends the process that holds it by its
     * drain deadline), so that neither its last logins nor these are lost. */
    if (f->lock_fd >= 0 && !f->owned && flock(f->lock_fd, LOCK_EX) == 0)
        logins_own(srv);
    if (f->owned && srv->logins != NULL && login_cache_version(srv->logins) != f->saved) {
        struct buf text = BUF_INIT;
        size_t n = login_cache_format(srv->logins, monotonic_ms(), wallclock_ms(), &text);
        if (datadir_write_file(f->path, text.data, text.len, 0600) != 0)
            log_error("auth: cannot write the login cache %s: %s", f->path, strerror(errno));
        else
            log_info("auth: login cache: %zu entries written to %s", n, f->path);
        explicit_bzero(text.data, text.len);
        buf_free(&text);
    }
    if (f->lock_fd >= 0)
        close(f->lock_fd); /* the next auth process owns the file */
    free(f->path);
}

/* ---- a directory that checks passwords: LDAP bind, or a hash read from LDAP ---- */

/* In a crypt thread: what LDAP said (r: 1 right, 0 wrong, -1 nobody could say),
 * and the hash kept for an outage. */
static void ldap_verdict(struct auth_server *srv, struct job *j, int r)
{
    struct buf err = BUF_INIT, hash = BUF_INIT;
    if (r == 1) {
        j->ok = true;
        /* The same password as last time keeps its hash (one yescrypt per login), kept
         * again as of this login: the TTL runs from a user's last login, not the first. */
        if (j->cached != NULL && password_verify(j->password, j->cached)) {
            j->new_hash = j->cached;
            j->cached = NULL;
            j->renewed = true;
        } else if (srv->cfg->ldap_login_cache_ttl > 0 &&
                   password_hash(j->password, &hash, &err) == 0) {
            j->new_hash = buf_steal(&hash, NULL);
        }
    } else if (r == 0 && j->cached != NULL) {
        /* LDAP refuses the password the cache holds: it was changed there. That hash
         * must not let it in during an outage (one more yescrypt, for a failure only). */
        j->cached_refused = password_verify(j->password, j->cached);
    } else if (r < 0 && j->cached != NULL) {
        j->ok = password_verify(j->password, j->cached);
        j->stale = true;
    } else if (r < 0) {
        j->unavailable = true;
    }
    buf_free(&err);
    buf_free(&hash);
}

/* In a crypt thread: the bind as the account's DN. */
static void bind_check(struct auth_server *srv, struct job *j)
{
    struct buf err = BUF_INIT;
    int r = directory_verify_password(srv->dir, j->dn, j->password, &err);
    buf_free(&err);
    ldap_verdict(srv, j, r);
}

/* In a crypt thread: the password against the value the directory process read. */
static void hash_check(struct auth_server *srv, struct job *j)
{
    int r = 0;
    if (!j->known) {
        (void)password_verify(j->password, srv->dummy_hash); /* costs what a check costs */
    } else if (j->no_secret) {
        r = -1;
    } else if (j->secret == NULL) {
        j->refused = "no password value in LDAP (ldap_password_attribute)";
    } else if ((r = password_ldap_verify(j->password, j->secret, &j->refused)) < 0) {
        r = 0; /* j->refused says why */
    }
    ldap_verdict(srv, j, r);
}

static void waiting_add(struct job *j)
{
    j->wprev = NULL;
    j->wnext = j->srv->waiting;
    if (j->wnext)
        j->wnext->wprev = j;
    j->srv->waiting = j;
}

/* To the crypt pool; a full queue is a temporary failure. */
static void submit(struct job *j)
{
    if (j->result != AUTH_TEMPFAIL && !offload_submit(j->srv->crypt, &j->oj)) {
        j->result = AUTH_TEMPFAIL;
        j->reason = "too many checks queued (auth_queue_max)";
    }
    if (j->result == AUTH_TEMPFAIL)
        job_finish(j);
}

/* The directory process's answer to LOGIN: the account and its DN, or nobody. */
static void login_answer(void *arg, const struct directory_answer *a)
{
    struct job *j = arg;
    struct auth_server *srv = j->srv;
    j->lookup = NULL;
    waiting_remove(j);
    if (a->status != DIRECTORY_LOOKUP_OK) {
        j->result = AUTH_TEMPFAIL;
        j->reason = "directory unavailable";
    } else if (a->kind == DIRECTORY_LOCAL && a->n_targets == 1 && a->dn != NULL &&
               a->dn[0] != '\0') {
        j->known = true;
        j->account = xstrdup(a->accounts[0]);
        j->dn = xstrdup(a->dn);
        j->cached = srv->logins ? login_cache_get(srv->logins, j->account, monotonic_ms()) : NULL;
        if (srv->ldap_hash) {
            j->no_secret = a->no_secret;
            j->secret = a->secret != NULL && a->secret[0] != '\0' ? xstrdup(a->secret) : NULL;
        }
    } else {
        /* An unknown user costs what a wrong password costs: a bind, as a DN
         * nobody has (the driver's), which the server refuses the same way. */
        j->dn = xstrdup("");
    }
    submit(j);
}

/* ---- the crypt pool ---- */

/* In a crypt thread: the hash check, and the password forgotten. */
static void crypt_run(void *arg, struct offload_job *oj)
{
    struct auth_server *srv = arg;
    struct job *j = OFFLOAD_CONTAINER(oj, struct job, oj);
    if (j->dn != NULL && srv->ldap_hash) {
        hash_check(srv, j);
    } else if (j->dn != NULL) {
        bind_check(srv, j);
    } else {
        j->ok = password_verify(j->password, j->hash);
    }
    xfree_secret(j->password);
    j->password = NULL;
    xfree_secret(j->secret);
    j->secret = NULL;
}

static void crypt_done(void *arg, struct offload_job *oj)
{
    struct auth_server *srv = arg;
    struct job *j = OFFLOAD_CONTAINER(oj, struct job, oj);
    if (srv->stopping) {
        job_free(j);
        return;
    }
    if (j->new_hash != NULL && j->known && srv->logins != NULL) {
        login_cache_put(srv->logins, j->account, j->new_hash, monotonic_ms());
        logins_save_later(srv, j->renewed ? LOGINS_RENEW_DELAY_MS : LOGINS_SAVE_DELAY_MS);
    } else if (j->cached_refused && srv->logins != NULL) {
        login_cache_refused(srv->logins, j->account, j->cached, monotonic_ms());
        logins_save_later(srv, LOGINS_SAVE_DELAY_MS);
    }
    if (j->unavailable) {
        j->result = AUTH_TEMPFAIL;
        j->reason = "no LDAP server answers";
    } else if (j->ok && j->known) {
        j->result = AUTH_OK;
        if (j->stale && !srv->stale_logged)
            log_warning("auth: no LDAP server answers: logins of users who logged in within "
                        "ldap_login_cache_ttl are checked against their last password (stale) "
                        "until one does (first: %s)",
                        j->account);
        srv->stale_logged = j->stale;
    } else {
        j->result = AUTH_FAILED;
        j->reason = !j->known ? "unknown user" : j->refused ? j->refused : "wrong password";
        if (j->refused != NULL)
            log_warning("auth: the password of %s in LDAP cannot be checked: %s", j->account,
                        j->refused);
    }
    job_finish(j);
}

/* ---- app passwords and sessions (Bearer) ---- */

static json_t *admin_token(struct auth_server *srv, const char *what, json_t *req,
                           const char *account);

static void admin_send(struct ipc_conn *c, json_t *reply)
{
    char *text = json_dumps(reply, JSON_COMPACT);
    ipc_conn_send(c, IPC_AUTH_ADMIN_REPLY, text, strlen(text));
    free(text);
    json_decref(reply);
}

/* A valid token's account, as the directory knows it (s): the verdict. err: why it cannot say. */
static void token_checked(struct job *j, enum directory_status s, const char *account,
                          const char *err)
{
    struct auth_server *srv = j->srv;
    if (s == DIRECTORY_OK) {
        j->result = AUTH_OK;
        j->account = xstrdup(account);
        j->want_session = false; /* sessions come from passwords only */
        if (j->end_session && auth_tokens_is_session(j->password)) { /* sign-out */
            char id[17];
            struct buf e = BUF_INIT;
            auth_tokens_id(j->password, id);
            if (auth_tokens_revoke(srv->tokens, id, &e) < 0) {
                log_error("auth: %s", buf_cstr(&e));
                j->result = AUTH_TEMPFAIL;
                j->reason = "cannot save the sign-out";
            }
            buf_free(&e);
        }
    } else if (s == DIRECTORY_ERR_NOT_FOUND) {
        j->reason = "token of a deleted account";
    } else {
        log_error("auth: %s", err);
        j->result = AUTH_TEMPFAIL;
        j->reason = "directory unavailable";
    }
    job_finish(j);
}

/* Whether j's account exists (s; account: its canonical name; err: why it cannot say):
 * a Bearer login goes on, a `wharf token` request (j->admin) is answered. */
static void account_known(struct job *j, enum directory_status s, const char *account,
                          const char *err)
{
    if (j->admin == NULL) {
        token_checked(j, s, account, err);
        return;
    }
    const char *cmd = json_string_value(json_object_get(j->admin, "cmd"));
    admin_send(j->conn, s == DIRECTORY_OK
                            ? admin_token(j->srv, cmd + 6, j->admin, account)
                            : json_pack("{s:b, s:s}", "ok", 0, "error",
                                        s == DIRECTORY_ERR_NOT_FOUND ? "no such account" : err));
    job_free(j);
}

/* The directory process's answer about j's account (an ACCOUNT question). */
static void account_answer(void *arg, const struct directory_answer *a)
{
    struct job *j = arg;
    j->lookup = NULL;
    waiting_remove(j);
    enum directory_status s = a->status != DIRECTORY_LOOKUP_OK ? DIRECTORY_ERR_DB
                              : a->kind == DIRECTORY_LOCAL && a->n_targets == 1
                                  ? DIRECTORY_OK
                                  : DIRECTORY_ERR_NOT_FOUND;
    account_known(j, s, s == DIRECTORY_OK ? a->accounts[0] : NULL,
                  "the directory process cannot say whether the account exists");
}

/* Does account name (a token's, or `wharf token`'s user) exist? With LDAP the directory
 * process says (account_answer): its mirror is not ours to read; else the directory this
 * process reads says at once. */
static void account_ask(struct job *j, const char *name)
{
    struct auth_server *srv = j->srv;
    if (srv->dclient != NULL) {
        waiting_add(j);
        j->lookup =
            directory_client_lookup(srv->dclient, DIRECTORY_Q_ACCOUNT, name, account_answer, j);
        return;
    }
    struct buf account = BUF_INIT, hash = BUF_INIT, err = BUF_INIT;
    enum directory_status s = directory_account_hash(srv->dir, name, &account, &hash, &err);
    explicit_bzero(hash.data, hash.len);
    account_known(j, s, account.data, buf_cstr(&err));
    buf_free(&account);
    buf_free(&hash);
    buf_free(&err);
}

/* ---- requests ---- */

static char *client_addr(struct slice s)
{
    char *a = slice_strdup(s);
    unsigned char tmp[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, a, tmp) == 1 || inet_pton(AF_INET6, a, tmp) == 1)
        return a;
    free(a);
    return xstrdup("unknown");
}

/*
 * The key an address is counted and banned under: IPv4 (and v4-mapped IPv6)
 * as the address, IPv6 as its /64 ("2001:db8:1:2::/64"), since one customer
 * holds the whole /64 and could otherwise walk past a ban. NULL if addr is
 * neither.
 */
static char *addr_key(const char *addr)
{
    struct in6_addr a6;
    struct in_addr a4;
    char text[INET6_ADDRSTRLEN];
    size_t n = strlen(addr);
    if (n > 3 && strcmp(addr + n - 3, "/64") == 0) { /* a key given back by `wharf auth bans` */
        char *bare = xstrndup(addr, n - 3);
        int ok = inet_pton(AF_INET6, bare, &a6);
        free(bare);
        if (ok != 1)
            return NULL;
    } else if (inet_pton(AF_INET, addr, &a4) == 1) {
        inet_ntop(AF_INET, &a4, text, sizeof(text));
        return xstrdup(text);
    } else if (inet_pton(AF_INET6, addr, &a6) != 1) {
        return NULL;
    }
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof(text));
        return xstrdup(text);
    }
    memset(&a6.s6_addr[8], 0, 8);
    inet_ntop(AF_INET6, &a6, text, sizeof(text));
    struct buf key = BUF_INIT;
    buf_printf(&key, "%s/64", text);
    return buf_steal(&key, NULL);
}

static void handle_request(struct auth_server *srv, struct ipc_conn *c,
                           const struct auth_wire_request *w)
{
    const struct wharf_config *cfg = srv->cfg;
    struct job *j = xcalloc(1, sizeof(*j));
    j->srv = srv;
    j->conn = c;
    ipc_conn_hold(c);
    srv->pending++;
    j->id = w->id;
    j->service = w->service.len ? slice_strdup(w->service) : xstrdup("unknown");
    for (char *p = j->service; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            *p = '?';
    }
    j->username = slice_strdup(w->username);
    j->password = slice_strdup(w->password);
    j->rip = client_addr(w->client_addr);
    j->rip_key = addr_key(j->rip);
    if (j->rip_key == NULL)
        j->rip_key = xstrdup(j->rip);
    j->exempt = net_addr_exempt(cfg, j->rip);
    j->secure = (w->flags & AUTH_FLAG_SECURE) != 0;
    j->want_session = (w->flags & AUTH_FLAG_SESSION) != 0;
    j->end_session = (w->flags & AUTH_FLAG_END_SESSION) != 0;
    j->user_key = directory_normalize_address(j->username, false);
    if (j->user_key == NULL)
        j->user_key = xstrdup(j->username);
    j->result = AUTH_FAILED;

    if (srv->pending > (size_t)cfg->auth_pending_max) {
        j->result = AUTH_TEMPFAIL;
        j->reason = "too many requests held (auth_pending_max)";
        job_finish(j);
        return;
    }
    int64_t now = monotonic_ms();
    if (!j->exempt && ratelimit_count(srv->bans, j->rip_key, now) > 0) {
        j->result = AUTH_RATELIMIT;
        j->reason = "banned";
        j->banned = true;
        job_finish(j);
        return;
    }
    if (!j->exempt && ratelimit_count(srv->rl_user, j->user_key, now) >=
                          (unsigned)cfg->auth_ratelimit_user_failures) {
        struct buf pair = BUF_INIT;
        buf_printf(&pair, "%s\n%s", j->user_key, j->rip_key);
        bool usual = ratelimit_count(srv->known, pair.data, now) > 0;
        buf_free(&pair);
        if (!usual) {
            j->result = AUTH_RATELIMIT;
            j->reason = "account-ratelimit";
            job_finish(j);
            return;
        }
    }
    if (slice_eq_cstr_nocase(w->mechanism, "BEARER")) {
        /* An app password (auth_tokens.h): one hash, no crypt pool; the account must still exist.
         */
        const char *acct = auth_tokens_check(srv->tokens, j->password);
        if (acct == NULL) {
            j->reason = "unknown token";
            job_finish(j);
        } else {
            account_ask(j, acct);
        }
        return;
    }
    if (!slice_eq_cstr_nocase(w->mechanism, "PLAIN") &&
        !slice_eq_cstr_nocase(w->mechanism, "LOGIN")) {
        j->reason = "unsupported mechanism";
        job_finish(j);
        return;
    }
    if (w->username.len == 0 || w->password.len == 0) {
        j->reason = "empty credentials";
        job_finish(j);
        return;
    }
    if (w->authzid.len != 0 && !slice_eq(w->authzid, w->username)) {
        j->reason = "authzid differs from user";
        job_finish(j);
        return;
    }
    if (srv->dclient != NULL) { /* the directory binds: ask it for the DN first */
        waiting_add(j);
        j->lookup =
            directory_client_lookup(srv->dclient, DIRECTORY_Q_LOGIN, j->username, login_answer, j);
        return;
    }
    struct buf account = BUF_INIT, hash = BUF_INIT, err = BUF_INIT;
    enum directory_status s = directory_account_hash(srv->dir, j->username, &account, &hash, &err);
    if (s == DIRECTORY_OK) {
        j->known = true;
        j->account = buf_steal(&account, NULL);
        j->hash = buf_steal(&hash, NULL);
    } else if (s == DIRECTORY_ERR_NOT_FOUND) {
        j->hash = xstrdup(srv->dummy_hash);
    } else {
        log_error("%s", buf_cstr(&err));
        j->result = AUTH_TEMPFAIL;
        j->reason = "directory unavailable";
    }
    buf_free(&account);
    buf_free(&hash);
    buf_free(&err);
    submit(j);
}

/* ---- administration: `wharf auth bans`, `wharf auth unban` ---- */

struct ban_list {
    json_t *arr;
    int64_t now, ban_ms;
    time_t wall;
};

static void ban_add(void *arg, const char *key, unsigned count, int64_t start_ms)
{
    struct ban_list *l = arg;
    json_array_append_new(
        l->arr, json_pack("{s:s, s:i, s:I, s:I}", "address", key, "failures", (int)count, "since",
                          (json_int_t)(l->wall - (l->now - start_ms) / 1000), "expires_in",
                          (json_int_t)((start_ms + l->ban_ms - l->now + 999) / 1000)));
}

/* `wharf token add|list|revoke`: the app passwords (auth_tokens.h). account: the
 * canonical name of the request's user, which exists (NULL: no user given). */
static json_t *admin_token(struct auth_server *srv, const char *what, json_t *req,
                           const char *account)
{
    const char *id = json_string_value(json_object_get(req, "id"));
    struct buf err = BUF_INIT, token = BUF_INIT;
    json_t *r = NULL;
    if (strcmp(what, "add") == 0 && account != NULL) {
        const char *scope = json_string_value(json_object_get(req, "scope"));
        if (scope != NULL && strcmp(scope, "admin") != 0) {
            r = json_pack("{s:b, s:s}", "ok", 0, "error", "the only scope is admin");
        } else if ((scope ? auth_tokens_add_admin : auth_tokens_add)(srv->tokens, account, &token,
                                                                     &err) != 0) {
            r = json_pack("{s:b, s:s}", "ok", 0, "error", buf_cstr(&err));
        } else {
            char tid[17];
            auth_tokens_id(token.data, tid);
            log_info("auth: %stoken %s made for %s (wharf token add)", scope ? "admin " : "", tid,
                     account);
            r = json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "token", token.data, "id", tid,
                          "account", account);
        }
    } else if (strcmp(what, "list") == 0) {
        r = json_pack("{s:b, s:o}", "ok", 1, "tokens", auth_tokens_list(srv->tokens, account));
    } else if (strcmp(what, "revoke") == 0 && id != NULL) {
        int n = auth_tokens_revoke(srv->tokens, id, &err);
        if (n < 0)
            r = json_pack("{s:b, s:s}", "ok", 0, "error", buf_cstr(&err));
        else if (n == 0)
            r = json_pack("{s:b, s:s}", "ok", 0, "error", "no such token");
        else
            r = json_pack("{s:b, s:s}", "ok", 1, "revoked", id);
        if (n > 0)
            log_info("auth: token %s revoked (wharf token revoke)", id);
    } else if (strcmp(what, "age") == 0 && id != NULL && srv->cfg->test_hooks) {
        /* test suites only: a session made old without waiting (the app password rule) */
        json_int_t sec = json_integer_value(json_object_get(req, "seconds"));
        if (sec <= 0 || auth_tokens_age(srv->tokens, id, (long long)sec) == 0)
            r = json_pack("{s:b, s:s}", "ok", 0, "error", "no such token");
        else
            r = json_pack("{s:b, s:s}", "ok", 1, "aged", id);
    } else {
        r = json_pack("{s:b, s:s}", "ok", 0, "error", "token-add needs user, token-revoke id");
    }
    explicit_bzero(token.data, token.len);
    buf_free(&token);
    buf_free(&err);
    return r;
}

static json_t *admin_answer(struct auth_server *srv, json_t *req)
{
    const struct wharf_config *cfg = srv->cfg;
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    int64_t now = monotonic_ms();
    if (cmd && strcmp(cmd, "bans") == 0) {
        struct ban_list l = {json_array(), now, cfg->auth_ban_time, time(NULL)};
        ratelimit_foreach(srv->bans, now, ban_add, &l);
        return json_pack("{s:b, s:o, s:i, s:I, s:I}", "ok", 1, "bans", l.arr, "ban_after",
                         (int)cfg->auth_ratelimit_ip_failures, "window",
                         (json_int_t)(cfg->auth_ratelimit_window / 1000), "ban_time",
                         (json_int_t)(cfg->auth_ban_time / 1000));
    }
    if (cmd && strcmp(cmd, "unban") == 0) {
        const char *addr = json_string_value(json_object_get(req, "address"));
        char *key = addr ? addr_key(addr) : NULL;
        if (key == NULL)
            return json_pack("{s:b, s:s}", "ok", 0, "error", "not an IPv4 or IPv6 address");
        bool was = ratelimit_count(srv->bans, key, now) > 0;
        ratelimit_reset(srv->bans, key);
        ratelimit_reset(srv->rl_ip, key); /* a fresh start, not one failure from a new ban */
        log_info("auth: %s rip=%s (wharf auth unban)", was ? "unbanned" : "not banned, reset", key);
        json_t *r = json_pack("{s:b, s:s, s:b}", "ok", 1, "address", key, "was_banned", was);
        free(key);
        return r;
    }
    if (cmd && strncmp(cmd, "token-", 6) == 0) /* a user's: on_admin asks for it first */
        return admin_token(srv, cmd + 6, req, NULL);
    return json_pack("{s:b, s:s}", "ok", 0, "error", "unknown command");
}

static const char *on_admin(void *arg, struct ipc_conn *c, const struct ipc_frame *f)
{
    struct auth_server *srv = arg;
    json_t *reply;
    /* Only root or our own user may list and lift bans. */
    uid_t uid = ipc_conn_peer_uid(c);
    if (uid != 0 && uid != geteuid()) {
        log_warning("auth: administration request from a peer that is neither root nor our "
                    "user; refused");
        reply = json_pack("{s:b, s:s}", "ok", 0, "error", "permission denied");
    } else {
        json_error_t jerr;
        json_t *req = json_loadb(f->payload, f->len, 0, &jerr);
        const char *cmd = json_string_value(json_object_get(req, "cmd"));
        const char *user = json_string_value(json_object_get(req, "user"));
        if (cmd != NULL && strncmp(cmd, "token-", 6) == 0 && user != NULL) {
            /* the user's canonical account, which must exist (account_ask) */
            struct job *j = xcalloc(1, sizeof(*j));
            j->srv = srv;
            j->conn = c;
            ipc_conn_hold(c);
            srv->pending++;
            j->admin = req;
            account_ask(j, user);
            return NULL;
        }
        reply = json_is_object(req) ? admin_answer(srv, req)
                                    : json_pack("{s:b, s:s}", "ok", 0, "error", "not JSON");
        json_decref(req);
    }
    admin_send(c, reply);
    return NULL;
}

static const char *on_request(void *arg, struct ipc_conn *c, const struct ipc_frame *f)
{
    struct auth_server *srv = arg;
    const char *why = NULL;
    struct auth_wire_request w;
    if (auth_proto_get_request(f->payload, f->len, (size_t)srv->cfg->auth_max_credential_length, &w,
                               &why) != 0)
        return why;
    handle_request(srv, c, &w);
    return NULL;
}

static void on_conn_close(void *arg, struct ipc_conn *c)
{
    struct auth_server *srv = arg;
    /* Its failures were counted already; nobody is left to hear the late answers. */
    for (struct job *j = srv->waiting, *next; j; j = next) {
        next = j->wnext;
        if (j->conn == c) {
            waiting_remove(j);
            job_free(j);
        }
    }
}

static const struct ipc_route auth_routes[] = {
    {IPC_AUTH_REQUEST, on_request},
    {IPC_AUTH_ADMIN_REQUEST, on_admin},
    {0, NULL},
};

/* ---- start, status, stop ---- */

/* Hashes kept with the accounts by an older Wharf move to the credential database. */
static void move_old_hashes(const struct wharf_config *cfg)
{
    struct buf err = BUF_INIT;
    if (directory_upgrade_credentials(cfg, &err) != 0)
        log_error("cannot move password hashes out of the directory: %s", buf_cstr(&err));
    buf_free(&err);
}

static void status_cb(void *arg, json_t *obj)
{
    struct auth_server *srv = arg;
    json_object_set_new(obj, "connections",
                        json_integer((json_int_t)ipc_service_connections(srv->service)));
    json_object_set_new(obj, "checks_in_flight",
                        json_integer((json_int_t)offload_in_flight(srv->crypt)));
    json_object_set_new(obj, "requests_held", json_integer((json_int_t)srv->pending));
    json_object_set_new(
        obj, "ratelimit_entries",
        json_integer((json_int_t)(ratelimit_size(srv->rl_ip) + ratelimit_size(srv->rl_user) +
                                  ratelimit_size(srv->rl_pair) + ratelimit_size(srv->known))));
    json_object_set_new(obj, "bans", json_integer((json_int_t)ratelimit_size(srv->bans)));
    json_object_set_new(obj, "logins_ok", json_integer((json_int_t)srv->n_ok));
    json_object_set_new(obj, "logins_failed", json_integer((json_int_t)srv->n_failed));
    json_object_set_new(obj, "logins_tempfail", json_integer((json_int_t)srv->n_tempfail));
}

static void stop(struct auth_server *srv)
{
    if (srv->service)
        ipc_service_unlisten(srv->service, true);
    event_base_loopexit(srv->base, NULL);
}

static void shutdown_cb(void *arg, int64_t deadline_ms)
{
    /* Answers are short-lived: a worker whose check is cut asks again (tempfail). */
    stop(arg);
}

/* Still root (under wharfd): move hashes an older directory.db holds, and
 * make the socket the wharf user's; then the skeleton becomes the auth user,
 * the only one that can read the credentials (doc/architecture.md). */
static void as_root(void *arg)
{
    struct auth_server *srv = arg;
    move_old_hashes(srv->cfg);
    srv->sock_path = config_data_path(srv->cfg, "run/auth.sock");
    /* 0600 and the wharf user's: only its processes (every worker) may connect. */
    struct buf err = BUF_INIT;
    srv->listen_fd = ipc_service_listen(srv->sock_path, 0600, srv->cfg, &err);
    if (srv->listen_fd < 0)
        log_fatal(EX_CANTCREAT, "%s", buf_cstr(&err));
    buf_free(&err);
}

static void make_dummy_hash(struct auth_server *srv)
{
    unsigned char rnd[24];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        log_fatal(EX_OSERR, "getrandom: %s", strerror(errno));
    struct buf pw = BUF_INIT, hash = BUF_INIT, err = BUF_INIT;
    for (size_t i = 0; i < sizeof(rnd); i++)
        buf_printf(&pw, "%02x", rnd[i]);
    if (password_hash(pw.data, &hash, &err) != 0)
        log_fatal(EX_SOFTWARE, "%s", buf_cstr(&err));
    srv->dummy_hash = buf_steal(&hash, NULL);
    explicit_bzero(pw.data, pw.len);
    buf_free(&pw);
    buf_free(&err);
}

static void drain_jobs(struct auth_server *srv)
{
    /* The checks still queued or running finish, unanswered, and every job
     * left waiting out its delay goes too. */
    srv->stopping = true;
    offload_free(srv->crypt);
    srv->crypt = NULL;
    struct job *j;
    while ((j = srv->waiting) != NULL) {
        waiting_remove(j);
        job_free(j);
    }
}

int auth_main(struct component_ctx *ctx)
{
    struct auth_server srv_s = {.cfg = ctx->cfg}, *srv = &srv_s;
    const struct wharf_config *cfg = ctx->cfg;
    const struct component_hooks hooks = {.as_root = as_root,
                                          .run_as = cfg->auth_user,
                                          .status = status_cb,
                                          .shutdown = shutdown_cb,
                                          .arg = srv};
    srv->loop = component_loop_start(ctx, &hooks);
    srv->base = srv->loop->base;
    struct buf err = BUF_INIT;
    srv->dir = directory_open_credentials(cfg, &err);
    if (srv->dir == NULL)
        log_fatal(EX_UNAVAILABLE, "%s", buf_cstr(&err));
    make_dummy_hash(srv);
    char *tokens_path = config_data_path(cfg, "auth/tokens");
    srv->tokens = auth_tokens_open(tokens_path, &err);
    free(tokens_path);
    if (srv->tokens != NULL)
        auth_tokens_set_session_idle(srv->tokens, cfg->webmail_session_idle / 1000);
    if (srv->tokens == NULL)
        log_fatal(EX_DATAERR, "%s", buf_cstr(&err));
    srv->rl_ip = ratelimit_new(cfg->auth_ratelimit_window, (size_t)cfg->auth_ratelimit_entries);
    srv->rl_user = ratelimit_new(cfg->auth_ratelimit_window, (size_t)cfg->auth_ratelimit_entries);
    srv->rl_pair = ratelimit_new(cfg->auth_ratelimit_window, (size_t)cfg->auth_ratelimit_entries);
    srv->known = ratelimit_new(cfg->auth_known_address_time, (size_t)cfg->auth_ratelimit_entries);
    srv->bans = ratelimit_new(cfg->auth_ban_time, (size_t)cfg->auth_ratelimit_entries);
    struct offload_params op = {
        .name = "crypt",
        .threads = (size_t)cfg->auth_threads,
        .max_queued = (size_t)cfg->auth_queue_max,
        .run = crypt_run,
        .done = crypt_done,
        .arg = srv,
    };
    srv->crypt = offload_new(srv->base, &op, &err);
    if (srv->crypt == NULL)
        log_fatal(EX_OSERR, "%s", buf_cstr(&err));
    if (directory_checks_passwords(srv->dir)) {
        /* The directory process made this socket ours (auth/directory.sock). */
        srv->dclient = directory_client_new_at(srv->base, cfg, "auth/directory.sock");
        if (cfg->ldap_login_cache_ttl > 0)
            srv->logins =
                login_cache_new((size_t)cfg->auth_ratelimit_entries, cfg->ldap_login_cache_ttl);
        srv->ldap_hash = directory_config_reads_hashes(cfg);
    }
    logins_open(srv);

    struct ipc_service_params sp = {
        .name = "auth",
        .path = srv->sock_path,
        .routes = auth_routes,
        .max_frame = (size_t)cfg->auth_max_request,
        .max_conns = (size_t)cfg->auth_max_clients,
        .max_conns_option = "auth_max_clients",
        .on_close = on_conn_close,
        .arg = srv,
    };
    srv->service = ipc_service_new(srv->base, srv->listen_fd, &sp);
    log_info("auth: listening on %s with %zu crypt threads", srv->sock_path, op.threads);

    component_loop_run(srv->loop);

    log_info("auth: stopping");
    stop(srv);
    ipc_service_free(srv->service);
    srv->service = NULL;
    drain_jobs(srv);
    logins_close(srv);
    directory_client_free(srv->dclient);
    login_cache_free(srv->logins);
    directory_close(srv->dir);
    auth_tokens_free(srv->tokens);
    ratelimit_free(srv->rl_ip);
    ratelimit_free(srv->rl_user);
    ratelimit_free(srv->rl_pair);
    ratelimit_free(srv->known);
    ratelimit_free(srv->bans);
    free(srv->dummy_hash);
    free(srv->sock_path);
    component_loop_free(srv->loop);
    buf_free(&err);
    return EX_OK;
}
