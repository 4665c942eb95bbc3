/*
 * auth_client.c - the workers' side of auth.sock (auth_client.h), on the
 * IPC client kit (ipc/client.h): one connection per worker process, many
 * checks in flight on it, matched to their replies by id.
 *
 * Every check ends in exactly one callback: the reply, or AUTH_TEMPFAIL when
 * the auth process cannot be reached, goes away, or does not answer within
 * auth_client_timeout. Failures found before anything is sent are reported
 * from the event loop too, never from inside auth_client_check. A request
 * the auth process would refuse as malformed (a field over the limits) is
 * never sent: it would cost the whole connection, and every other session's
 * check on it. Never logs a password, nor leaves a copy of one behind.
 */
#include "auth/auth_client.h"
#include "auth/auth_proto.h"
#include "base/alloc.h"
#include "ipc/client.h"
#include "ipc/frame.h"

#include <stdlib.h>
#include <string.h>

/* Largest reply accepted: an id, a result and an account name. */
#define AUTH_CLIENT_MAX_REPLY 4096

struct check {
    struct ipc_request *req;
    auth_client_cb cb;
    void *arg;
    enum auth_result early; /* the answer given without asking (IPC_CLIENT_LOCAL) */
};

struct auth_client {
    const struct wharf_config *cfg;
    struct ipc_client *ipc;
};

static int check_done(void *arg, enum ipc_client_status st, const struct ipc_frame *reply)
{
    struct check *k = arg;
    enum auth_result res = st == IPC_CLIENT_LOCAL ? k->early : AUTH_TEMPFAIL;
    char *acct = NULL, *sess = NULL;
    if (st == IPC_CLIENT_REPLY) {
        uint64_t id;
        struct slice account, session;
        if (auth_proto_get_reply(reply->payload, reply->len, &id, &res, &account, &session) != 0)
            return -1;
        if (res == AUTH_OK)
            acct = slice_strdup(account);
        if (res == AUTH_OK && session.len > 0)
            sess = slice_strdup(session);
    }
    auth_client_cb cb = k->cb;
    void *cb_arg = k->arg;
    free(k);
    cb(cb_arg, res, acct, sess);
    free(acct);
    xfree_secret(sess);
    return 0;
}

struct auth_client *auth_client_new(struct event_base *base, const struct wharf_config *cfg)
{
    struct auth_client *c = xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    char *path = config_data_path(cfg, "run/auth.sock");
    struct ipc_client_params p = {
        .name = "auth client",
        .peer = "the auth process",
        .reply_type = IPC_AUTH_REPLY,
        .max_reply = AUTH_CLIENT_MAX_REPLY,
        .timeout_ms = cfg->auth_client_timeout,
    };
    c->ipc = ipc_client_new(base, path, &p);
    free(path);
    return c;
}

static bool drop_check(void *arg, void *ctx)
{
    free(arg);
    return false;
}

void auth_client_free(struct auth_client *c)
{
    if (c == NULL)
        return;
    ipc_client_any(c->ipc, drop_check, NULL); /* the checks still outstanding */
    ipc_client_free(c->ipc);
    free(c);
}

static bool field_ok(const char *s, size_t max)
{
    return s == NULL || strlen(s) <= max;
}

void *auth_client_check(struct auth_client *c, const struct auth_request *req, auth_client_cb cb,
                        void *arg)
{
    struct check *k = xcalloc(1, sizeof(*k));
    k->cb = cb;
    k->arg = arg;
    uint64_t id;
    k->req = ipc_client_start(c->ipc, check_done, k, &id);
    size_t max = (size_t)c->cfg->auth_max_credential_length;
    if (!field_ok(req->username, max) || !field_ok(req->password, max) ||
        !field_ok(req->authzid, max) || !field_ok(req->service, AUTH_PROTO_MAX_SERVICE) ||
        !field_ok(req->mechanism, AUTH_PROTO_MAX_SERVICE) ||
        !field_ok(req->client_addr, AUTH_PROTO_MAX_ADDR)) {
        k->early = AUTH_FAILED;
        ipc_client_later(c->ipc, k->req);
        return k;
    }
    struct buf payload = BUF_INIT;
    auth_proto_put_request(&payload, id, req);
    ipc_client_send(c->ipc, k->req, IPC_AUTH_REQUEST, payload.data, payload.len);
    explicit_bzero(payload.data, payload.len);
    buf_free(&payload);
    return k;
}

void auth_client_cancel(struct auth_client *c, void *handle)
{
    struct check *k = handle;
    ipc_client_cancel(c->ipc, k->req);
    free(k);
}
