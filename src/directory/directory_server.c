/*
 * directory_server.c - the directory process (component "directory"):
 * answers IPC_DIRECTORY_LOOKUP frames on DATA_DIRECTORY/run/directory.sock
 * with IPC_DIRECTORY_ANSWER (formats in directory_proto.h).
 *
 * The network workers never open the directory database: they ask here, over
 * one connection each, without waiting (directory_client.h). This process
 * holds directory.db (domains, accounts, aliases, quotas, home servers; no
 * password hashes: those are the auth process's), and later the LDAP
 * connection: a slow LDAP server then slows this process's answers, never a
 * worker's event loop. It runs as the wharf user, unconfined by the workers'
 * sandbox, and is not reachable from the network.
 *
 * Password values: with ldap_password_check = hash, a LOGIN question (asked
 * only on the auth process's socket, auth/directory.sock, which the workers
 * cannot open) is answered with the account's password value, read from
 * LDAP by a small pool of threads (base/offload.h: the read waits on the
 * network, the loop never does) with the search account. The value goes
 * into that one answer and nowhere else: not the mirror, not a log line.
 * That socket also answers ACCOUNT (the auth process checks that the account
 * of an app password or a webmail session still exists: it cannot read the
 * LDAP mirror itself), never RECIPIENT.
 *
 * It must never: answer about password hashes on directory.sock (the
 * workers'), guess at a malformed frame
 * (the connection is closed and logged), or grow without bound (connections
 * and frame sizes are capped; answers are written as they are made).
 */
#include "base/alloc.h"
#include "base/clock.h"
#include "base/datadir.h"
#include "base/log.h"
#include "base/offload.h"
#include "directory/directory.h"
#include "directory/directory_proto.h"
#include "ipc/channel.h"
#include "ipc/component_loop.h"
#include "ipc/frame.h"
#include "ipc/service.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

/* Largest lookup frame: an id, a query and a key. */
#define DIRECTORY_SERVER_MAX_REQUEST (DIRECTORY_PROTO_MAX_KEY + 64)
/* Past this much unsent output, a client's further lookups wait until it reads. */
#define DIRECTORY_SERVER_MAX_OUTPUT (4u << 20)
/* Password reads (ldap_password_check = hash): threads, and reads waiting for one. */
#define DIRECTORY_PW_THREADS 2
#define DIRECTORY_PW_QUEUE 256

struct dserver {
    const struct wharf_config *cfg;
    struct event_base *base;
    struct directory *dir;
    struct ipc_service *service; /* directory.sock */
    char *sock_path;
    /* DATA/auth/directory.sock: the auth process's LOGIN (and ACCOUNT) questions, when the
     * directory checks passwords by LDAP bind (made as root, the auth user's). */
    struct ipc_service *auth_service;
    int auth_fd;
    char *auth_path;
    struct offload *pw; /* the password reads, when the directory reads hashes; else NULL */
    uint64_t answered, tempfails, pw_reads, pw_failures;
    struct component_loop *loop; /* the skeleton: privileges, loop, control, signals */
    bool draining;               /* shut down: answer the workers still connected, then exit */
};

