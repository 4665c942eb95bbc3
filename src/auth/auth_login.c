/*
 * auth_login.c - the login kit of the line protocols (auth_login.h): the
 * SASL exchange as a pure state machine, and its glue to a connection and
 * the auth client.
 *
 * Must never: keep a decoded password after the request is sent (wiped by
 * sasl_plain_free), read from a connection whose credentials are out
 * (paused), or call done() twice for one attempt.
 */
#include "auth/auth_login.h"
#include "base/clock.h"

#include "base/alloc.h"
#include "net/net.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* ---- the exchange ---- */

void auth_sasl_init(struct auth_sasl *x, unsigned mechs, size_t max_field)
{
    memset(x, 0, sizeof(*x));
    x->mechs = mechs;
    x->max_field = max_field;
    buf_init(&x->user);
}

void auth_sasl_reset(struct auth_sasl *x)
{
    explicit_bzero(x->user.data, x->user.len);
    buf_reset(&x->user);
    x->have_user = false;
    x->want_line = false;
}

void auth_sasl_free(struct auth_sasl *x)
{
    auth_sasl_reset(x);
    buf_free(&x->user);
}

void auth_sasl_out_init(struct auth_sasl_out *o)
{
    o->challenge = NULL;
    o->status = SASL_OK;
    sasl_plain_init(&o->creds);
}

void auth_sasl_out_free(struct auth_sasl_out *o)
{
    sasl_plain_free(&o->creds);
}

static enum auth_sasl_action refused(struct auth_sasl *x, enum sasl_status st,
                                     struct auth_sasl_out *out)
{
    auth_sasl_reset(x);
    out->status = st;
    return AUTH_SASL_REFUSED;
}

static enum auth_sasl_action challenge(struct auth_sasl *x, const char *text,
                                       struct auth_sasl_out *out)
{
    x->want_line = true;
    out->challenge = text;
    return AUTH_SASL_CHALLENGE;
}

/* The PLAIN response, or the LOGIN user name or password. */
static enum auth_sasl_action respond(struct auth_sasl *x, struct slice line,
                                     struct auth_sasl_out *out)
{
    x->want_line = false;
    if (strcmp(x->mech, "PLAIN") == 0) {
        enum sasl_status st = sasl_plain_decode(line, x->max_field, &out->creds);
        return st == SASL_OK ? AUTH_SASL_CHECK : refused(x, st, out);
    }
    if (!x->have_user) {
        enum sasl_status st = sasl_login_decode(line, x->max_field, &x->user);
        if (st != SASL_OK)
            return refused(x, st, out);
        x->have_user = true;
        return challenge(x, SASL_LOGIN_PROMPT_PASS, out);
    }
    enum sasl_status st = sasl_login_decode(line, x->max_field, &out->creds.passwd);
    if (st != SASL_OK)
        return refused(x, st, out);
    buf_reset(&out->creds.authcid);
    buf_append(&out->creds.authcid, x->user.data, x->user.len);
    auth_sasl_reset(x);
    return AUTH_SASL_CHECK;
}

enum auth_sasl_action auth_sasl_start(struct auth_sasl *x, struct slice mech, struct slice ir,
                                      struct auth_sasl_out *out)
{
    auth_sasl_reset(x);
    if ((x->mechs & AUTH_MECH_PLAIN) && slice_eq_cstr_nocase(mech, "PLAIN"))
        x->mech = "PLAIN";
    else if ((x->mechs & AUTH_MECH_LOGIN) && slice_eq_cstr_nocase(mech, "LOGIN"))
        x->mech = "LOGIN";
    else
        return AUTH_SASL_UNSUPPORTED;
    if (ir.ptr != NULL)
        return respond(x, ir, out);
    return challenge(x, strcmp(x->mech, "PLAIN") == 0 ? "" : SASL_LOGIN_PROMPT_USER, out);
}

enum auth_sasl_action auth_sasl_step(struct auth_sasl *x, struct slice line,
                                     struct auth_sasl_out *out)
{
    if (!x->want_line || x->mech == NULL)
        return refused(x, SASL_MALFORMED, out);
    return respond(x, line, out);
}

void auth_sasl_mechanisms(const struct auth_sasl *x, const char *prefix, struct buf *out)
{
    if (x->mechs & AUTH_MECH_PLAIN) {
        buf_append_cstr(out, prefix);
        buf_append_cstr(out, "PLAIN");
    }
    if (x->mechs & AUTH_MECH_LOGIN) {
        buf_append_cstr(out, prefix);
        buf_append_cstr(out, "LOGIN");
    }
}

/* ---- the kit on a connection ---- */

