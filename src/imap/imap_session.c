/*
 * imap_session.c - IMAP sessions: reading commands, the state machine, the
 * commands of every state (CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN,
 * AUTHENTICATE, ENABLE, ID, IDLE) and dispatch to the other files.
 *
 * Commands run one at a time in arrival order; while credentials are out at
 * the auth process the connection stops reading. Every malformed command gets
 * a tagged BAD and the session goes on, until imap_max_errors in a row.
 * Must never: accept a password in plaintext unless imap_plaintext_auth,
 * run plaintext bytes received before STARTTLS under TLS, or let a session
 * name another account's mailboxes (only s->account is ever passed to the store).
 */
#include "base/alloc.h"
#include "base/log.h"
#include "base/slab.h"
#include "imap/imap_context.h"
#include "imap/imap_int.h"
#include "imap/imap_notify.h"
#include "imap/imap_session.h"
#include "ipc/frame.h"

#include <search.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void imap_printf(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line_vreply(&s->ls, fmt, ap);
    va_end(ap);
}

static void logout_now(struct imap_session *s)
{
    s->state = IMAP_LOGOUT;
    line_close(&s->ls);
}

/* imap_max_errors malformed commands in a row (line_session's too_many). */
static void too_many_errors(void *arg)
{
    struct imap_session *s = arg;
    imap_printf(s, "* BYE Too many invalid commands");
    s->state = IMAP_LOGOUT;
}

void imap_bad(struct imap_session *s, struct slice tag, const char *text)
{
    if (s->name_error != NULL) {
        /* A well-formed astring that no mailbox can be named (its encoding):
         * NO, as Dovecot answers, not a syntax error that ends strict clients. */
        imap_printf(s, "%.*s NO [CANNOT] %s", (int)tag.len, tag.ptr, s->name_error);
        s->name_error = NULL;
        return;
    }
    line_error(&s->ls, "%.*s BAD %s", (int)tag.len, tag.ptr, text);
}

void imap_store_error(struct imap_session *s, struct slice tag, const char *what, struct buf *err)
{
    log_error("user=<%s>: %s: %s", s->account ? s->account : "", what, buf_cstr(err));
    imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", (int)tag.len, tag.ptr);
}

static void capability_write(struct imap_session *s, struct buf *b)
{
    buf_append_cstr(
        b, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS "
           "MOVE UNSELECT CHILDREN SPECIAL-USE STATUS=SIZE CONDSTORE QRESYNC ESEARCH "
           "SEARCHRES LIST-EXTENDED LIST-STATUS BINARY MULTIAPPEND SORT "
           "THREAD=ORDEREDSUBJECT THREAD=REFERENCES QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE "
           "ACL RIGHTS=texk");
    /* RFC 5267, RFC 5957, RFC 4469 */
    buf_append_cstr(b, " ESORT CONTEXT=SEARCH CONTEXT=SORT SORT=DISPLAY CATENATE NOTIFY");
    if (s->state == IMAP_NOT_AUTHENTICATED) {
        if (net_conn_can_starttls(s->conn))
            buf_append_cstr(b, " STARTTLS");
        if (auth_login_allowed(s->login))
            auth_login_mechanisms(s->login, " AUTH=", b);
        else
            buf_append_cstr(b, " LOGINDISABLED");
    } else {
        buf_append_cstr(b, " COMPRESS=DEFLATE");
    }
}

/* ---- mailbox-changed events ---- */

/* The changes one store read gave, for the other sessions woken by the same event. */
struct imap_changes_memo {
    const char *owner, *name;
    bool have;
    uint64_t since;
    struct store_changes c;
};

static void changes_copy(struct store_changes *dst, const struct store_changes *src)
{
    *dst = *src;
    dst->msgs = xcalloc(src->n ? src->n : 1, sizeof(*dst->msgs));
    for (size_t i = 0; i < src->n; i++) {
        dst->msgs[i] = src->msgs[i];
        dst->msgs[i].keywords = xstrdup(src->msgs[i].keywords);
        dst->msgs[i].structure = NULL; /* never in a listing of changes */
    }
    dst->expunged = xcalloc(src->n_expunged ? src->n_expunged : 1, sizeof(*dst->expunged));
    if (src->n_expunged > 0)
        memcpy(dst->expunged, src->expunged, src->n_expunged * sizeof(*dst->expunged));
}