/* Fills a from the directory; a->status TEMPFAIL when it cannot say. */
static void lookup(struct dserver *srv, enum directory_query q, const char *key,
                   struct directory_answer *a)
{
    struct buf err = BUF_INIT;
    if (q == DIRECTORY_Q_LOGIN) {
        struct buf account = BUF_INIT, dn = BUF_INIT;
        enum directory_status s = directory_login_dn(srv->dir, key, &account, &dn, &err);
        if (s == DIRECTORY_OK) {
            a->kind = DIRECTORY_LOCAL;
            a->n_targets = 1;
            a->accounts = xcalloc(1, sizeof(char *));
            a->folders = xcalloc(1, sizeof(char *));
            a->accounts[0] = buf_steal(&account, NULL);
            a->folders[0] = xstrdup("");
            a->dn = buf_steal(&dn, NULL);
        } else if (s == DIRECTORY_ERR_NOT_FOUND) {
            a->kind = DIRECTORY_NO_SUCH_USER;
        } else {
            log_warning("directory lookup of login <%s> failed: %s", key, buf_cstr(&err));
            a->status = DIRECTORY_LOOKUP_TEMPFAIL;
        }
        buf_free(&account);
        buf_free(&dn);
    } else if (q == DIRECTORY_Q_RECIPIENT) {
        struct directory_result r = {0};
        if (directory_resolve(srv->dir, key, &r, &err) != 0) {
            log_warning("directory lookup of <%s> failed: %s", key, buf_cstr(&err));
            a->status = DIRECTORY_LOOKUP_TEMPFAIL;
        } else {
            a->kind = r.kind;
            a->loop = r.loop;
            a->n_targets = r.n_targets;
            a->accounts = xcalloc(r.n_targets ? r.n_targets : 1, sizeof(char *));
            a->folders = xcalloc(r.n_targets ? r.n_targets : 1, sizeof(char *));
            for (size_t i = 0; i < r.n_targets; i++) {
                a->accounts[i] = xstrdup(r.targets[i].account);
                a->folders[i] = xstrdup(r.targets[i].folder ? r.targets[i].folder : "");
            }
            a->n_remote = r.n_remote;
            a->remote = xcalloc(r.n_remote ? r.n_remote : 1, sizeof(char *));
            for (size_t i = 0; i < r.n_remote; i++)
                a->remote[i] = xstrdup(r.remote[i]);
        }
        directory_result_free(&r);
    } else {
        struct buf home = BUF_INIT;
        int rc =
            directory_account_info(srv->dir, key, &a->quota_bytes, &a->quota_messages, &home, &err);
        if (rc < 0) {
            log_warning("directory lookup of account <%s> failed: %s", key, buf_cstr(&err));
            a->status = DIRECTORY_LOOKUP_TEMPFAIL;
        } else if (rc == 0) {
            a->kind = DIRECTORY_NO_SUCH_USER;
        } else {
            a->kind = DIRECTORY_LOCAL;
            a->home = buf_steal(&home, NULL);
            a->n_targets = 1;
            a->accounts = xcalloc(1, sizeof(char *));
            a->folders = xcalloc(1, sizeof(char *));
            a->accounts[0] = directory_normalize_address(key, false);
            a->folders[0] = xstrdup("");
        }
        buf_free(&home);
    }
    buf_free(&err);
    if (a->status == DIRECTORY_LOOKUP_TEMPFAIL) {
        directory_answer_free(a);
        a->status = DIRECTORY_LOOKUP_TEMPFAIL;
    }
}

/* ---- password values (ldap_password_check = hash), for the auth process alone ---- */

struct pw_job {
    struct offload_job oj;
    struct dserver *srv;
    struct ipc_conn *conn; /* the auth process's, held while the job lives */
    uint64_t id;
    struct directory_answer a; /* the LOGIN answer, the value added when read */
    struct buf value, err;
    int r; /* directory_read_password's */
};

/* In a password thread: the read, on the network. */
static void pw_run(void *arg, struct offload_job *oj)
{
    struct dserver *srv = arg;
    struct pw_job *j = OFFLOAD_CONTAINER(oj, struct pw_job, oj);
    /* An unknown user costs the same search (of a DN nobody has): no faster "no". */
    const char *dn = j->a.kind == DIRECTORY_LOCAL ? j->a.dn : "";
    j->r = directory_read_password(srv->dir, dn, &j->value, &j->err);
}

static void pw_job_free(struct pw_job *j)
{
    if (j->value.data != NULL)
        explicit_bzero(j->value.data, j->value.len);
    buf_free(&j->value);
    buf_free(&j->err);
    directory_answer_free(&j->a);
    ipc_conn_release(j->conn);
    free(j);
}

static void pw_send(struct pw_job *j)
{
    struct buf payload = BUF_INIT;
    directory_proto_put_answer(&payload, j->id, &j->a);
    ipc_conn_send(j->conn, IPC_DIRECTORY_ANSWER, payload.data, payload.len);
    explicit_bzero(payload.data, payload.len);
    buf_free(&payload);
}

static void pw_done(void *arg, struct offload_job *oj)
{
    struct dserver *srv = arg;
    struct pw_job *j = OFFLOAD_CONTAINER(oj, struct pw_job, oj);
    srv->pw_reads++;
    srv->answered++;
    if (j->a.kind == DIRECTORY_LOCAL) {
        if (j->r < 0) {
            srv->pw_failures++;
            j->a.no_secret = true;
            log_warning("directory: cannot read the password of %s: %s", j->a.accounts[0],
                        buf_cstr(&j->err));
        } else if (j->r == 0) {
            log_warning("directory: %s has no password to check: %s", j->a.accounts[0],
                        j->err.len ? buf_cstr(&j->err) : "no value");
        } else if (j->value.len > DIRECTORY_PROTO_MAX_SECRET) {
            log_warning("directory: the password value of %s is longer than %u bytes: not used",
                        j->a.accounts[0], (unsigned)DIRECTORY_PROTO_MAX_SECRET);
        } else {
            j->a.secret = buf_steal(&j->value, NULL);
        }
    }
    if (ipc_conn_is_open(j->conn))
        pw_send(j);
    pw_job_free(j);
}