struct auth_login {
    struct auth_client *client;
    struct net_conn *c;
    struct auth_login_params p;
    auth_login_done_fn done;
    void *arg;
    struct auth_sasl x;
    const char *mech;          /* of the check under way */
    void *handle;              /* the check in flight */
    bool pending;              /* set while the auth client has not answered */
    bool finished;             /* done() ran for the attempt under way */
    bool session, end_session; /* the check under way asks for (or ends) a session */
    const char *token;         /* the session made by the check, while done() runs */
    struct event *delay;
    int in_done; /* inside done() (or a check that may call it): a free waits */
    bool freed;  /* auth_login_free was called meanwhile */
};

static void destroy(struct auth_login *l);

/* Back from done(): true when the kit was freed meanwhile and is gone now. */
static bool unwind(struct auth_login *l)
{
    if (l->in_done > 0 || !l->freed)
        return false;
    destroy(l);
    return true;
}

static void finish(struct auth_login *l, enum auth_login_status st, const char *account)
{
    struct auth_login_result r = {
        .status = st, .account = account, .mechanism = l->mech, .session = l->token};
    l->finished = true;
    l->in_done++;
    l->done(l->arg, &r);
    l->in_done--;
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    finish(arg, AUTH_LOGIN_FAILED, NULL);
    unwind(arg);
}

static void checked_result(struct auth_login *l, enum auth_result result, const char *account,
                           const char *session);

static void checked(void *arg, enum auth_result result, const char *account, const char *session)
{
    struct auth_login *l = arg;
    l->pending = false;
    l->handle = NULL;
    l->in_done++; /* done() may free the kit (a connection that needs no more logins) */
    checked_result(l, result, account, session);
    l->in_done--;
    unwind(l);
}

static void checked_result(struct auth_login *l, enum auth_result result, const char *account,
                           const char *session)
{
    switch (result) {
    case AUTH_OK:
        /* Logged in: no longer evicted as an idle stranger; counted per (user, address). */
        if (!net_conn_login(l->c, l->p.service, account, l->p.max_per_user_addr)) {
            finish(l, AUTH_LOGIN_USER_ADDR_FULL, account);
        } else {
            l->token = session;
            finish(l, AUTH_LOGIN_OK, account);
            l->token = NULL;
        }
        return;
    case AUTH_FAILED:
        if (l->p.failure_delay_ms > 0 && l->delay != NULL) {
            int64_t ms = l->p.failure_delay_ms;
            struct timeval tv = clock_timeval_ms(ms);
            evtimer_add(l->delay, &tv);
            return;
        }
        finish(l, AUTH_LOGIN_FAILED, NULL);
        return;
    case AUTH_RATELIMIT:
        finish(l, AUTH_LOGIN_RATELIMIT, NULL);
        return;
    case AUTH_TEMPFAIL:
        finish(l, AUTH_LOGIN_TEMPFAIL, NULL);
        return;
    }
}

static enum auth_login_step check(struct auth_login *l, const char *mech, const char *authzid,
                                  const char *user, const char *pass)
{
    l->mech = mech;
    struct auth_request req = {
        .service = l->p.service,
        .mechanism = mech,
        .authzid = authzid,
        .username = user,
        .password = pass,
        .client_addr = net_conn_addr(l->c),
        .secure = net_conn_is_tls(l->c),
        .session = l->session,
        .end_session = l->end_session,
    };
    l->session = l->end_session = false;
    net_conn_pause(l->c);
    l->pending = true;
    l->finished = false;
    l->in_done++;
    void *h = auth_client_check(l->client, &req, checked, l);
    l->in_done--;
    if (unwind(l))
        return AUTH_LOGIN_DONE;
    if (l->pending) /* auth_client answers from the loop, but do not rely on it */
        l->handle = h;
    return l->finished ? AUTH_LOGIN_DONE : AUTH_LOGIN_CHECKING;
}

/* Turns one action of the exchange into the kit's answer. */
static enum auth_login_step act(struct auth_login *l, enum auth_sasl_action a,
                                struct auth_sasl_out *o)
{
    switch (a) {
    case AUTH_SASL_UNSUPPORTED:
        return AUTH_LOGIN_UNSUPPORTED;
    case AUTH_SASL_CHALLENGE:
        net_conn_printf(l->c, "%s%s\r\n", l->p.continuation, o->challenge);
        return AUTH_LOGIN_CHALLENGED;
    case AUTH_SASL_CHECK:
        return check(l, l->x.mech, buf_cstr(&o->creds.authzid), buf_cstr(&o->creds.authcid),
                     buf_cstr(&o->creds.passwd));
    case AUTH_SASL_REFUSED:
        break;
    }
    struct auth_login_result r = {
        .status = o->status == SASL_CANCEL ? AUTH_LOGIN_CANCELLED : AUTH_LOGIN_MALFORMED,
        .mechanism = l->x.mech,
        .sasl = o->status,
    };
    l->finished = true;
    l->done(l->arg, &r);
    return AUTH_LOGIN_DONE;
}