int imap_store_changes(struct imap_session *s, uint64_t since, struct store_changes *c,
                       struct buf *err)
{
    struct imap_changes_memo *m = s->srv->memo;
    const struct imap_view *v = &s->view;
    bool same = m != NULL && strcmp(m->owner, v->owner) == 0 && strcmp(m->name, v->name) == 0;
    if (same && m->have && m->since == since) {
        changes_copy(c, &m->c);
        return 0;
    }
    int rc = store_message_changes_id(s->srv->store, v->owner, v->id, since, c, err);
    if (rc == 0 && same && !m->have) {
        changes_copy(&m->c, c);
        m->since = since;
        m->have = true;
    }
    return rc;
}

/* The sessions that have one mailbox selected: a node of srv->selected. */
struct imap_selected {
    char *owner, *name; /* the key: the store's names */
    struct imap_session *head;
};

static int selected_cmp(const void *a, const void *b)
{
    const struct imap_selected *x = a, *y = b;
    int c = strcmp(x->owner, y->owner);
    return c != 0 ? c : strcmp(x->name, y->name);
}

void imap_selected_link(struct imap_session *s)
{
    if (s->sel != NULL || s->state != IMAP_SELECTED || s->view.name == NULL)
        return;
    struct imap_selected key = {.owner = s->view.owner, .name = s->view.name};
    struct imap_selected **found = tsearch(&key, &s->srv->selected, selected_cmp);
    if (found == NULL)
        log_panic("out of memory indexing a selected mailbox");
    if (*found == &key) { /* a new node: make it one of its own */
        struct imap_selected *n = xcalloc(1, sizeof(*n));
        n->owner = xstrdup(key.owner);
        n->name = xstrdup(key.name);
        *found = n;
    }
    struct imap_selected *n = *found;
    s->sel = n;
    s->sel_prev = NULL;
    s->sel_next = n->head;
    if (n->head)
        n->head->sel_prev = s;
    n->head = s;
}

void imap_selected_unlink(struct imap_session *s)
{
    struct imap_selected *n = s->sel;
    if (n == NULL)
        return;
    if (s->sel_prev)
        s->sel_prev->sel_next = s->sel_next;
    else
        n->head = s->sel_next;
    if (s->sel_next)
        s->sel_next->sel_prev = s->sel_prev;
    s->sel = NULL;
    s->sel_prev = s->sel_next = NULL;
    if (n->head == NULL) {
        tdelete(n, &s->srv->selected, selected_cmp);
        free(n->owner);
        free(n->name);
        free(n);
    }
}

void imap_notify_track(struct imap_session *s, struct imap_notify *n)
{
    struct imap_server *srv = s->srv;
    bool linked = s->notify != NULL;
    s->notify = n;
    if (linked && n == NULL) {
        if (s->ntf_prev)
            s->ntf_prev->ntf_next = s->ntf_next;
        else
            srv->notifying = s->ntf_next;
        if (s->ntf_next)
            s->ntf_next->ntf_prev = s->ntf_prev;
        s->ntf_prev = s->ntf_next = NULL;
    } else if (!linked && n != NULL) {
        s->ntf_prev = NULL;
        s->ntf_next = srv->notifying;
        if (srv->notifying)
            srv->notifying->ntf_prev = s;
        srv->notifying = s;
    }
}

/*
 * A mailbox changed (owner: whose; a session may have another owner's
 * selected): the sessions that have it selected sync (those in IDLE at once,
 * the others at their next command), those with NOTIFY hear of it. Nobody
 * else is looked at.
 */
static void wake_sessions(struct imap_server *srv, const char *owner, const char *mailbox,
                          const struct imap_session *except)
{
    srv->changed_events++;
    struct imap_selected key = {.owner = (char *)owner, .name = (char *)mailbox};
    struct imap_selected **found = tfind(&key, &srv->selected, selected_cmp);
    /* 10,000 IDLE connections over 100 users: 100 sessions woken per delivery,
     * which read the store once, not 100 times */
    struct imap_changes_memo memo = {.owner = owner, .name = mailbox};
    srv->memo = &memo;
    struct imap_session *next;
    for (struct imap_session *s = found ? (*found)->head : NULL; s != NULL; s = next) {
        next = s->sel_next;
        srv->changed_visits++;
        if (s == except)
            continue;
        s->view.dirty = true;
        if (!imap_notify_selected_changed(s) && s->wait == IMAP_WAIT_IDLE)
            imap_view_sync(s, true, NULL, 0);
    }
    srv->memo = NULL;
    if (memo.have)
        store_changes_free(&memo.c);
    for (struct imap_session *s = srv->notifying; s != NULL; s = next) {
        next = s->ntf_next;
        srv->changed_visits++;
        if (s != except)
            imap_notify_mailbox_changed(s, owner, mailbox); /* NOTIFY: another mailbox */
    }
}