/* A LOGIN question of a directory that reads hashes: the account from the mirror
 * now, its password value from LDAP later (pw_done answers). */
static void login_with_hash(struct dserver *srv, struct ipc_conn *c, uint64_t id, const char *key)
{
    struct pw_job *j = xcalloc(1, sizeof(*j));
    j->srv = srv;
    j->id = id;
    buf_init(&j->value);
    buf_init(&j->err);
    lookup(srv, DIRECTORY_Q_LOGIN, key, &j->a);
    j->conn = c;
    ipc_conn_hold(c);
    if (j->a.status == DIRECTORY_LOOKUP_OK && offload_submit(srv->pw, &j->oj))
        return;
    if (j->a.status == DIRECTORY_LOOKUP_OK) {
        log_warning("directory: %u password reads waiting already: login <%s> deferred",
                    (unsigned)DIRECTORY_PW_QUEUE, key);
        directory_answer_free(&j->a);
        j->a.status = DIRECTORY_LOOKUP_TEMPFAIL;
    }
    srv->answered++;
    srv->tempfails++;
    pw_send(j);
    pw_job_free(j);
}

/* A lookup frame; LOGIN (a DN for the auth process) only on the auth socket. */
static const char *answer(struct dserver *srv, struct ipc_conn *c, const struct ipc_frame *f,
                          bool login)
{
    const char *why = NULL;
    uint64_t id = 0;
    enum directory_query q = DIRECTORY_Q_RECIPIENT;
    struct slice key = {0};
    if (directory_proto_get_lookup(f->payload, f->len, &id, &q, &key, &why) != 0)
        return why;
    /* The auth socket: LOGIN, and ACCOUNT (does an app password's account still exist?) */
    if (q == DIRECTORY_Q_LOGIN && !login)
        return "LOGIN is the auth process's question";
    if (q == DIRECTORY_Q_RECIPIENT && login)
        return "only LOGIN and ACCOUNT are asked here";
    char *k = slice_strdup(key);
    if (q == DIRECTORY_Q_LOGIN && srv->pw != NULL) {
        login_with_hash(srv, c, id, k);
        free(k);
        return NULL;
    }
    struct directory_answer a = {0};
    lookup(srv, q, k, &a);
    free(k);
    WHARF_ASSERT(a.secret == NULL); /* a password value goes out by login_with_hash alone */
    srv->answered++;
    if (a.status != DIRECTORY_LOOKUP_OK)
        srv->tempfails++;
    struct buf payload = BUF_INIT;
    directory_proto_put_answer(&payload, id, &a);
    ipc_conn_send(c, IPC_DIRECTORY_ANSWER, payload.data, payload.len);
    buf_free(&payload);
    directory_answer_free(&a);
    return NULL;
}

static const char *on_lookup(void *arg, struct ipc_conn *c, const struct ipc_frame *f)
{
    return answer(arg, c, f, false);
}

static const char *on_login(void *arg, struct ipc_conn *c, const struct ipc_frame *f)
{
    return answer(arg, c, f, true);
}

static void on_conn_close(void *arg, struct ipc_conn *c)
{
    struct dserver *srv = arg;
    if (srv->draining && ipc_service_connections(srv->service) == 0)
        event_base_loopexit(srv->base, NULL);
}

static const struct ipc_route directory_routes[] = {
    {IPC_DIRECTORY_LOOKUP, on_lookup},
    {0, NULL},
};

static const struct ipc_route login_routes[] = {
    {IPC_DIRECTORY_LOOKUP, on_login},
    {0, NULL},
};

/* Still root (under wharfd): the auth process's socket, in its own folder. */
static void as_root(void *arg)
{
    struct dserver *srv = arg;
    srv->auth_fd = -1;
    if (!directory_config_checks_passwords(srv->cfg))
        return;
    char *path = srv->auth_path = config_data_path(srv->cfg, "auth/directory.sock");
    struct buf err = BUF_INIT;
    uid_t uid;
    gid_t gid;
    srv->auth_fd = ipc_service_listen(path, 0600, NULL, &err);
    if (srv->auth_fd >= 0 && geteuid() == 0 &&
        (!datadir_auth_ids(srv->cfg, &uid, &gid) || chown(path, uid, gid) != 0)) {
        buf_printf(&err, "cannot give %s to %s: %s", path, srv->cfg->auth_user, strerror(errno));
        close(srv->auth_fd);
        srv->auth_fd = -1;
    }
    if (srv->auth_fd < 0)
        log_fatal(EX_CANTCREAT, "%s", buf_cstr(&err));
    buf_free(&err);
}

