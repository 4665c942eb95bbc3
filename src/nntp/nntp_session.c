/*
 * nntp_session.c - NNTP reader sessions (RFC 3977): capabilities, STARTTLS
 * (RFC 4642), AUTHINFO USER/PASS and SASL PLAIN (RFC 4643) through the login
 * kit, groups and articles read from public folders (nntp_groups.h), and
 * POST, read by the dot reader (net/dotread.h) and checked by nntp_article.h.
 *
 * Commands are handled one line at a time in arrival order; every reply of
 * a command is built in one buffer and written at once (no status line in a
 * segment of its own: no delayed-ACK stall). While a credential check is out
 * the connection stops reading. An article taken goes to the worker's group
 * commit (nntp_commit.h); its answer is a hole in the session's output,
 * filled once the batch holding it is committed, and everything the session
 * says after it waits behind it. Meanwhile only more streaming (CHECK,
 * TAKETHIS) is read: anything else waits until every answer is out.
 * Must never: show a group or article the folder's ACL does not let the
 * user read, answer 240 before the store has committed the article, end an
 * article anywhere but at <CRLF>.<CRLF>, or accept AUTHINFO in plaintext
 * unless configured.
 */
#include "nntp/nntp_session.h"
#include "auth/auth_login.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/date.h"
#include "base/log.h"
#include "ipc/event.h"
#include "net/dotread.h"
#include "net/dotstuff.h"
#include "net/lineproto.h"
#include "nntp/nntp_article.h"
#include "nntp/nntp_commit.h"
#include "nntp/nntp_groups.h"
#include "nntp/nntp_parse.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/rand.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum nntp_state {
    NNTP_READY,
    NNTP_SASL_WAIT, /* sent "383 ", waiting for the SASL response */
    NNTP_AUTH_CHECK,
    NNTP_POSTING, /* reading an article */
    NNTP_CLOSING,
};

struct nntp_session {
    struct nntp_server *srv;
    struct net_conn *conn;
    enum nntp_state state;
    struct buf line;
    struct line_session ls;
    struct auth_login *login;
    char *user;     /* from AUTHINFO USER, before PASS */
    char *account;  /* logged in as */
    struct buf out; /* the reply being built: one write per command */
    struct nntp_groups groups;
    bool groups_loaded;
    struct timeval groups_at; /* the loop's turn (its cached time) that read them */
    char *group;              /* the selected group's name, NULL: none */
    uint32_t article;         /* the current article number, 0: none */
    bool peer;                /* a feed peer (nntp_feed_peers): IHAVE, CHECK, TAKETHIS */
    enum nntp_cmd reading;    /* POST, IHAVE or TAKETHIS: what the article is for */
    char *offered;            /* IHAVE/TAKETHIS: the message-id offered */
    struct dotread rd;        /* POST */
    /* The selected group's articles, kept while its UIDNEXT and HIGHESTMODSEQ stay. */
    struct nntp_listing cache;
    int64_t cache_id;
    uint64_t cache_modseq;
    uint32_t cache_uidnext;
    uint64_t cache_state; /* the #public account state read before it */
    bool cache_ok;
    struct buf article_in; /* the article being read */
    /* Articles waiting for their commit, in the order taken; while there are any,
     * output goes to held (their answers are holes in it, at hole). */
    struct pending *pend_head, *pend_tail;
    size_t n_pending;
    struct buf held;
    size_t held_sent;
    bool drain_after; /* a drain came while articles were waiting */
};

/* An article taken, waiting for its commit. */
struct pending {
    struct pending *next;
    struct nntp_session *s;
    struct nntp_commit_job *job; /* NULL once its commit is done */
    size_t hole;                 /* where its answer goes in s->held */
    struct buf answer;
    enum nntp_cmd reading;
    char *offered;
};

/* Streaming answers a session may owe before it stops reading. */
#define NNTP_MAX_PENDING 256

static void flush(struct nntp_session *s)
{
    if (s->out.len) {
        if (s->pend_head)
            buf_append(&s->held, s->out.data, s->out.len);
        else
            net_conn_write(s->conn, s->out.data, s->out.len);
        buf_reset(&s->out);
    }
}

/* Whether an article of this session with that message-id waits for its commit. */
static bool in_flight(const struct nntp_session *s, struct slice id)
{
    for (const struct pending *p = s->pend_head; p; p = p->next)
        if (p->offered && slice_eq(id, slice_from_cstr(p->offered)))
            return true;
    return false;
}