void imap_mailbox_changed(struct imap_session *s, const char *owner, const char *mailbox)
{
    struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                           .u.mailbox_changed = {.owner = owner, .mailbox = mailbox}};
    net_worker_publish(s->srv->worker, &ev);
    /* The bus relays to the other processes only. */
    wake_sessions(s->srv, owner, mailbox, s);
}

void imap_server_event(void *arg, const struct ipc_event *ev)
{
    struct imap_server *srv = arg;
    if (ev->type == IPC_EVENT_MAILBOX_LIST)
        imap_notify_list_event(srv, &ev->u.mailbox_list);
    else if (ev->type == IPC_EVENT_MAILBOX_CHANGED)
        wake_sessions(srv, ev->u.mailbox_changed.owner, ev->u.mailbox_changed.mailbox, NULL);
}

/* ---- login ---- */

/* The account's quota is in the worker's cache (or could not be had): the OK. */
static void login_ready(void *arg, const struct directory_answer *a)
{
    struct imap_session *s = arg;
    s->dir_handle = NULL;
    s->wait = IMAP_WAIT_NONE;
    if (imap_proxy_login(s, a))
        return;
    struct buf b = BUF_INIT;
    capability_write(s, &b);
    imap_printf(s, "%s OK [CAPABILITY %s] Logged in", s->tag, buf_cstr(&b));
    buf_free(&b);
    free(s->tag);
    s->tag = NULL;
    net_conn_resume(s->conn);
}

void imap_login_accepted(struct imap_session *s, const char *account, const char *via)
{
    size_t alen = strlen(account) + 1;
    s->account = memcpy(slab_malloc(alen), account, alen); /* as the session */
    s->state = IMAP_AUTHENTICATED;
    s->reader.max_literal = s->srv->cfg->imap_max_literal_size;
    s->ls.errors = 0;
    log_info("login: user=<%s>, rip=%s, %s%s%s", account, net_conn_addr(s->conn),
             net_conn_is_tls(s->conn) ? "TLS" : "plaintext", via ? ", via front-end " : "",
             via ? via : "");
    /* Ask the directory for the account's quota (APPEND and GETQUOTA use it
     * without waiting) and home server before the OK: the session stays paused
     * until then. */
    s->wait = IMAP_WAIT_AUTH;
    s->dir_handle =
        directory_client_lookup(s->srv->dir, DIRECTORY_Q_ACCOUNT, account, login_ready, s);
}

void imap_login_undo(struct imap_session *s)
{
    slab_free(s->account);
    s->account = NULL;
    s->handover = false;
    s->state = IMAP_NOT_AUTHENTICATED;
    s->reader.max_literal = IMAP_MAX_PREAUTH_LITERAL;
}

static void auth_done(void *arg, const struct auth_login_result *r)
{
    struct imap_session *s = arg;
    s->wait = IMAP_WAIT_NONE;
    const char *tag = s->tag;
    switch (r->status) {
    case AUTH_LOGIN_OK:
        imap_login_accepted(s, r->account, NULL);
        return;
    case AUTH_LOGIN_USER_ADDR_FULL:
        imap_printf(s,
                    "%s NO [LIMIT] Too many connections of this user from this address "
                    "(imap_max_userip_connections=%lld); close one and try again",
                    tag, s->srv->cfg->imap_max_userip_connections);
        break;
    case AUTH_LOGIN_FAILED:
        imap_printf(s, "%s NO [AUTHENTICATIONFAILED] Authentication failed", tag);
        break;
    case AUTH_LOGIN_RATELIMIT:
        imap_printf(s, "%s NO [UNAVAILABLE] Too many failed logins, try again later", tag);
        break;
    case AUTH_LOGIN_TEMPFAIL:
        imap_printf(s, "%s NO [UNAVAILABLE] Authentication is not available now, try again later",
                    tag);
        break;
    case AUTH_LOGIN_CANCELLED:
        imap_printf(s, "%s BAD Authentication cancelled", tag);
        break;
    case AUTH_LOGIN_MALFORMED: {
        struct buf t = BUF_INIT;
        buf_printf(&t, "Invalid PLAIN response: %s", sasl_status_text(r->sasl));
        imap_bad(s, slice_from_cstr(tag), buf_cstr(&t));
        buf_free(&t);
        break;
    }
    }
    free(s->tag);
    s->tag = NULL;
    net_conn_resume(s->conn);
}