static void status_cb(void *arg, json_t *obj)
{
    struct dserver *srv = arg;
    json_object_set_new(obj, "connections",
                        json_integer((json_int_t)ipc_service_connections(srv->service)));
    json_object_set_new(obj, "lookups", json_integer((json_int_t)srv->answered));
    json_object_set_new(obj, "tempfails", json_integer((json_int_t)srv->tempfails));
    if (srv->pw != NULL) {
        json_object_set_new(obj, "password_reads", json_integer((json_int_t)srv->pw_reads));
        json_object_set_new(obj, "password_read_failures",
                            json_integer((json_int_t)srv->pw_failures));
    }
}

static void stop(struct dserver *srv)
{
    if (srv->service)
        ipc_service_unlisten(srv->service, true);
    event_base_loopexit(srv->base, NULL);
}

static void shutdown_cb(void *arg, int64_t deadline_ms)
{
    /* Workers finishing their sessions still need answers (a RCPT during the
     * drain): every worker keeps a connection open while it lives, so serve
     * until they are all gone or the deadline passes. The socket's name is
     * left alone: a new generation may have bound it already. */
    struct dserver *srv = arg;
    ipc_service_unlisten(srv->service, false);
    srv->draining = true;
    int64_t left = deadline_ms - monotonic_ms();
    struct timeval tv = clock_timeval_ms(left);
    event_base_loopexit(srv->base, ipc_service_connections(srv->service) ? &tv : NULL);
}

int directory_main(struct component_ctx *ctx)
{
    struct dserver srv_s = {.cfg = ctx->cfg}, *srv = &srv_s;
    const struct wharf_config *cfg = ctx->cfg;
    const struct component_hooks hooks = {
        .as_root = as_root, .status = status_cb, .shutdown = shutdown_cb, .arg = srv};
    srv->loop = component_loop_start(ctx, &hooks);
    srv->base = srv->loop->base;
    struct buf err = BUF_INIT;
    srv->dir = directory_open(cfg, &err);
    if (srv->dir == NULL || directory_attach_loop(srv->dir, srv->base, &err) != 0)
        log_fatal(EX_UNAVAILABLE, "%s", buf_cstr(&err));
    srv->sock_path = config_data_path(cfg, "run/directory.sock");
    /* 0600: only the wharf user's processes (the workers) may connect. */
    int fd = ipc_service_listen(srv->sock_path, 0600, NULL, &err);
    if (fd < 0)
        log_fatal(EX_CANTCREAT, "%s", buf_cstr(&err));
    struct ipc_service_params sp = {
        .name = "directory",
        .path = srv->sock_path,
        .routes = directory_routes,
        .max_frame = DIRECTORY_SERVER_MAX_REQUEST,
        .max_conns = (size_t)cfg->directory_max_clients,
        .max_conns_option = "directory_max_clients",
        .max_output = DIRECTORY_SERVER_MAX_OUTPUT,
        .on_close = on_conn_close,
        .arg = srv,
    };
    srv->service = ipc_service_new(srv->base, fd, &sp);
    log_info("directory: listening on %s", srv->sock_path);
    if (srv->auth_fd >= 0 && directory_config_reads_hashes(cfg)) {
        const struct offload_params op = {
            .name = "password reads",
            .threads = DIRECTORY_PW_THREADS,
            .max_queued = DIRECTORY_PW_QUEUE,
            .run = pw_run,
            .done = pw_done,
            .arg = srv,
        };
        srv->pw = offload_new(srv->base, &op, &err);
        if (srv->pw == NULL)
            log_fatal(EX_OSERR, "%s", buf_cstr(&err));
        log_info("directory: passwords are checked against the hashes in %s "
                 "(ldap_password_check = hash), read for the auth process alone",
                 cfg->ldap_password_attribute);
    }
    if (srv->auth_fd >= 0) {
        sp.name = "directory (auth)";
        sp.path = srv->auth_path;
        sp.routes = login_routes;
        sp.max_conns = 16; /* the auth process holds one */
        srv->auth_service = ipc_service_new(srv->base, srv->auth_fd, &sp);
    }

    component_loop_run(srv->loop);

    log_info("directory: stopping");
    stop(srv);
    srv->draining = false;
    if (srv->pw != NULL)
        offload_free(srv->pw); /* the reads running end: their answers go nowhere */
    srv->pw = NULL;
    ipc_service_free(srv->service);
    srv->service = NULL;
    if (srv->auth_service)
        ipc_service_free(srv->auth_service);
    free(srv->auth_path);
    directory_close(srv->dir);
    free(srv->sock_path);
    component_loop_free(srv->loop);
    buf_free(&err);
    return EX_OK;
}