static void reply(struct nntp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reply(struct nntp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    buf_append(&s->out, "\r\n", 2);
    flush(s);
}

/* A reply counted towards nntp_max_errors (500, 501 and the like). */
static void error_reply(struct nntp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void error_reply(struct nntp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    buf_append(&s->out, "\r\n", 2);
    flush(s);
    line_count_error(&s->ls);
}

static void too_many_errors(void *arg)
{
    struct nntp_session *s = arg;
    reply(s, "400 Too many errors, closing connection");
    s->state = NNTP_CLOSING;
}

static void temp_error(struct nntp_session *s, const char *what, struct buf *err)
{
    log_error("%s: %s", what, buf_cstr(err));
    buf_reset(&s->out);
    reply(s, "403 Internal fault, try again later");
}

/* The newsgroups, read at most once per turn of the event loop: the commands and
 * articles of one read (a streaming peer's pipeline of TAKETHIS) share one listing
 * of the public folders, where each article read it again (two statements and a
 * read transaction, ~9 % of a streaming feed's CPU). As fresh as the turn they came
 * in; an article's commit still fails for a folder gone meanwhile (must_exist). */
static bool load_groups(struct nntp_session *s)
{
    struct timeval now;
    event_base_gettimeofday_cached(net_worker_base(s->srv->worker), &now);
    if (s->groups_loaded && timercmp(&now, &s->groups_at, ==))
        return true;
    nntp_groups_free(&s->groups);
    s->groups_loaded = false;
    struct buf err = BUF_INIT;
    int rc = nntp_groups_load(s->srv->store, &s->groups, &err);
    if (rc != 0)
        temp_error(s, "cannot list the newsgroups", &err);
    buf_free(&err);
    s->groups_loaded = rc == 0;
    s->groups_at = now;
    return rc == 0;
}

static struct nntp_rights rights_of(struct nntp_session *s, const struct nntp_group *g)
{
    struct nntp_rights r = {0};
    struct buf err = BUF_INIT;
    if (nntp_group_rights(s->srv->store, g, s->account, &r, &err) != 0)
        log_error("rights of %s: %s", g->name, buf_cstr(&err));
    buf_free(&err);
    return r;
}

static bool can_read(void *arg, const struct nntp_group *g)
{
    return rights_of(arg, g).read;
}

/* The selected group, looked up again (the folder may have gone). */
static const struct nntp_group *current_group(struct nntp_session *s)
{
    if (s->group == NULL)
        return NULL;
    return nntp_groups_find(&s->groups, slice_from_cstr(s->group));
}

/* ---- capabilities, help, date ---- */

static void cmd_capabilities(struct nntp_session *s)
{
    struct buf *b = &s->out;
    buf_append_cstr(b, "101 Capability list:\r\nVERSION 2\r\nIMPLEMENTATION Wharf\r\nREADER\r\n"
                       "POST\r\nHDR\r\nOVER MSGID\r\nNEWNEWS\r\n");
    if (s->peer)
        buf_append_cstr(b, "IHAVE\r\nSTREAMING\r\n");
    buf_append_cstr(b, "LIST ACTIVE NEWSGROUPS OVERVIEW.FMT HEADERS ACTIVE.TIMES DISTRIB.PATS\r\n");
    if (net_conn_can_starttls(s->conn) && s->account == NULL)
        buf_append_cstr(b, "STARTTLS\r\n");
    if (!net_conn_is_compressed(s->conn))
        buf_append_cstr(b, "COMPRESS DEFLATE\r\n");
    if (s->account == NULL && auth_login_allowed(s->login)) {
        buf_append_cstr(b, "AUTHINFO USER SASL\r\nSASL");
        auth_login_mechanisms(s->login, " ", b);
        buf_append_cstr(b, "\r\n");
    }
    buf_append_cstr(b, ".\r\n");
}

static void cmd_help(struct nntp_session *s)
{
    buf_append_cstr(&s->out,
                    "100 Help text follows\r\n"
                    "  ARTICLE|HEAD|BODY|STAT [number|<message-id>]\r\n"
                    "  AUTHINFO USER name | AUTHINFO PASS password | AUTHINFO SASL PLAIN [ir]\r\n"
                    "  CAPABILITIES | DATE | HELP | MODE READER | QUIT | STARTTLS\r\n"
                    "  GROUP group | LISTGROUP [group [range]] | NEXT | LAST\r\n"
                    "  LIST [ACTIVE|NEWSGROUPS|ACTIVE.TIMES [wildmat]|OVERVIEW.FMT|HEADERS|"
                    "DISTRIB.PATS]\r\n"
                    "  NEWGROUPS date time [GMT] | NEWNEWS wildmat date time [GMT]\r\n"
                    "  OVER|XOVER [range|<message-id>] | HDR|XHDR field [range|<message-id>]\r\n"
                    "  POST\r\n.\r\n");
}

static void cmd_date(struct nntp_session *s)
{
    int64_t now = wallclock_ms() / 1000, y;
    unsigned m, d;
    date_civil_from_days(now / 86400, &y, &m, &d);
    int64_t sec = now % 86400;
    buf_printf(&s->out, "111 %04lld%02u%02u%02lld%02lld%02lld\r\n", (long long)y, m, d,
               (long long)(sec / 3600), (long long)(sec / 60 % 60), (long long)(sec % 60));
}

/* ---- AUTHINFO (RFC 4643) ---- */

static void auth_done(void *arg, const struct auth_login_result *r)
{
    struct nntp_session *s = arg;
    s->state = NNTP_READY;
    switch (r->status) {
    case AUTH_LOGIN_OK:
        free(s->account);
        s->account = xstrdup(r->account);
        log_info("login: user=<%s>, rip=%s, %s", r->account, net_conn_addr(s->conn),
                 net_conn_is_tls(s->conn) ? "TLS" : "plaintext");
        reply(s, "281 Authentication accepted");
        break;
    case AUTH_LOGIN_USER_ADDR_FULL:
        reply(s, "481 Too many connections of this user from this address");
        break;
    case AUTH_LOGIN_FAILED:
        reply(s, "481 Authentication failed");
        s->ls.errors++;
        break;
    case AUTH_LOGIN_RATELIMIT:
        reply(s, "481 Too many failed logins, try again later");
        break;
    case AUTH_LOGIN_TEMPFAIL:
        reply(s, "403 Authentication is not available now, try again later");
        break;
    case AUTH_LOGIN_CANCELLED:
        reply(s, "481 Authentication cancelled");
        break;
    case AUTH_LOGIN_MALFORMED:
        error_reply(s, "482 Invalid PLAIN response: %s", sasl_status_text(r->sasl));
        break;
    }
    free(s->user);
    s->user = NULL;
    if (s->state != NNTP_CLOSING)
        net_conn_resume(s->conn);
}

static void auth_step(struct nntp_session *s, enum auth_login_step st)
{
    if (st == AUTH_LOGIN_CHALLENGED)
        s->state = NNTP_SASL_WAIT;
    else if (st == AUTH_LOGIN_CHECKING)
        s->state = NNTP_AUTH_CHECK;
}

static void cmd_authinfo(struct nntp_session *s, const struct nntp_command *c)
{
    if (s->account) {
        error_reply(s, "502 Already authenticated");
        return;
    }
    if (!auth_login_allowed(s->login)) {
        error_reply(s, "483 Encryption required: use STARTTLS or port 563 first");
        return;
    }
    struct slice sub = c->args[0];
    if (slice_eq_cstr_nocase(sub, "USER") && c->n_args == 2) {
        if (c->args[1].len > (size_t)s->srv->cfg->auth_max_credential_length) {
            error_reply(s, "481 User name too long");
            return;
        }
        free(s->user);
        s->user = slice_strdup(c->args[1]);
        reply(s, "381 Password required");
    } else if (slice_eq_cstr_nocase(sub, "PASS") && c->n_args == 2) {
        if (s->user == NULL) {
            error_reply(s, "482 Authentication commands issued out of sequence");
            return;
        }
        auth_step(s, auth_login_password(s->login, slice_from_cstr(s->user), c->args[1]));
    } else if (slice_eq_cstr_nocase(sub, "SASL") && c->n_args >= 2) {
        enum auth_login_step st =
            auth_login_begin(s->login, c->args[1], c->n_args == 3 ? c->args[2] : SLICE_NULL);
        if (st == AUTH_LOGIN_UNSUPPORTED) {
            error_reply(s, "503 Mechanism not recognized");
            return;
        }
        auth_step(s, st);
    } else {
        error_reply(s, "501 Syntax: AUTHINFO USER name | PASS password | SASL mechanism [ir]");
    }
}

/* ---- groups ---- */

static void active_line(struct nntp_session *s, const struct nntp_group *g, bool post)
{
    struct nntp_listing l;
    struct buf err = BUF_INIT;
    if (nntp_listing_load(s->srv->store, g, &l, &err) != 0) {
        log_error("listing of %s: %s", g->name, buf_cstr(&err));
        buf_free(&err);
        return;
    }
    uint32_t lo = l.n ? l.num[0] : 1, hi = l.n ? l.num[l.n - 1] : 0;
    buf_printf(&s->out, "%s %u %u %c\r\n", g->name, hi, lo, post ? 'y' : 'n');
    nntp_listing_free(&l);
    buf_free(&err);
}

/* The articles of g now. The listing is kept while the folder's id, UIDNEXT and
 * HIGHESTMODSEQ stay (an append, flag change or expunge moves one of them): one
 * row read per command instead of the whole listing. NULL: replied 403. */
static const struct nntp_listing *listing_of(struct nntp_session *s, const struct nntp_group *g)
{
    struct store_mailbox mb;
    struct buf err = BUF_INIT;
    /* Nothing public changed since the listing was read (one row; the folder's own
     * row costs a count of its unclaimed \Recent messages, linear in a group that
     * no IMAP session selects): keep it. Read before the listing, never newer. */
    uint64_t state = 0;
    if (store_account_state(s->srv->store, STORE_PUBLIC_OWNER, &state, &err) != 0)
        state = 0;
    if (s->cache_ok && s->cache_id == g->id && state != 0 && state == s->cache_state) {
        buf_free(&err);
        return &s->cache;
    }
    buf_reset(&err);
    int rc = store_mailbox_get(s->srv->store, STORE_PUBLIC_OWNER, g->mailbox, &mb, &err);
    if (rc == 1)
        buf_printf(&err, "public folder %s is gone", g->mailbox);
    if (rc == 0) {
        if (!s->cache_ok || s->cache_id != mb.id || s->cache_modseq != mb.highestmodseq ||
            s->cache_uidnext != mb.uidnext) {
            nntp_listing_free(&s->cache);
            s->cache_ok = false;
            /* Read after the stamp: at least as new as it, so never stale for long. */
            rc = nntp_listing_load(s->srv->store, g, &s->cache, &err);
            s->cache_ok = rc == 0;
            s->cache_id = mb.id;
            s->cache_modseq = mb.highestmodseq;
            s->cache_uidnext = mb.uidnext;
        }
        s->cache_state = state;
        store_mailbox_free(&mb);
    }
    if (rc != 0) {
        temp_error(s, "listing", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    return &s->cache;
}

/* GROUP and LISTGROUP: selects g after checking the right to read it; false: replied. */
static bool select_group(struct nntp_session *s, struct slice name, const struct nntp_listing **l)
{
    if (!load_groups(s))
        return false;
    const struct nntp_group *g = nntp_groups_find(&s->groups, name);
    struct nntp_rights r = g ? rights_of(s, g) : (struct nntp_rights){0};
    if (g == NULL || !r.read) {
        if (g && s->account == NULL)
            reply(s, "480 Authentication required");
        else
            reply(s, "411 No such newsgroup");
        return false;
    }
    if ((*l = listing_of(s, g)) == NULL)
        return false;
    free(s->group);
    s->group = xstrdup(g->name);
    s->article = (*l)->n ? (*l)->num[0] : 0;
    return true;
}

static void group_status(struct nntp_session *s, const struct nntp_listing *l, const char *what)
{
    buf_printf(&s->out, "211 %zu %u %u %s%s\r\n", l->n, l->n ? l->num[0] : 1,
               l->n ? l->num[l->n - 1] : 0, s->group, what);
}

static void cmd_group(struct nntp_session *s, const struct nntp_command *c)
{
    const struct nntp_listing *l;
    if (!select_group(s, c->args[0], &l))
        return;
    group_status(s, l, "");
}

/* The current group's listing, or a 412 reply. */
static const struct nntp_group *group_listing(struct nntp_session *s, const struct nntp_listing **l)
{
    const struct nntp_group *g = current_group(s);
    if (g == NULL) {
        reply(s, "412 No newsgroup selected");
        return NULL;
    }
    return (*l = listing_of(s, g)) != NULL ? g : NULL;
}

static void cmd_listgroup(struct nntp_session *s, const struct nntp_command *c)
{
    const struct nntp_listing *l;
    uint32_t lo = 1, hi = UINT32_MAX;
    if (c->n_args == 2 && !nntp_parse_range(c->args[1], &lo, &hi)) {
        error_reply(s, "501 Bad range");
        return;
    }
    if (c->n_args >= 1) {
        if (!select_group(s, c->args[0], &l))
            return;
    } else if (group_listing(s, &l) == NULL) {
        return;
    } else {
        s->article = l->n ? l->num[0] : 0;
    }
    group_status(s, l, " list follows");
    for (size_t i = 0; i < l->n; i++)
        if (l->num[i] >= lo && l->num[i] <= hi)
            buf_printf(&s->out, "%u\r\n", l->num[i]);
    buf_append_cstr(&s->out, ".\r\n");
}

static void cmd_list(struct nntp_session *s, const struct nntp_command *c)
{
    struct slice kw = c->n_args ? c->args[0] : slice_from_cstr("ACTIVE");
    struct slice wild = c->n_args == 2 ? c->args[1] : SLICE_NULL;
    if (wild.ptr && !nntp_wildmat_valid(wild)) {
        error_reply(s, "501 Bad wildmat");
        return;
    }
    if (slice_eq_cstr_nocase(kw, "OVERVIEW.FMT")) {
        /* Bytes: and Lines:, as INN says, not :bytes and :lines: RFC 3977 8.4.2 allows
         * either, and slrn turns XOVER off (one HEAD per article) unless the first
         * seven names are the RFC 2980 ones. Then Xref:full, as INN: slrn and tin mark
         * a cross-posted article read in each of its groups from it. */
        buf_append_cstr(&s->out, "215 Order of fields in overview database\r\nSubject:\r\nFrom:\r\n"
                                 "Date:\r\nMessage-ID:\r\nReferences:\r\nBytes:\r\nLines:\r\n"
                                 "Xref:full\r\n.\r\n");
        return;
    }
    if (slice_eq_cstr_nocase(kw, "HEADERS")) {
        buf_append_cstr(&s->out, "215 Headers and metadata items supported\r\n:\r\n:bytes\r\n"
                                 ":lines\r\n.\r\n");
        return;
    }
    if (slice_eq_cstr_nocase(kw, "DISTRIB.PATS")) {
        buf_append_cstr(&s->out, "215 Distribution patterns follow\r\n.\r\n");
        return;
    }
    int which = slice_eq_cstr_nocase(kw, "ACTIVE")         ? 0
                : slice_eq_cstr_nocase(kw, "NEWSGROUPS")   ? 1
                : slice_eq_cstr_nocase(kw, "ACTIVE.TIMES") ? 2
                                                           : -1;
    if (which < 0) {
        error_reply(s, "501 Unknown LIST keyword");
        return;
    }
    if (!load_groups(s))
        return;
    buf_append_cstr(&s->out, which == 0   ? "215 List of newsgroups follows\r\n"
                             : which == 1 ? "215 Descriptions follow\r\n"
                                          : "215 Group creation times follow\r\n");
    for (size_t i = 0; i < s->groups.n; i++) {
        const struct nntp_group *g = &s->groups.v[i];
        if (wild.ptr && !nntp_wildmat(wild, slice_from_cstr(g->name)))
            continue;
        struct nntp_rights r = rights_of(s, g);
        if (!r.list && !r.read)
            continue;
        if (which == 0)
            active_line(s, g, r.post);
        else if (which == 1)
            buf_printf(&s->out, "%s\tPublic folder %s\r\n", g->name, g->mailbox);
        else
            buf_printf(&s->out, "%s %lld wharf\r\n", g->name, (long long)g->created);
    }
    buf_append_cstr(&s->out, ".\r\n");
}

static bool parse_when(struct nntp_session *s, const struct nntp_command *c, size_t at,
                       int64_t *t_r)
{
    if (c->n_args > at + 2 && !slice_eq_cstr_nocase(c->args[at + 2], "GMT")) {
        error_reply(s, "501 Only GMT times are supported");
        return false;
    }
    if (!nntp_parse_datetime(c->args[at], c->args[at + 1], wallclock_ms() / 1000, t_r)) {
        error_reply(s, "501 Bad date or time");
        return false;
    }
    return true;
}

static void cmd_newgroups(struct nntp_session *s, const struct nntp_command *c)
{
    int64_t since;
    if (!parse_when(s, c, 0, &since) || !load_groups(s))
        return;
    buf_append_cstr(&s->out, "231 List of new newsgroups follows\r\n");
    for (size_t i = 0; i < s->groups.n; i++) {
        const struct nntp_group *g = &s->groups.v[i];
        struct nntp_rights r = rights_of(s, g);
        if (g->created >= since && (r.list || r.read))
            active_line(s, g, r.post);
    }
    buf_append_cstr(&s->out, ".\r\n");
}

struct newnews_ctx {
    struct buf *out;
    const struct nntp_listing *l;
    int64_t since;
};

static bool newnews_cb(void *arg, uint32_t num, struct slice msgid)
{
    struct newnews_ctx *n = arg;
    long i = nntp_listing_find(n->l, num);
    if (i >= 0 && n->l->date[i] >= n->since && nntp_msgid_valid(msgid)) {
        buf_append_slice(n->out, msgid);
        buf_append_cstr(n->out, "\r\n");
    }
    return true;
}

static void cmd_newnews(struct nntp_session *s, const struct nntp_command *c)
{
    int64_t since;
    if (!nntp_wildmat_valid(c->args[0])) {
        error_reply(s, "501 Bad wildmat");
        return;
    }
    if (!parse_when(s, c, 1, &since) || !load_groups(s))
        return;
    buf_append_cstr(&s->out, "230 List of new articles follows\r\n");
    for (size_t i = 0; i < s->groups.n; i++) {
        const struct nntp_group *g = &s->groups.v[i];
        if (!nntp_wildmat(c->args[0], slice_from_cstr(g->name)) || !rights_of(s, g).read)
            continue;
        struct nntp_listing l;
        struct buf err = BUF_INIT;
        if (nntp_listing_load(s->srv->store, g, &l, &err) == 0) {
            struct newnews_ctx n = {.out = &s->out, .l = &l, .since = since};
            nntp_group_msgids(s->srv->store, g, 1, newnews_cb, &n, &err);
            nntp_listing_free(&l);
        }
        buf_free(&err);
    }
    buf_append_cstr(&s->out, ".\r\n");
}

/* ---- articles ---- */

/* An article found: its group, number (0 when named by message-id outside the
 * selected group), and bytes. */
struct found {
    const struct nntp_group *g;
    uint32_t num;
    uint32_t reply_num;
    struct buf data;
};

/* Finds the article an ARTICLE/HEAD/BODY/STAT/OVER/HDR argument names
 * (none: the current article); false when it replied. */
static bool find_article(struct nntp_session *s, const struct nntp_command *c, size_t arg,
                         struct found *f)
{
    f->data = (struct buf)BUF_INIT; /* nothing to free on the early returns */
    struct buf err = BUF_INIT;
    bool have = c->n_args > arg;
    if (have && c->args[arg].len && c->args[arg].ptr[0] == '<') {
        if (!nntp_msgid_valid(c->args[arg])) {
            error_reply(s, "501 Bad message-id");
            return false;
        }
        if (!load_groups(s))
            return false;
        size_t gi;
        int rc = nntp_groups_find_msgid(s->srv->store, &s->groups, c->args[arg], can_read, s, &gi,
                                        &f->num, &err);
        if (rc != 0) {
            if (rc < 0)
                temp_error(s, "message-id lookup", &err);
            else
                reply(s, "430 No article with that message-id");
            buf_free(&err);
            return false;
        }
        f->g = &s->groups.v[gi];
        f->reply_num = s->group && strcmp(s->group, f->g->name) == 0 ? f->num : 0;
    } else {
        f->g = current_group(s);
        if (f->g == NULL) {
            reply(s, "412 No newsgroup selected");
            return false;
        }
        if (have) {
            if (!nntp_parse_number(c->args[arg], &f->num)) {
                error_reply(s, "501 Bad article number");
                return false;
            }
        } else if (s->article == 0) {
            reply(s, "420 Current article number is invalid");
            return false;
        } else {
            f->num = s->article;
        }
        f->reply_num = f->num;
    }
    /* Only articles the listing shows (an expunged one may still be readable in the store). */
    const struct nntp_listing *l = listing_of(s, f->g);
    if (l == NULL) {
        buf_free(&err);
        return false;
    }
    bool listed = nntp_listing_find(l, f->num) >= 0;
    int rc = listed ? store_message_read_id(s->srv->store, STORE_PUBLIC_OWNER, f->g->id, f->num,
                                            &f->data, &err)
                    : 1;
    if (rc != 0) {
        if (rc < 0)
            temp_error(s, "read", &err);
        else if (have && c->args[arg].ptr[0] == '<')
            reply(s, "430 No article with that message-id");
        else
            reply(s, have ? "423 No article with that number"
                          : "420 Current article number is invalid");
        buf_free(&err);
        buf_free(&f->data);
        return false;
    }
    buf_free(&err);
    return true;
}

/* Article num of g as this reader gets it (its Xref names the groups it may read). */
static void view_make(struct nntp_session *s, const struct nntp_group *g, uint32_t num,
                      struct slice a, struct nntp_xrefs *x, struct nntp_view *v)
{
    nntp_view_make(x, &s->groups, g, num, a, s->srv->host, can_read, s, v);
}

/* The copies of g's articles lo..hi in other groups (their Xref); false: replied 403. */
static bool xrefs_load(struct nntp_session *s, const struct nntp_group *g, uint32_t lo, uint32_t hi,
                       struct nntp_xrefs *x)
{
    struct buf err = BUF_INIT;
    int rc = nntp_xrefs_load(s->srv->store, g, lo, hi, x, &err);
    if (rc != 0)
        temp_error(s, "copies of articles", &err);
    buf_free(&err);
    return rc == 0;
}

static void cmd_article(struct nntp_session *s, const struct nntp_command *c)
{
    struct found f;
    if (!find_article(s, c, 0, &f))
        return;
    /* RFC 3977 6.2.1.2: a number moves the current article, a message-id never does. */
    if (c->n_args == 1 && c->args[0].ptr[0] != '<')
        s->article = f.num;
    struct slice a = buf_slice(&f.data);
    struct slice id = nntp_header_field(a, "Message-ID");
    if (!nntp_msgid_valid(id))
        id = slice_from_cstr("<0>");
    int code = c->cmd == NNTP_CMD_ARTICLE ? 220
               : c->cmd == NNTP_CMD_HEAD  ? 221
               : c->cmd == NNTP_CMD_BODY  ? 222
                                          : 223;
    struct nntp_xrefs x = {0};
    if (code != 222 && code != 223 && !xrefs_load(s, f.g, f.num, f.num, &x)) {
        buf_free(&f.data);
        return;
    }
    buf_reserve(&s->out, a.len + a.len / 64 + 64);
    buf_printf(&s->out, "%d %u %.*s\r\n", code, f.reply_num, (int)id.len, id.ptr);
    struct dotstuff st = DOTSTUFF_INIT;
    if (code == 222) {
        size_t hlen, body;
        nntp_article_split(a, &hlen, &body);
        dotstuff_buf(&st, slice_make(a.ptr + body, a.len - body), &s->out);
        dotstuff_end_buf(&st, &s->out);
    } else if (code != 223) {
        /* the header a reader gets: Path and Newsgroups when missing (mail to the
         * folder's address), our Xref */
        struct nntp_view v;
        view_make(s, f.g, f.num, a, &x, &v);
        dotstuff_buf(&st, buf_slice(&v.header), &s->out);
        if (code == 220)
            dotstuff_buf(&st, v.rest, &s->out);
        dotstuff_end_buf(&st, &s->out);
        nntp_view_free(&v);
    }
    nntp_xrefs_free(&x);
    buf_free(&f.data);
}

static void cmd_next_last(struct nntp_session *s, bool next)
{
    const struct nntp_listing *l;
    const struct nntp_group *g = group_listing(s, &l);
    if (g == NULL)
        return;
    if (s->article == 0) {
        reply(s, "420 Current article number is invalid");
        return;
    }
    long pick = -1;
    for (size_t i = 0; i < l->n; i++) {
        if (next && l->num[i] > s->article) {
            pick = (long)i;
            break;
        }
        if (!next && l->num[i] < s->article)
            pick = (long)i;
    }
    if (pick < 0) {
        reply(s,
              next ? "421 No next article in this group" : "422 No previous article in this group");
        return;
    }
    s->article = l->num[pick];
    struct nntp_command c = {.cmd = NNTP_CMD_STAT};
    cmd_article(s, &c);
}

/* A header value as an overview or HDR field: unfolded, TAB and CR/LF as spaces. */
static void field_out(struct buf *out, struct slice v)
{
    for (size_t i = 0; i < v.len; i++) {
        char ch = v.ptr[i];
        if (ch == '\r' || ch == '\n')
            continue;
        buf_append_byte(out, ch == '\t' ? ' ' : ch);
    }
}

static size_t body_lines(struct slice body)
{
    size_t n = 0;
    for (size_t i = 0; i < body.len; i++)
        n += body.ptr[i] == '\n';
    return n;
}

/* One value of field (a header name or ":bytes"/":lines") of an article as the reader
 * gets it: a field the server adds (Path, Newsgroups, Xref) is the one ARTICLE sends. */
static void item_out(struct buf *out, const struct nntp_view *v, struct slice field)
{
    if (slice_eq_cstr_nocase(field, ":bytes"))
        buf_printf(out, "%zu", v->bytes);
    else if (slice_eq_cstr_nocase(field, ":lines"))
        buf_printf(out, "%zu", body_lines(v->body));
    else {
        char name[NNTP_MAX_LINE + 1];
        size_t n = field.len < NNTP_MAX_LINE ? field.len : NNTP_MAX_LINE;
        memcpy(name, field.ptr, n);
        name[n] = '\0';
        if (n && name[n - 1] == ':')
            name[n - 1] = '\0';
        field_out(out, nntp_header_field(buf_slice(&v->header), name));
    }
}

/* LIST OVERVIEW.FMT's order; "Xref" is a full field (its name in the value). */
static const char *const over_fields[] = {"Subject",    "From",   "Date",   "Message-ID",
                                          "References", ":bytes", ":lines", "Xref"};

static void over_line(struct buf *out, uint32_t num, const struct nntp_view *v)
{
    buf_printf(out, "%u", num);
    for (size_t i = 0; i < sizeof(over_fields) / sizeof(over_fields[0]); i++) {
        buf_append_byte(out, '\t');
        if (strcmp(over_fields[i], "Xref") == 0)
            buf_append_cstr(out, "Xref: ");
        item_out(out, v, slice_from_cstr(over_fields[i]));
    }
    buf_append_cstr(out, "\r\n");
}

/* OVER, XOVER, HDR and XHDR: field NULL for the overview. */
static void cmd_over_hdr(struct nntp_session *s, const struct nntp_command *c, size_t arg,
                         struct slice field)
{
    bool xhdr = c->cmd == NNTP_CMD_XHDR;
    const char *ok = field.ptr == NULL ? "224 Overview information follows\r\n"
                     : xhdr            ? "221 Header follows\r\n"
                                       : "225 Headers follow\r\n";
    if (c->n_args > arg && c->args[arg].len && c->args[arg].ptr[0] == '<') {
        struct found f;
        if (!find_article(s, c, arg, &f))
            return;
        struct nntp_xrefs x;
        if (!xrefs_load(s, f.g, f.num, f.num, &x)) {
            buf_free(&f.data);
            return;
        }
        struct nntp_view v;
        view_make(s, f.g, f.num, buf_slice(&f.data), &x, &v);
        buf_append_cstr(&s->out, ok);
        if (field.ptr == NULL) {
            over_line(&s->out, 0, &v);
        } else {
            /* RFC 3977 8.5.2: "0" for an article named by message-id; XHDR names it. */
            if (xhdr)
                buf_append_slice(&s->out, c->args[arg]);
            else
                buf_append_byte(&s->out, '0');
            buf_append_byte(&s->out, ' ');
            item_out(&s->out, &v, field);
            buf_append_cstr(&s->out, "\r\n");
        }
        buf_append_cstr(&s->out, ".\r\n");
        nntp_view_free(&v);
        nntp_xrefs_free(&x);
        buf_free(&f.data);
        return;
    }
    uint32_t lo, hi;
    if (c->n_args > arg) {
        if (!nntp_parse_range(c->args[arg], &lo, &hi)) {
            error_reply(s, "501 Bad range");
            return;
        }
    } else {
        if (current_group(s) == NULL) {
            reply(s, "412 No newsgroup selected");
            return;
        }
        if (s->article == 0) {
            reply(s, "420 Current article number is invalid");
            return;
        }
        lo = hi = s->article;
    }
    const struct nntp_listing *l;
    const struct nntp_group *g = group_listing(s, &l);
    if (g == NULL)
        return;
    /* the copies of the whole range in one store call, not one per article */
    struct nntp_xrefs x;
    if (!xrefs_load(s, g, lo, hi, &x))
        return;
    size_t first = s->out.len;
    buf_append_cstr(&s->out, ok);
    bool any = false;
    struct buf data = BUF_INIT, err = BUF_INIT;
    for (size_t i = 0; i < l->n; i++) {
        if (l->num[i] < lo || l->num[i] > hi)
            continue;
        int rc =
            store_message_read_id(s->srv->store, STORE_PUBLIC_OWNER, g->id, l->num[i], &data, &err);
        if (rc < 0) {
            temp_error(s, "read", &err);
            goto out;
        }
        if (rc > 0)
            continue;
        any = true;
        struct nntp_view v;
        view_make(s, g, l->num[i], buf_slice(&data), &x, &v);
        if (field.ptr == NULL) {
            over_line(&s->out, l->num[i], &v);
        } else {
            buf_printf(&s->out, "%u ", l->num[i]);
            item_out(&s->out, &v, field);
            buf_append_cstr(&s->out, "\r\n");
        }
        nntp_view_free(&v);
    }
    if (!any && field.ptr == NULL) {
        s->out.len = first;
        reply(s, "423 No articles in that range");
        goto out;
    }
    buf_append_cstr(&s->out, ".\r\n");
out:
    nntp_xrefs_free(&x);
    buf_free(&data);
    buf_free(&err);
}

/* ---- POST ---- */

/* Starts reading an article (POST, IHAVE, TAKETHIS); ready: the reply that asks for it. */
static void read_article(struct nntp_session *s, enum nntp_cmd cmd, const char *ready)
{
    buf_reset(&s->article_in);
    struct dotread_limits lim = {
        .max_size = s->srv->cfg->nntp_max_article_size,
        .newline = DOTREAD_NEWLINE_REJECT,
    };
    dotread_init(&s->rd, &lim, false, false, &s->article_in);
    s->state = NNTP_POSTING;
    s->reading = cmd;
    if (ready)
        reply(s, "%s", ready);
}

/* The lookups of one article or offer (groups, posting rights, history) in one read
 * transaction of the loop's store handle (store_read_end after them): each would
 * otherwise be one of its own, with its locks on the WAL index. */
static void read_begin(struct nntp_session *s)
{
    struct buf err = BUF_INIT;
    if (store_read_begin(s->srv->store, &err) != 0)
        log_error("read snapshot: %s", buf_cstr(&err)); /* the reads run one by one */
    buf_free(&err);
}

/* 1: the server holds msgid (the history is the groups' articles), 0: not, -1:
 * trouble. Over s->groups as loaded (a reload would free what callers hold). */
static int have_msgid(struct nntp_session *s, struct slice msgid)
{
    struct buf err = BUF_INIT;
    size_t gi;
    uint32_t num;
    int rc = nntp_groups_find_msgid(s->srv->store, &s->groups, msgid, NULL, NULL, &gi, &num, &err);
    if (rc < 0)
        log_error("message-id lookup: %s", buf_cstr(&err));
    buf_free(&err);
    return rc == 0 ? 1 : rc == 1 ? 0 : -1;
}

/* IHAVE (RFC 3977 6.3.2), CHECK and TAKETHIS (RFC 4644) from a feed peer. */
static void cmd_transfer(struct nntp_session *s, const struct nntp_command *c)
{
    struct slice id = c->args[0];
    bool valid = nntp_msgid_valid(id);
    if (c->cmd == NNTP_CMD_TAKETHIS) {
        /* The article follows whatever the answer: read it, never run it as commands. */
        free(s->offered);
        s->offered = valid && s->peer ? slice_strdup(id) : NULL;
        read_article(s, NNTP_CMD_TAKETHIS, NULL);
        return;
    }
    if (!s->peer) {
        reply(s, "502 Transfer permission denied: not a configured feed peer");
        return;
    }
    if (!valid) {
        error_reply(s, "501 Bad message-id");
        return;
    }
    read_begin(s);
    int have = load_groups(s) ? have_msgid(s, id) : -2;
    store_read_end(s->srv->store);
    if (have == -2)
        return;
    bool check = c->cmd == NNTP_CMD_CHECK;
    if (have == 0 && in_flight(s, id)) {
        /* RFC 4644 2.4: being taken right now; the peer asks again later */
        reply(s, check ? "431 %.*s In progress" : "436 In progress", (int)id.len, id.ptr);
        return;
    }
    if (have != 0) {
        if (have < 0)
            reply(s, check ? "431 %.*s Try again later" : "436 Try again later", (int)id.len,
                  id.ptr);
        else if (check)
            reply(s, "438 %.*s", (int)id.len, id.ptr);
        else
            reply(s, "435 Duplicate");
        return;
    }
    if (check) {
        reply(s, "238 %.*s", (int)id.len, id.ptr);
        return;
    }
    free(s->offered);
    s->offered = slice_strdup(id);
    read_article(s, NNTP_CMD_IHAVE, "335 Send it; end with <CR-LF>.<CR-LF>");
}

/* "<hex.time@host>" */
static void new_msgid(struct nntp_session *s, struct buf *out)
{
    unsigned char r[12];
    if (RAND_bytes(r, sizeof(r)) != 1)
        memset(r, 0, sizeof(r));
    buf_append_byte(out, '<');
    for (size_t i = 0; i < sizeof(r); i++)
        buf_printf(out, "%02x", r[i]);
    buf_printf(out, ".%lld@%s>", (long long)(wallclock_ms() / 1000), s->srv->host);
}

enum verdict { V_OK, V_REJECT, V_TEMP };

/* The answer to an article read, in the words of the command that sent it. */
static void answer(struct nntp_session *s, enum verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void answer_line(struct buf *out, enum nntp_cmd reading, const char *offered, enum verdict v,
                        const char *text)
{
    const char *id = offered ? offered : "<0>";
    switch (reading) {
    case NNTP_CMD_IHAVE:
        buf_printf(out, "%s %s\r\n", v == V_OK ? "235" : v == V_TEMP ? "436" : "437", text);
        break;
    case NNTP_CMD_TAKETHIS: /* RFC 4644 2.5: 239 or 439, the message-id first */
        buf_printf(out, "%s %s %s\r\n", v == V_OK ? "239" : "439", id, text);
        break;
    default:
        buf_printf(out, "%s %s\r\n", v == V_OK ? "240" : "441", text);
        break;
    }
}

static void answer(struct nntp_session *s, enum verdict v, const char *fmt, ...)
{
    struct buf t = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&t, fmt, ap);
    va_end(ap);
    answer_line(&s->out, s->reading, s->offered, v, buf_cstr(&t));
    flush(s);
    buf_free(&t);
}

static void nntp_readable(void *arg);

/* Writes what is answered, in order, up to the first article still waiting. */
static void pending_flush(struct nntp_session *s)
{
    /* One write for all of it: the connection writes through (nntp_open), and
     * the answers of a streamed batch leave together. */
    struct buf out = BUF_INIT;
    while (s->pend_head && s->pend_head->job == NULL) {
        struct pending *p = s->pend_head;
        buf_append(&out, s->held.data + s->held_sent, p->hole - s->held_sent);
        s->held_sent = p->hole;
        buf_append(&out, p->answer.data, p->answer.len);
        s->pend_head = p->next;
        if (s->pend_head == NULL)
            s->pend_tail = NULL;
        s->n_pending--;
        buf_free(&p->answer);
        free(p->offered);
        free(p);
    }
    if (s->pend_head == NULL) {
        buf_append(&out, s->held.data + s->held_sent, s->held.len - s->held_sent);
        buf_reset(&s->held);
        s->held_sent = 0;
    }
    net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
    if (s->pend_head)
        return;
    if (s->drain_after && s->state == NNTP_READY) {
        reply(s, "400 Server shutting down");
        s->state = NNTP_CLOSING;
        line_close(&s->ls);
    } else if (s->state == NNTP_READY || s->state == NNTP_POSTING) {
        nntp_readable(s); /* what waited in the input */
    }
}

/* On the loop: the batch holding p's article is committed (or failed). */
static void commit_done(void *arg, const struct nntp_commit_job *job)
{
    struct pending *p = arg;
    enum verdict v = V_TEMP;
    const char *text = "The store cannot take it now, try again later";
    if (job->refused) {
        v = V_REJECT;
        text = job->refused;
    } else if (!job->failed) {
        bool ok = false, dup = false;
        for (size_t k = 0; k < job->n; k++) {
            ok |= job->t[k].status == STORE_OK;
            dup |= job->t[k].status == STORE_DUPLICATE;
        }
        if (ok)
            v = V_OK,
            text = p->reading == NNTP_CMD_POST ? "Article received OK" : "Article transferred OK";
        else if (dup)
            v = V_REJECT, text = "Duplicate: that message-id is already here";
        else
            text = "The groups could not take it now, try again later";
    }
    answer_line(&p->answer, p->reading, p->offered, v, text);
    p->job = NULL;
    pending_flush(p->s);
}

/* RFC 5537 3.5: our Path entry; for a poster, what is missing of Message-ID and
 * Date, and Injection-Date/-Info. Then the article's own fields without its Path. */
static void article_header(struct nntp_session *s, struct slice a,
                           const struct nntp_article_info *info, bool transit, struct buf *hdr)
{
    int64_t now = wallclock_ms() / 1000;
    struct buf extra = BUF_INIT;
    if (!transit) {
        if (info->message_id.ptr == NULL) {
            buf_append_cstr(&extra, "Message-ID: ");
            new_msgid(s, &extra);
            buf_append_cstr(&extra, "\r\n");
        }
        if (info->date.ptr == NULL) {
            buf_append_cstr(&extra, "Date: ");
            date_rfc5322_append(now, &extra);
            buf_append_cstr(&extra, "\r\n");
        }
        buf_append_cstr(&extra, "Injection-Date: ");
        date_rfc5322_append(now, &extra);
        buf_printf(&extra, "\r\nInjection-Info: %s; posting-host=\"%s\"", s->srv->host,
                   net_conn_addr(s->conn));
        if (s->account)
            buf_printf(&extra, ";\r\n\tposting-account=\"%s\"", s->account);
        buf_append_cstr(&extra, "\r\n");
    }
    nntp_article_rebuild(a, info, s->srv->host, buf_slice(&extra), hdr);
    buf_free(&extra);
}

/* The article is read: checks, headers added, stored, answered. */
static void article_finish(struct nntp_session *s)
{
    s->state = NNTP_READY;
    bool transit = s->reading != NNTP_CMD_POST;
    const struct dotread *rd = &s->rd;
    struct slice a = buf_slice(&s->article_in);
    struct nntp_article_info info;
    const char *why;
    if (transit && s->offered == NULL) {
        answer(s, V_REJECT, "Transfer permission denied or bad message-id");
        return;
    }
    if (rd->oversize) {
        answer(s, V_REJECT, "Article too large (nntp_max_article_size=%llu)",
               (unsigned long long)s->srv->cfg->nntp_max_article_size);
        return;
    }
    if (dotread_failed(rd)) {
        answer(s, V_REJECT, "Article has a bare CR or LF: lines end with CRLF");
        return;
    }
    if (!nntp_article_check(a, transit, &info, &why)) {
        answer(s, V_REJECT, "%s", why);
        return;
    }
    if (transit && !slice_eq(info.message_id, slice_from_cstr(s->offered))) {
        answer(s, V_REJECT, "Message-ID differs from the one offered");
        return;
    }
    struct buf hdr = BUF_INIT, log = BUF_INIT;
    article_header(s, a, &info, transit, &hdr);
    /* The groups and posting rights are checked by the article writer, the history by
     * the store inside the commit (its handle reads what it wrote from its own cache);
     * one body, one message per group; answered once committed. */
    buf_printf(&log, "%s: user=<%s>, rip=%s", nntp_cmd_name(s->reading),
               s->account ? s->account : "", net_conn_addr(s->conn));
    flush(s);
    struct pending *p = xcalloc(1, sizeof(*p));
    p->s = s;
    p->reading = s->reading;
    p->offered = s->offered ? xstrdup(s->offered) : NULL;
    p->hole = s->held.len;
    buf_init(&p->answer);
    if (s->pend_tail)
        s->pend_tail->next = p;
    else
        s->pend_head = p;
    s->pend_tail = p;
    s->n_pending++;
    p->job = nntp_commit_submit(s->srv->commit, &hdr, info.newsgroups, transit, s->account,
                                buf_cstr(&log), commit_done, p);
    buf_free(&hdr);
    buf_free(&log);
}

/* ---- dispatch ---- */

/* RFC 8054: DEFLATE both ways from the byte after the 206 line on. */
static void cmd_compress(struct nntp_session *s, const struct nntp_command *c)
{
    if (!slice_eq_cstr_nocase(c->args[0], "DEFLATE")) {
        error_reply(s, "503 Compression algorithm not supported");
        return;
    }
    if (net_conn_is_compressed(s->conn)) {
        error_reply(s, "502 Compression already active");
        return;
    }
    reply(s, "206 Compression active");
    net_conn_start_compress(s->conn); /* not compressing yet, no STARTTLS pending */
}

static void cmd_starttls(struct nntp_session *s)
{
    if (net_conn_is_compressed(s->conn)) {
        error_reply(s, "502 STARTTLS is not allowed under compression");
        return;
    }
    if (s->account) {
        error_reply(s, "502 Already authenticated");
        return;
    }
    switch (line_starttls(&s->ls, "382 Continue with TLS negotiation")) {
    case LINE_STARTTLS_ACTIVE:
        error_reply(s, "502 Already using TLS");
        return;
    case LINE_STARTTLS_UNAVAILABLE:
        error_reply(s, "502 STARTTLS is not available on this port");
        return;
    case LINE_STARTTLS_FAILED:
        s->state = NNTP_CLOSING;
        return;
    case LINE_STARTTLS_STARTED:
        return;
    }
}

static void handle_line(struct nntp_session *s, struct slice line)
{
    if (s->state == NNTP_SASL_WAIT) {
        s->state = NNTP_READY;
        auth_step(s, auth_login_line(s->login, line));
        return;
    }
    struct nntp_command c;
    const char *why;
    enum nntp_parse_result pr = nntp_parse_command(line, &c, &why);
    if (pr != NNTP_PARSE_OK) {
        error_reply(s, "%d %s", pr == NNTP_PARSE_UNKNOWN ? 500 : 501, why);
        return;
    }
    switch (c.cmd) {
    case NNTP_CMD_CAPABILITIES:
        cmd_capabilities(s);
        break;
    case NNTP_CMD_MODE:
        if (slice_eq_cstr_nocase(c.args[0], "STREAM") && s->peer)
            reply(s, "203 Streaming permitted");
        else if (slice_eq_cstr_nocase(c.args[0], "READER"))
            reply(s, "200 Reader mode, posting permitted where the group allows it");
        else
            error_reply(s, "501 Unknown MODE");
        break;
    case NNTP_CMD_DATE:
        cmd_date(s);
        break;
    case NNTP_CMD_HELP:
        cmd_help(s);
        break;
    case NNTP_CMD_QUIT:
        reply(s, "205 Bye");
        s->state = NNTP_CLOSING;
        line_close(&s->ls);
        break;
    case NNTP_CMD_STARTTLS:
        cmd_starttls(s);
        break;
    case NNTP_CMD_COMPRESS:
        cmd_compress(s, &c);
        break;
    case NNTP_CMD_AUTHINFO:
        cmd_authinfo(s, &c);
        break;
    case NNTP_CMD_GROUP:
        cmd_group(s, &c);
        break;
    case NNTP_CMD_LISTGROUP:
        cmd_listgroup(s, &c);
        break;
    case NNTP_CMD_LIST:
        cmd_list(s, &c);
        break;
    case NNTP_CMD_NEWGROUPS:
        cmd_newgroups(s, &c);
        break;
    case NNTP_CMD_NEWNEWS:
        cmd_newnews(s, &c);
        break;
    case NNTP_CMD_ARTICLE:
    case NNTP_CMD_HEAD:
    case NNTP_CMD_BODY:
    case NNTP_CMD_STAT:
        cmd_article(s, &c);
        break;
    case NNTP_CMD_NEXT:
    case NNTP_CMD_LAST:
        cmd_next_last(s, c.cmd == NNTP_CMD_NEXT);
        break;
    case NNTP_CMD_OVER:
    case NNTP_CMD_XOVER:
        cmd_over_hdr(s, &c, 0, SLICE_NULL);
        break;
    case NNTP_CMD_HDR:
    case NNTP_CMD_XHDR:
        cmd_over_hdr(s, &c, 1, c.args[0]);
        break;
    case NNTP_CMD_POST:
        read_article(s, NNTP_CMD_POST, "340 Input article; end with <CR-LF>.<CR-LF>");
        break;
    case NNTP_CMD_IHAVE:
    case NNTP_CMD_CHECK:
    case NNTP_CMD_TAKETHIS:
        cmd_transfer(s, &c);
        break;
    case NNTP_CMD__COUNT:
        break;
    }
    flush(s);
}

/* While articles wait for their commit: whether the next line is more streaming
 * (CHECK, TAKETHIS, or the start of one), which may go on. */
static bool streaming_next(struct nntp_session *s)
{
    if (s->n_pending >= NNTP_MAX_PENDING)
        return false;
    char head[9];
    ev_ssize_t have = evbuffer_copyout(net_conn_input(s->conn), head, sizeof(head));
    if (have <= 0)
        return false;
    static const char *const go[] = {"TAKETHIS ", "CHECK "};
    for (size_t i = 0; i < sizeof(go) / sizeof(go[0]); i++) {
        size_t l = strlen(go[i]), m = (size_t)have < l ? (size_t)have : l;
        if (strncasecmp(head, go[i], m) == 0)
            return true;
    }
    return false;
}

static void nntp_readable(void *arg)
{
    struct nntp_session *s = arg;
    while (s->state != NNTP_CLOSING && s->state != NNTP_AUTH_CHECK) {
        if (s->state == NNTP_POSTING) {
            if (dotread_feed_evbuffer(&s->rd, net_conn_input(s->conn)) != DOTREAD_DONE)
                return;
            article_finish(s);
            continue;
        }
        if (s->pend_head && !streaming_next(s))
            return; /* pending_flush reads on */
        size_t max = s->state == NNTP_SASL_WAIT ? AUTH_LOGIN_MAX_RESPONSE : NNTP_MAX_LINE;
        enum net_line_result r = net_conn_read_line(s->conn, max, &s->line);
        if (r == NET_LINE_NEED_MORE)
            return;
        if (r == NET_LINE_TOO_LONG) {
            if (s->state == NNTP_SASL_WAIT) {
                auth_login_abort(s->login);
                s->state = NNTP_READY;
            }
            error_reply(s, "501 Command line too long");
            continue;
        }
        handle_line(s, buf_slice(&s->line));
        explicit_bzero(s->line.data, s->line.len); /* may have been a password */
    }
}

static void *nntp_open(struct net_conn *c, void *proto_arg)
{
    struct nntp_session *s = xcalloc(1, sizeof(*s));
    s->srv = proto_arg;
    s->conn = c;
    s->state = NNTP_READY;
    buf_init(&s->line);
    buf_init(&s->out);
    buf_init(&s->article_in);
    buf_init(&s->held);
    net_conn_write_through(c); /* no writable callback; each reply is one write */
    const struct wharf_config *cfg = s->srv->cfg;
    line_session_init(&s->ls, c, (unsigned)cfg->nntp_max_errors, too_many_errors, s);
    struct auth_login_params lp = {
        .service = "nntp",
        .continuation = "383 ",
        .mechs = AUTH_MECH_PLAIN,
        .plaintext = cfg->nntp_plaintext_auth,
        .max_credential = (size_t)cfg->auth_max_credential_length,
        .max_per_user_addr = (unsigned)cfg->nntp_max_userip_connections,
    };
    s->login = auth_login_new(s->srv->auth, c, &lp, auth_done, s);
    s->peer = net_addr_in_networks(net_conn_addr(c), (const char *const *)cfg->nntp_feed_peers.v,
                                   cfg->nntp_feed_peers.n);
    reply(s, "200 %s Wharf NNTP server ready, posting where groups allow it", s->srv->host);
    return s;
}

static void nntp_tls_ready(void *arg)
{
    struct nntp_session *s = arg;
    /* RFC 4642 2.2.2: forget what the plaintext phase said. */
    free(s->user);
    s->user = NULL;
    free(s->group);
    s->group = NULL;
    s->article = 0;
    s->state = NNTP_READY;
}

static void nntp_timeout(void *arg)
{
    struct nntp_session *s = arg;
    reply(s, "400 Disconnected for inactivity");
}

static void nntp_drain(void *arg)
{
    struct nntp_session *s = arg;
    if (s->pend_head) {
        s->drain_after = true; /* once the answers are out */
        return;
    }
    if (s->state == NNTP_READY) {
        reply(s, "400 Server shutting down");
        s->state = NNTP_CLOSING;
        line_close(&s->ls);
    }
}

static void nntp_closed(void *arg)
{
    struct nntp_session *s = arg;
    auth_login_free(s->login);
    while (s->pend_head) {
        struct pending *p = s->pend_head;
        s->pend_head = p->next;
        if (p->job)
            nntp_commit_cancel(p->job); /* still stored; nobody to answer */
        buf_free(&p->answer);
        free(p->offered);
        free(p);
    }
    buf_free(&s->held);
    free(s->user);
    free(s->account);
    free(s->group);
    free(s->offered);
    nntp_listing_free(&s->cache);
    nntp_groups_free(&s->groups);
    explicit_bzero(s->line.data, s->line.len);
    buf_free(&s->line);
    buf_free(&s->out);
    buf_free(&s->article_in);
    free(s);
}

const struct net_proto nntp_proto = {
    .open = nntp_open,
    .readable = nntp_readable,
    .tls_ready = nntp_tls_ready,
    .timeout = nntp_timeout,
    .drain = nntp_drain,
    .closed = nntp_closed,
};