/* Keeps the tag of the login under way (tag may point into s->tag). */
static void login_tag(struct imap_session *s, struct slice tag)
{
    char *t = slice_strdup(tag);
    free(s->tag);
    s->tag = t;
}

/* What the login kit asks next: a response line, or the wait for the auth process. */
static void auth_step(struct imap_session *s, enum auth_login_step st)
{
    if (st == AUTH_LOGIN_CHALLENGED)
        s->wait = IMAP_WAIT_SASL;
    else if (st == AUTH_LOGIN_CHECKING)
        s->wait = IMAP_WAIT_AUTH;
}

/* No login in plaintext unless imap_plaintext_auth: says so. */
static bool login_refused(struct imap_session *s, struct slice tag)
{
    if (auth_login_allowed(s->login))
        return false;
    imap_printf(s,
                "%.*s NO [PRIVACYREQUIRED] Plaintext authentication disallowed on "
                "non-secure connections; use STARTTLS first",
                (int)tag.len, tag.ptr);
    return true;
}

static void cmd_authenticate(struct imap_session *s, struct slice tag, bool uid,
                             const struct imap_arg *args, size_t n)
{
    (void)uid;
    if (n < 1 || n > 2 || args[0].type != IMAP_ARG_ATOM) {
        imap_bad(s, tag, "Usage: AUTHENTICATE mechanism [initial-response]");
        return;
    }
    if (login_refused(s, tag))
        return;
    if (!auth_login_offers(s->login, args[0].str)) {
        imap_printf(s, "%.*s NO [CANNOT] Unsupported authentication mechanism", (int)tag.len,
                    tag.ptr);
        return;
    }
    if (n == 2 && args[1].type != IMAP_ARG_ATOM) { /* SASL-IR (RFC 4959) */
        imap_bad(s, tag, "Invalid initial response");
        return;
    }
    login_tag(s, tag);
    auth_step(s, auth_login_begin(s->login, args[0].str, n == 2 ? args[1].str : SLICE_NULL));
}

static void cmd_login(struct imap_session *s, struct slice tag, bool uid,
                      const struct imap_arg *args, size_t n)
{
    (void)uid;
    struct slice user, pass;
    if (n != 2 || !imap_arg_astring(&args[0], &user) || !imap_arg_astring(&args[1], &pass)) {
        imap_bad(s, tag, "Usage: LOGIN user password");
        return;
    }
    if (login_refused(s, tag))
        return;
    login_tag(s, tag);
    auth_step(s, auth_login_password(s->login, user, pass));
}

static void cmd_starttls(struct imap_session *s, struct slice tag, bool uid,
                         const struct imap_arg *args, size_t n)
{
    (void)uid, (void)args, (void)n;
    switch (line_starttls(&s->ls, "%.*s OK Begin TLS negotiation now", (int)tag.len, tag.ptr)) {
    case LINE_STARTTLS_ACTIVE:
        imap_bad(s, tag, "Already using TLS");
        return;
    case LINE_STARTTLS_UNAVAILABLE:
        imap_bad(s, tag, "STARTTLS is not available on this port");
        return;
    case LINE_STARTTLS_FAILED:
        s->state = IMAP_LOGOUT;
        return;
    case LINE_STARTTLS_STARTED:
        s->wait = IMAP_WAIT_TLS;
        return;
    }
}

/* ---- any state ---- */

static void cmd_capability(struct imap_session *s, struct slice tag, bool uid,
                           const struct imap_arg *args, size_t n)
{
    (void)uid, (void)args, (void)n;
    struct buf b = BUF_INIT;
    capability_write(s, &b);
    imap_printf(s, "* CAPABILITY %s", buf_cstr(&b));
    imap_printf(s, "%.*s OK Capability completed", (int)tag.len, tag.ptr);
    buf_free(&b);
}