struct auth_login *auth_login_new(struct auth_client *client, struct net_conn *c,
                                  const struct auth_login_params *p, auth_login_done_fn done,
                                  void *arg)
{
    struct auth_login *l = xcalloc(1, sizeof(*l));
    l->client = client;
    l->c = c;
    l->p = *p;
    l->done = done;
    l->arg = arg;
    l->mech = "PLAIN";
    auth_sasl_init(&l->x, p->mechs, p->max_credential);
    if (p->base != NULL)
        l->delay = evtimer_new(p->base, delay_cb, l);
    return l;
}

void auth_login_free(struct auth_login *l)
{
    if (l == NULL)
        return;
    l->freed = true;
    unwind(l); /* at once, or when done() returns */
}

static void destroy(struct auth_login *l)
{
    if (l->handle)
        auth_client_cancel(l->client, l->handle);
    if (l->delay)
        event_free(l->delay);
    auth_sasl_free(&l->x);
    free(l);
}

bool auth_login_allowed(const struct auth_login *l)
{
    return net_conn_is_tls(l->c) || l->p.plaintext;
}

void auth_login_mechanisms(const struct auth_login *l, const char *prefix, struct buf *out)
{
    auth_sasl_mechanisms(&l->x, prefix, out);
}

bool auth_login_offers(const struct auth_login *l, struct slice mech)
{
    return ((l->x.mechs & AUTH_MECH_PLAIN) && slice_eq_cstr_nocase(mech, "PLAIN")) ||
           ((l->x.mechs & AUTH_MECH_LOGIN) && slice_eq_cstr_nocase(mech, "LOGIN"));
}

const char *auth_login_mechanism(const struct auth_login *l)
{
    return l->mech;
}

enum auth_login_step auth_login_begin(struct auth_login *l, struct slice mech, struct slice ir)
{
    struct auth_sasl_out o;
    auth_sasl_out_init(&o);
    enum auth_login_step st = act(l, auth_sasl_start(&l->x, mech, ir, &o), &o);
    auth_sasl_out_free(&o);
    return st;
}

enum auth_login_step auth_login_line(struct auth_login *l, struct slice line)
{
    struct auth_sasl_out o;
    auth_sasl_out_init(&o);
    enum auth_login_step st = act(l, auth_sasl_step(&l->x, line, &o), &o);
    auth_sasl_out_free(&o);
    return st;
}

void auth_login_abort(struct auth_login *l)
{
    auth_sasl_reset(&l->x);
}

enum auth_login_step auth_login_password(struct auth_login *l, struct slice user, struct slice pass)
{
    size_t max = l->p.max_credential;
    auth_sasl_reset(&l->x);
    if (user.len > max || pass.len > max || (user.len && memchr(user.ptr, '\0', user.len)) ||
        (pass.len && memchr(pass.ptr, '\0', pass.len))) {
        l->mech = "PLAIN";
        finish(l, AUTH_LOGIN_FAILED, NULL);
        return AUTH_LOGIN_DONE;
    }
    char *u = slice_strdup(user), *p = slice_strdup(pass);
    enum auth_login_step st = check(l, "PLAIN", "", u, p);
    explicit_bzero(p, pass.len);
    free(u);
    free(p);
    return st;
}

enum auth_login_step auth_login_session(struct auth_login *l, struct slice user, struct slice pass)
{
    l->session = true;
    enum auth_login_step st = auth_login_password(l, user, pass);
    l->session = false;
    return st;
}

enum auth_login_step auth_login_end_session(struct auth_login *l, struct slice token)
{
    l->end_session = true;
    enum auth_login_step st = auth_login_token(l, token);
    l->end_session = false;
    return st;
}

enum auth_login_step auth_login_token(struct auth_login *l, struct slice token)
{
    auth_sasl_reset(&l->x);
    /* "wht_" ID "_" SECRET: the ID is the name the auth process counts failures under. */
    if (token.len > l->p.max_credential || token.len < 22 ||
        memchr(token.ptr, '\0', token.len) != NULL) {
        l->mech = "BEARER";
        finish(l, AUTH_LOGIN_FAILED, NULL);
        return AUTH_LOGIN_DONE;
    }
    char *t = slice_strdup(token);
    char *id = slice_strdup(slice_make(token.ptr, 20)); /* "wht_"/"whs_" and the 16-digit id */
    enum auth_login_step st = check(l, "BEARER", "", id, t);
    explicit_bzero(t, token.len);
    free(t);
    free(id);
    return st;
}