static void cmd_noop(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid, (void)args, (void)n;
    if (s->state == IMAP_SELECTED)
        imap_view_sync(s, true, NULL, 0);
    imap_printf(s, "%.*s OK NOOP completed", (int)tag.len, tag.ptr);
}

static void cmd_logout(struct imap_session *s, struct slice tag, bool uid,
                       const struct imap_arg *args, size_t n)
{
    (void)uid, (void)args, (void)n;
    imap_printf(s, "* BYE Logging out");
    imap_printf(s, "%.*s OK Logout completed", (int)tag.len, tag.ptr);
    logout_now(s);
}

static void cmd_id(struct imap_session *s, struct slice tag, bool uid, const struct imap_arg *args,
                   size_t n)
{
    (void)uid;
    if (n != 1 || (args[0].type != IMAP_ARG_LIST && !imap_arg_is_atom(&args[0], "NIL"))) {
        imap_bad(s, tag, "Usage: ID (name value ...) or ID NIL");
        return;
    }
    imap_printf(s, "* ID (\"name\" \"Wharf\")");
    imap_printf(s, "%.*s OK ID completed", (int)tag.len, tag.ptr);
}

static void cmd_enable(struct imap_session *s, struct slice tag, bool uid,
                       const struct imap_arg *args, size_t n)
{
    (void)uid;
    if (n == 0) {
        imap_bad(s, tag, "Usage: ENABLE capability ...");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (args[i].type != IMAP_ARG_ATOM) {
            imap_bad(s, tag, "Usage: ENABLE capability ...");
            return;
        }
    }
    /* CONDSTORE, QRESYNC and IMAP4rev2 are the ones there are to enable. */
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "* ENABLED");
    for (size_t i = 0; i < n; i++) {
        if (slice_eq_cstr_nocase(args[i].str, "CONDSTORE") && !s->condstore) {
            s->condstore = true;
            buf_append_cstr(&b, " CONDSTORE");
        } else if (slice_eq_cstr_nocase(args[i].str, "QRESYNC") && !s->qresync) {
            s->qresync = s->condstore = true; /* RFC 7162 3.2.3: QRESYNC implies CONDSTORE */
            buf_append_cstr(&b, " QRESYNC");
        } else if (slice_eq_cstr_nocase(args[i].str, "IMAP4rev2") && !s->rev2) {
            s->rev2 = true; /* RFC 9051 2.1: from now on, rev2's responses and UTF-8 names */
            buf_append_cstr(&b, " IMAP4rev2");
        }
    }
    imap_printf(s, "%s", buf_cstr(&b));
    buf_free(&b);
    imap_printf(s, "%.*s OK ENABLE completed", (int)tag.len, tag.ptr);
}

static void cmd_idle(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid, (void)args;
    if (n != 0) {
        imap_bad(s, tag, "IDLE takes no arguments");
        return;
    }
    free(s->tag);
    s->tag = slice_strdup(tag);
    s->wait = IMAP_WAIT_IDLE;
    imap_printf(s, "+ idling");
    if (s->state == IMAP_SELECTED)
        imap_view_sync(s, true, NULL, 0);
}

/* ---- dispatch ---- */

enum cmd_flags {
    CMD_UID = 1 << 0, /* has a UID form */
};

struct command_def {
    const char *name;
    imap_handler *fn;
    enum imap_state min_state;  /* NOT_AUTHENTICATED: any; AUTHENTICATED: after login */
    enum imap_state only_state; /* != IMAP_LOGOUT: exactly this state */
    unsigned flags;
};

static const struct command_def commands[] = {
    {"CAPABILITY", cmd_capability, IMAP_NOT_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"NOOP", cmd_noop, IMAP_NOT_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"LOGOUT", cmd_logout, IMAP_NOT_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"ID", cmd_id, IMAP_NOT_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"STARTTLS", cmd_starttls, IMAP_NOT_AUTHENTICATED, IMAP_NOT_AUTHENTICATED, 0},
    {"LOGIN", cmd_login, IMAP_NOT_AUTHENTICATED, IMAP_NOT_AUTHENTICATED, 0},
    {"AUTHENTICATE", cmd_authenticate, IMAP_NOT_AUTHENTICATED, IMAP_NOT_AUTHENTICATED, 0},
    {"XWHARFPROXY", imap_cmd_handover, IMAP_NOT_AUTHENTICATED, IMAP_NOT_AUTHENTICATED, 0},
    {"ENABLE", cmd_enable, IMAP_AUTHENTICATED, IMAP_AUTHENTICATED, 0},
    {"IDLE", cmd_idle, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"SELECT", imap_cmd_select, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"EXAMINE", imap_cmd_examine, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"CREATE", imap_cmd_create, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"DELETE", imap_cmd_delete, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"RENAME", imap_cmd_rename, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"SUBSCRIBE", imap_cmd_subscribe, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"UNSUBSCRIBE", imap_cmd_unsubscribe, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"LIST", imap_cmd_list, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"LSUB", imap_cmd_lsub, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"STATUS", imap_cmd_status, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"NAMESPACE", imap_cmd_namespace, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"APPEND", imap_cmd_append, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"CHECK", imap_cmd_check, IMAP_SELECTED, IMAP_LOGOUT, 0},
    {"CLOSE", imap_cmd_close, IMAP_SELECTED, IMAP_LOGOUT, 0},
    {"UNSELECT", imap_cmd_unselect, IMAP_SELECTED, IMAP_LOGOUT, 0},
    {"EXPUNGE", imap_cmd_expunge, IMAP_SELECTED, IMAP_LOGOUT, CMD_UID},
    {"FETCH", imap_cmd_fetch, IMAP_SELECTED, IMAP_LOGOUT, CMD_UID},
    {"STORE", imap_cmd_store, IMAP_SELECTED, IMAP_LOGOUT, CMD_UID},
    {"SEARCH", imap_cmd_search, IMAP_SELECTED, IMAP_LOGOUT, CMD_UID},
    {"SORT", imap_cmd_sort, IMAP_SELECTED, IMAP_LOGOUT, CMD_UID},
    {"THREAD", imap_cmd_thread, IMAP_SELECTED, IMAP_LOGOUT, CMD_UID},
    {"CANCELUPDATE", imap_cmd_cancelupdate, IMAP_SELECTED, IMAP_LOGOUT, 0},
    {"NOTIFY", imap_cmd_notify, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"COMPRESS", imap_cmd_compress, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"GETQUOTA", imap_cmd_getquota, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"GETQUOTAROOT", imap_cmd_getquotaroot, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"COPY", imap_cmd_copy, IMAP_SELECTED, IMAP_LOGOUT, CMD_UID},
    {"MOVE", imap_cmd_move, IMAP_SELECTED, IMAP_LOGOUT, CMD_UID},
    {"SETACL", imap_cmd_setacl, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"DELETEACL", imap_cmd_deleteacl, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"GETACL", imap_cmd_getacl, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"LISTRIGHTS", imap_cmd_listrights, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
    {"MYRIGHTS", imap_cmd_myrights, IMAP_AUTHENTICATED, IMAP_LOGOUT, 0},
};

static const struct command_def *command_find(struct slice name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (slice_eq_cstr_nocase(name, commands[i].name))
            return &commands[i];
    return NULL;
}

static void run_command(struct imap_session *s, struct imap_command *c)
{
    const struct imap_arg *args = c->args;
    size_t n = c->n_args;
    struct slice name = c->name;
    bool uid = false;
    if (slice_eq_cstr_nocase(name, "UID")) {
        if (n == 0 || args[0].type != IMAP_ARG_ATOM) {
            imap_bad(s, c->tag, "Usage: UID command arguments");
            return;
        }
        uid = true;
        name = args[0].str;
        args++;
        n--;
    }
    const struct command_def *def = command_find(name);
    if (def == NULL || (uid && !(def->flags & CMD_UID))) {
        imap_bad(s, c->tag, uid ? "Unknown UID command" : "Unknown command");
        return;
    }
    if (s->state < def->min_state) {
        imap_bad(s, c->tag,
                 def->min_state == IMAP_SELECTED ? "No mailbox selected"
                                                 : "Not allowed before login");
        return;
    }
    if (def->only_state != IMAP_LOGOUT && s->state != def->only_state) {
        imap_bad(s, c->tag, "Not allowed in this state");
        return;
    }
    s->ls.errors = 0;
    s->name_error = NULL;
    /*
     * New messages and flag changes are told before the command runs when an
     * event said the mailbox changed; never an EXPUNGE, which would renumber
     * the MSNs the client just sent. NOOP, CHECK, IDLE, EXPUNGE and MOVE
     * always sync, EXPUNGEs included, before their tagged reply.
     */
    if (s->state == IMAP_SELECTED && s->view.dirty)
        imap_view_sync(s, false, NULL, 0);
    def->fn(s, c->tag, uid, args, n);
}

static void handle_command(struct imap_session *s, struct slice raw)
{
    struct imap_command c;
    const char *perr;
    if (!imap_parse_command((char *)raw.ptr, raw.len, &c, &perr)) {
        imap_bad(s, c.tag, perr);
        return;
    }
    run_command(s, &c);
    imap_command_free(&c);
}

static void dropped_command(struct imap_session *s, enum imap_read_result r)
{
    struct slice tag, name;
    imap_peek_tag(imap_reader_command(&s->reader), &tag, &name);
    switch (r) {
    case IMAP_READ_LINE_TOO_LONG:
        imap_bad(s, tag, "Command line too long");
        break;
    case IMAP_READ_LITERAL_TOO_BIG:
        if (slice_eq_cstr_nocase(name, "APPEND"))
            imap_printf(s, "%.*s NO [TOOBIG] Message too large", (int)tag.len, tag.ptr);
        else
            imap_bad(s, tag, "Literal too large");
        break;
    default: /* IMAP_READ_LITERAL_FATAL: its bytes are already coming; we cannot resync. */
        imap_printf(s, "%.*s BAD [TOOBIG] Literal too large", (int)tag.len, tag.ptr);
        imap_printf(s, "* BYE Literal too large");
        logout_now(s);
        break;
    }
}

/* A line while waiting for a SASL response or for IDLE's DONE. */
static void handle_wait_line(struct imap_session *s, struct slice line)
{
    struct slice tag = slice_from_cstr(s->tag);
    if (s->wait == IMAP_WAIT_SASL) {
        s->wait = IMAP_WAIT_NONE;
        auth_step(s, auth_login_line(s->login, line));
        return;
    }
    /* IMAP_WAIT_IDLE */
    s->wait = IMAP_WAIT_NONE;
    if (s->state == IMAP_SELECTED)
        imap_view_sync(s, true, NULL, 0);
    if (slice_eq_cstr_nocase(line, "DONE"))
        imap_printf(s, "%s OK IDLE terminated", s->tag);
    else
        imap_bad(s, tag, "Expected DONE to end IDLE");
    free(s->tag);
    s->tag = NULL;
}

static void imap_drain(void *arg);

static void imap_readable(void *arg)
{
    struct imap_session *s = arg;
    if (s->wait == IMAP_WAIT_PROXY) { /* spliced: the home server reads it */
        net_proxy_client_readable(s->proxy);
        return;
    }
    while (s->state != IMAP_LOGOUT &&
           (s->wait == IMAP_WAIT_NONE || s->wait == IMAP_WAIT_SASL || s->wait == IMAP_WAIT_IDLE)) {
        /* A session that was busy when the drain began ends at its next command. */
        if (s->wait == IMAP_WAIT_NONE && net_worker_draining(s->srv->worker)) {
            imap_drain(s);
            return;
        }
        if (s->wait != IMAP_WAIT_NONE) {
            enum net_line_result r = net_conn_read_line(s->conn, AUTH_LOGIN_MAX_RESPONSE, &s->line);
            if (r == NET_LINE_NEED_MORE)
                return;
            if (r == NET_LINE_TOO_LONG) {
                auth_login_abort(s->login);
                s->wait = IMAP_WAIT_NONE;
                imap_bad(s, slice_from_cstr(s->tag), "Line too long");
                free(s->tag);
                s->tag = NULL;
                continue;
            }
            handle_wait_line(s, buf_slice(&s->line));
            explicit_bzero(s->line.data, s->line.len);
            continue;
        }
        struct evbuffer *in = net_conn_input(s->conn); /* another one after COMPRESS */
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return;
        enum imap_read_result r;
        size_t used = imap_reader_feed(&s->reader, v.iov_base, v.iov_len, &r);
        evbuffer_drain(in, used);
        switch (r) {
        case IMAP_READ_NEED_MORE:
            break;
        case IMAP_READ_CONTINUE:
            imap_printf(s, "+ Ready for literal data");
            break;
        case IMAP_READ_COMMAND: {
            struct slice cmd = imap_reader_command(&s->reader);
            handle_command(s, cmd);
            imap_reader_reset(&s->reader);
            break;
        }
        default:
            dropped_command(s, r);
            break;
        }
    }
}

static void *imap_open(struct net_conn *c, void *proto_arg)
{
    /* Kept for as long as the connection: packed in the slab (base/slab.h), as
     * the connection's own state, so that an IDLE session holds few pages. */
    struct imap_session *s = slab_calloc(1, sizeof(*s));
    s->srv = proto_arg;
    s->conn = c;
    s->state = IMAP_NOT_AUTHENTICATED;
    const struct wharf_config *cfg = s->srv->cfg;
    line_session_init(&s->ls, c, (unsigned)cfg->imap_max_errors, too_many_errors, s);
    imap_reader_init(&s->reader, (size_t)cfg->imap_max_line_length, IMAP_MAX_PREAUTH_LITERAL);
    buf_init(&s->line);
    struct auth_login_params lp = {
        .service = "imap",
        .continuation = "+ ",
        .mechs = AUTH_MECH_PLAIN,
        .plaintext = cfg->imap_plaintext_auth,
        .max_credential = (size_t)cfg->auth_max_credential_length,
        .max_per_user_addr = (unsigned)cfg->imap_max_userip_connections,
    };
    s->login = auth_login_new(s->srv->auth, c, &lp, auth_done, s);
    s->next = s->srv->sessions;
    if (s->next)
        s->next->prev = s;
    s->srv->sessions = s;
    struct buf b = BUF_INIT;
    capability_write(s, &b);
    imap_printf(s, "* OK [CAPABILITY %s] %s IMAP server ready", buf_cstr(&b),
                s->srv->greeting_host);
    buf_free(&b);
    return s;
}

static void imap_tls_ready(void *arg)
{
    struct imap_session *s = arg;
    /* RFC 9051 6.2.1: nothing said in plaintext carries over. */
    imap_reader_reset(&s->reader);
    s->wait = IMAP_WAIT_NONE;
}

static void imap_writable(void *arg)
{
    struct imap_session *s = arg;
    if (s->wait == IMAP_WAIT_PROXY)
        net_proxy_client_writable(s->proxy);
}

static void imap_timeout(void *arg)
{
    struct imap_session *s = arg;
    imap_printf(s, "* BYE Disconnected for inactivity");
}

/*
 * Shutdown or reload: a session between commands or in IDLE gets BYE at once
 * (its client reconnects, to the new workers on a reload); one in the middle
 * of a login finishes it and ends at its next command.
 */
static void imap_drain(void *arg)
{
    struct imap_session *s = arg;
    if (s->wait == IMAP_WAIT_PROXY) { /* its client reconnects, to the new workers */
        net_conn_close(s->conn, true);
        return;
    }
    if (s->wait == IMAP_WAIT_NONE || s->wait == IMAP_WAIT_IDLE) {
        imap_printf(s, "* BYE [UNAVAILABLE] Server shutting down");
        logout_now(s);
    }
}

static void imap_closed(void *arg)
{
    struct imap_session *s = arg;
    auth_login_free(s->login);
    net_proxy_free(s->proxy);
    if (s->dir_handle)
        directory_client_cancel(s->srv->dir, s->dir_handle);
    if (s->prev)
        s->prev->next = s->next;
    else
        s->srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->account)
        log_info("disconnect: user=<%s>, rip=%s", s->account, net_conn_addr(s->conn));
    imap_selected_unlink(s);
    imap_view_free(&s->view);
    imap_notify_free(s);
    imap_reader_free(&s->reader);
    explicit_bzero(s->line.data, s->line.len);
    buf_free(&s->line);
    free(s->tag);
    slab_free(s->account);
    slab_free(s);
}

const struct net_proto imap_proto = {
    .open = imap_open,
    .readable = imap_readable,
    .tls_ready = imap_tls_ready,
    .timeout = imap_timeout,
    .drain = imap_drain,
    .closed = imap_closed,
    .writable = imap_writable,
};
