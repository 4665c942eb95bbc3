/*
 * cmd_sendmail.c - `wharf sendmail` (also when invoked as `sendmail`) and
 * `wharf mailq` (also `mailq`, `sendmail -bp`).
 *
 * sendmail reads a message from stdin and submits it by speaking SMTP, through
 * the mta's SMTP client (smtp/smtp_client.h), to the local MX service (the
 * first address of smtp_listen, loopback for "*"), which trusts it as a
 * client inside mynetworks: the message takes exactly the path (limits,
 * smuggling checks, durable spool) any other message takes. If wharfd is
 * not running, the message goes durably into the maildrop (spool/maildrop.h)
 * for the mta's pickup, after the checks the pickup will make; only if that
 * fails too does sendmail exit EX_TEMPFAIL (75). mailq reads the spool and
 * the maildrop (root or the wharf user).
 *
 * Must never: pass message or address text to a shell, exit 0 before the
 * server said 250 to the end of data or the maildrop file is durable, or
 * put a message in the maildrop that the server may already have queued.
 */
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/fdio.h"
#include "cli/cli.h"
#include "mta/mta_pickup.h"
#include "smtp/smtp_client.h"
#include "spool/maildrop.h"
#include "spool/spool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

/* Largest message sendmail reads from stdin before refusing (the server has its own limit). */
#define SENDMAIL_MAX_INPUT (1024ull * 1024 * 1024)

/* Connects to the local MX service; -1 with why when it cannot be reached. */
static int client_connect(const struct wharf_config *cfg, struct buf *why)
{
    if (cfg->smtp_listen.n == 0) {
        buf_printf(why, "smtp_listen is off: nowhere to submit");
        return -1;
    }
    struct listen_addr la;
    if (!config_parse_listen_addr(cfg->smtp_listen.v[0], &la)) {
        buf_printf(why, "cannot parse smtp_listen '%s'", cfg->smtp_listen.v[0]);
        return -1;
    }
    const char *host = la.host[0] ? la.host : "127.0.0.1";
    if (strcmp(host, "::") == 0)
        host = "::1";
    else if (strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    char port[16];
    snprintf(port, sizeof(port), "%u", la.port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        buf_printf(why, "bad address %s", host);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        buf_printf(why, "cannot connect to the mail server at %s port %s: %s", host, port,
                   strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int exit_for(int code)
{
    if (code < 0 || (code >= 400 && code < 500))
        return EX_TEMPFAIL;
    return EX_UNAVAILABLE;
}

/* -bs: the caller speaks SMTP itself; relay both ways until either side closes. */
static int relay_stdio(int fd)
{
    struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    char tmp[16384];
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return EX_IOERR;
        }
        if (p[0].revents) {
            ssize_t r = read(0, tmp, sizeof(tmp));
            if (r <= 0) {
                shutdown(fd, SHUT_WR);
                p[0].fd = -1;
            } else if (fd_send_all(fd, tmp, (size_t)r) != 0) {
                return EX_IOERR;
            }
        }
        if (p[1].revents) {
            ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
            if (r <= 0)
                return 0;
            if (write(1, tmp, (size_t)r) != r)
                return EX_IOERR;
        }
    }
}

/* Appends "@myhostname" to an address without a domain. */
static void qualify(const struct wharf_config *cfg, char **addr)
{
    if (strchr(*addr, '@') != NULL)
        return;
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s@%s", *addr, cfg->myhostname);
    free(*addr);
    *addr = buf_steal(&b, NULL);
}

/* Collects addresses from a To/Cc/Bcc field value: <a@b>, bare a@b or a bare local part, comma
 * separated. */
static void extract_addresses(const char *v, char ***list, size_t *n)
{
    const char *p = v;
    while (*p) {
        const char *start = p;
        bool quoted = false;
        int angle = 0;
        while (*p && (quoted || angle || *p != ',')) {
            if (*p == '"')
                quoted = !quoted;
            else if (*p == '<' && !quoted)
                angle = 1;
            else if (*p == '>' && !quoted)
                angle = 0;
            p++;
        }
        struct slice item = slice_trim(slice_make(start, (size_t)(p - start)));
        const char *lt = memchr(item.ptr, '<', item.len);
        if (lt) {
            const char *gt = memchr(lt, '>', item.len - (size_t)(lt - item.ptr));
            if (gt)
                item = slice_make(lt + 1, (size_t)(gt - lt - 1));
        } else {
            const char *paren = memchr(item.ptr, '(', item.len); /* a trailing comment */
            if (paren)
                item = slice_trim(slice_make(item.ptr, (size_t)(paren - item.ptr)));
        }
        /* a@b, or a bare local part ("To: root"), qualified later; not a group ("x:;") */
        bool plain = item.len > 0;
        for (size_t k = 0; k < item.len && plain; k++)
            plain = strchr(" \t:;\"", item.ptr[k]) == NULL;
        if (plain) {
            *list = xreallocarray(*list, *n + 1, sizeof(char *));
            (*list)[(*n)++] = slice_strdup(item);
        }
        if (*p == ',')
            p++;
    }
}

/*
 * Reads stdin into msg with CRLF line ends. Without ignore_dots a line
 * holding a single "." ends the message. With extract (-t) recipients come
 * from To/Cc/Bcc and Bcc lines are dropped. Sets *has_from, *eight_bit.
 */
static int read_message(bool ignore_dots, bool extract, struct buf *msg, char ***rcpts,
                        size_t *n_rcpts, bool *has_from, bool *eight_bit)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool in_header = true, in_bcc = false;
    struct buf field = BUF_INIT; /* the current header field, unfolded */
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        size_t l = (size_t)len;
        if (l > 0 && line[l - 1] == '\n')
            l--;
        if (l > 0 && line[l - 1] == '\r')
            l--;
        if (!ignore_dots && l == 1 && line[0] == '.')
            break;
        for (size_t i = 0; i < l; i++)
            *eight_bit |= (unsigned char)line[i] >= 0x80;
        if (in_header) {
            bool cont = l > 0 && (line[0] == ' ' || line[0] == '\t');
            if (!cont && field.len) {
                if (extract && (strncasecmp(field.data, "to:", 3) == 0 ||
                                strncasecmp(field.data, "cc:", 3) == 0 ||
                                strncasecmp(field.data, "bcc:", 4) == 0))
                    extract_addresses(strchr(field.data, ':') + 1, rcpts, n_rcpts);
                buf_reset(&field);
            }
            if (l == 0) {
                in_header = false;
            } else {
                if (!cont) {
                    in_bcc = strncasecmp(line, "bcc:", 4) == 0;
                    *has_from |= strncasecmp(line, "from:", 5) == 0;
                }
                buf_append(&field, line, l);
                if (in_bcc && extract)
                    continue;
            }
        }
        if (msg->len + l + 2 > SENDMAIL_MAX_INPUT) {
            fprintf(stderr, "sendmail: message too large\n");
            free(line);
            buf_free(&field);
            return EX_DATAERR;
        }
        buf_append(msg, line, l);
        buf_append(msg, "\r\n", 2);
    }
    if (field.len && extract &&
        (strncasecmp(field.data, "to:", 3) == 0 || strncasecmp(field.data, "cc:", 3) == 0 ||
         strncasecmp(field.data, "bcc:", 4) == 0))
        extract_addresses(strchr(field.data, ':') + 1, rcpts, n_rcpts);
    free(line);
    buf_free(&field);
    return 0;
}

/* submit_smtp's answer when nothing was handed over: the server is not there. */
#define SUBMIT_UNREACHED (-1)

static void submit_txn_done(struct smtp_client *c, struct smtp_client_txn *t, void *arg)
{
    (void)c, (void)t, (void)arg; /* the results are read once the session is over */
}

static void submit_session_done(struct smtp_client *c, void *arg)
{
    (void)c;
    event_base_loopexit(arg, NULL);
}

/* "CODE ENH TEXT" of a result, for the user. */
static void result_text(const struct smtp_client_result *r, struct buf *out)
{
    if (!r->local)
        buf_printf(out, "%d %s%s", r->code, r->enh, r->enh[0] ? " " : "");
    buf_append_slice(out, buf_slice(&r->text));
}

/*
 * What the transaction's results mean for sendmail. The first refused
 * recipient decides, as if the RCPTs had been sent one by one; without one,
 * the first failure of the transaction. A failure before the message went
 * out that says the session ended (421, lost, not greeted) means the server
 * has nothing: SUBMIT_UNREACHED.
 */
static int submit_outcome(const struct smtp_client_txn *t, struct buf *why)
{
    const struct smtp_client_rcpt *bad = NULL;
    for (size_t i = 0; i < t->n_rcpts && bad == NULL; i++)
        if (t->rcpts[i].result.cmd == SMTP_CLIENT_CMD_RCPT &&
            (t->rcpts[i].result.code < 200 || t->rcpts[i].result.code >= 300))
            bad = &t->rcpts[i];
    for (size_t i = 0; i < t->n_rcpts && bad == NULL; i++)
        if (t->rcpts[i].result.code < 200 || t->rcpts[i].result.code >= 300)
            bad = &t->rcpts[i];
    if (bad == NULL && t->data_sent)
        return 0; /* the server said 250 to the end of data */
    struct buf text = BUF_INIT;
    int rc;
    const struct smtp_client_result *r = bad ? &bad->result : NULL;
    if (r != NULL)
        result_text(r, &text);
    if (r == NULL || (!t->data_sent && (r->code == 421 || r->cmd == SMTP_CLIENT_CMD_GREETING ||
                                        (r->local && r->code / 100 == 4)))) {
        /* lost, not greeted, or 421: the server closes the session, nothing of it is queued */
        buf_printf(why, "the mail server ended the session%s%s", text.len ? ": " : "",
                   buf_cstr(&text));
        rc = SUBMIT_UNREACHED;
    } else if (r->local && t->data_sent) { /* queued or not: never twice */
        fprintf(stderr, "sendmail: lost connection to the mail server after the message\n");
        rc = EX_TEMPFAIL;
    } else if (r->cmd == SMTP_CLIENT_CMD_RCPT) {
        fprintf(stderr, "sendmail: %s: %s\n", bad->address, buf_cstr(&text));
        rc = r->code >= 500 ? EX_NOUSER : EX_TEMPFAIL;
    } else {
        fprintf(stderr, "sendmail: the mail server said: %s\n", buf_cstr(&text));
        rc = exit_for(r->code);
    }
    buf_free(&text);
    return rc;
}

/*
 * Submits body (unstuffed, CRLF) to the server through the SMTP client
 * (smtp/smtp_client.h, the mta's), on a loop of its own. Returns 0 after
 * the 250 to the end of data, a sysexits code when the server refused or the
 * outcome is unknown, or SUBMIT_UNREACHED (with why) when the server could
 * not be reached or ended the session (lost, or 421) before the message was
 * sent: then nothing is queued and the maildrop may take it.
 */
static int submit_smtp(const struct wharf_config *cfg, const char *sender, char **rcpts,
                       size_t n_rcpts, const struct buf *body, bool eight_bit, struct buf *why)
{
    int fd = client_connect(cfg, why);
    if (fd < 0)
        return SUBMIT_UNREACHED;
    bool utf8 = false;
    for (const char *p = sender; *p; p++)
        utf8 |= (unsigned char)*p >= 0x80;
    for (size_t r = 0; r < n_rcpts; r++)
        for (const char *p = rcpts[r]; *p; p++)
            utf8 |= (unsigned char)*p >= 0x80;
    signal(SIGPIPE, SIG_IGN); /* a server that goes away is an answer, not a signal */
    struct event_base *base = event_base_new();
    if (base == NULL) {
        close(fd);
        buf_printf(why, "cannot make an event loop");
        return SUBMIT_UNREACHED;
    }
    /* the local MX service trusts loopback clients inside mynetworks: no TLS, no AUTH */
    const struct smtp_client_params p = {.helo_name = "localhost", .tls = SMTP_TLS_NONE};
    struct smtp_client *c = smtp_client_new(base, &p, submit_txn_done, submit_session_done, base);
    struct smtp_client_rcpt *cr = xcalloc(n_rcpts, sizeof(*cr));
    for (size_t r = 0; r < n_rcpts; r++)
        cr[r].address = rcpts[r];
    struct smtp_client_txn t = {.sender = sender,
                                .data = buf_slice(body),
                                .body = eight_bit ? SMTP_CLIENT_8BITMIME : SMTP_CLIENT_7BIT,
                                .smtputf8 = utf8,
                                .rcpts = cr,
                                .n_rcpts = n_rcpts,
                                .all_or_none = true};
    smtp_client_attach_fd(c, fd);
    smtp_client_send(c, &t);
    smtp_client_quit(c);
    event_base_dispatch(base);
    int rc = submit_outcome(&t, why);
    smtp_client_free(c);
    for (size_t r = 0; r < n_rcpts; r++)
        smtp_client_result_clear(&cr[r].result);
    free(cr);
    event_base_free(base);
    return rc;
}

/*
 * The server is not there: the message goes into the maildrop, for the
 * mta's pickup. Checked first as the pickup will check it, so what it
 * would refuse is refused now, to the user.
 */
static int submit_maildrop(const struct wharf_config *cfg, const char *sender, char **rcpts,
                           size_t n_rcpts, const struct buf *body, struct buf *unreached)
{
    struct buf err = BUF_INIT;
    const struct maildrop_entry e = {.uid = (uint32_t)getuid(),
                                     .sender = (char *)sender,
                                     .rcpts = rcpts,
                                     .n_rcpts = n_rcpts,
                                     .data = *body};
    const char *why;
    switch (mta_pickup_check(cfg, &e, &why)) {
    case MTA_PICKUP_OK:
        break;
    case MTA_PICKUP_BAD_ADDRESS:
        fprintf(stderr, "sendmail: %s\n", why);
        return EX_NOUSER;
    case MTA_PICKUP_BAD_MESSAGE:
        fprintf(stderr, "sendmail: %s\n", why);
        return EX_DATAERR;
    }
    char name[32];
    /* root may be first to touch DATA: make it as wharfd would */
    int rc = geteuid() == 0 ? datadir_prepare(cfg, &err) : 0;
    if (rc == 0)
        rc = maildrop_write(cfg, &e, name, &err);
    if (rc != 0)
        fprintf(stderr, "sendmail: %s, and the message cannot be queued locally: %s\n",
                buf_cstr(unreached), buf_cstr(&err));
    buf_free(&err);
    return rc == 0 ? 0 : EX_TEMPFAIL;
}

int cmd_sendmail(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct wharf_config *cfg = ctx->cfg;
    bool extract = false, ignore_dots = false, smtp_stdio = false;
    const char *from = NULL, *fullname = NULL;
    char **rcpts = NULL;
    size_t n_rcpts = 0;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "-t") == 0)
            extract = true;
        else if (strcmp(a, "-i") == 0 || strcmp(a, "-oi") == 0)
            ignore_dots = true;
        else if (strcmp(a, "-bs") == 0)
            smtp_stdio = true;
        else if (strcmp(a, "-bp") == 0)
            return cmd_mailq(ctx, 1, argv);
        else if (strcmp(a, "-bm") == 0 || strcmp(a, "-v") == 0 || strncmp(a, "-od", 3) == 0 ||
                 strncmp(a, "-oe", 3) == 0 || strncmp(a, "-o", 2) == 0 || strcmp(a, "-U") == 0)
            ; /* accepted for compatibility: delivery mode and error mode are the server's */
        else if (strncmp(a, "-f", 2) == 0 || strncmp(a, "-r", 2) == 0)
            from = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
        else if (strncmp(a, "-F", 2) == 0)
            fullname = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
        else if (strncmp(a, "-B", 2) == 0 || strncmp(a, "-N", 2) == 0 || strncmp(a, "-R", 2) == 0 ||
                 strncmp(a, "-V", 2) == 0) {
            if (a[2] == '\0')
                i++; /* takes an argument we do not use */
        } else {
            fprintf(stderr, "sendmail: unsupported option %s\n", a);
            return EX_USAGE;
        }
    }
    if (from && (strpbrk(from, "<>\r\n ") != NULL)) {
        fprintf(stderr, "sendmail: bad sender address\n");
        return EX_USAGE;
    }
    struct buf why = BUF_INIT;
    if (smtp_stdio) { /* no maildrop for a caller who speaks SMTP: it hears the refusal */
        int fd = client_connect(cfg, &why);
        int rc = fd < 0 ? EX_TEMPFAIL : relay_stdio(fd);
        if (fd < 0)
            fprintf(stderr, "sendmail: %s\n", buf_cstr(&why));
        else
            close(fd);
        buf_free(&why);
        return rc;
    }
    for (; i < argc; i++) {
        if (strpbrk(argv[i], "<>\r\n ") != NULL) {
            fprintf(stderr, "sendmail: bad recipient address %s\n", argv[i]);
            for (size_t r = 0; r < n_rcpts; r++)
                free(rcpts[r]);
            free(rcpts);
            return EX_USAGE;
        }
        rcpts = xreallocarray(rcpts, n_rcpts + 1, sizeof(char *));
        rcpts[n_rcpts++] = xstrdup(argv[i]);
    }
    struct buf msg = BUF_INIT, sender = BUF_INIT, body = BUF_INIT;
    bool has_from = false, eight_bit = false;
    int rc = read_message(ignore_dots, extract, &msg, &rcpts, &n_rcpts, &has_from, &eight_bit);
    if (rc != 0)
        goto out;
    if (n_rcpts == 0) {
        fprintf(stderr, "sendmail: no recipients\n");
        rc = EX_USAGE;
        goto out;
    }
    /* Postfix's append_at_myorigin: a bare local part (cron's MAILTO=root) is this host's. */
    for (size_t r = 0; r < n_rcpts; r++)
        qualify(cfg, &rcpts[r]);
    struct passwd *pw = getpwuid(getuid());
    if (from) {
        buf_append_cstr(&sender, from);
        if (from[0] != '\0' && strchr(from, '@') == NULL)
            buf_printf(&sender, "@%s", cfg->myhostname);
    } else
        buf_printf(&sender, "%s@%s", pw ? pw->pw_name : "nobody", cfg->myhostname);
    if (!has_from) {
        if (fullname || (pw && !from && pw->pw_gecos && pw->pw_gecos[0]))
            buf_printf(&body, "From: %s <%s>\r\n", fullname ? fullname : pw->pw_gecos, sender.data);
        else
            buf_printf(&body, "From: <%s>\r\n", sender.data);
    }
    buf_append_slice(&body, buf_slice(&msg));
    rc = submit_smtp(cfg, sender.data, rcpts, n_rcpts, &body, eight_bit, &why);
    if (rc == SUBMIT_UNREACHED)
        rc = submit_maildrop(cfg, sender.data, rcpts, n_rcpts, &body, &why);
out:
    for (size_t r = 0; r < n_rcpts; r++)
        free(rcpts[r]);
    free(rcpts);
    buf_free(&msg);
    buf_free(&body);
    buf_free(&why);
    buf_free(&sender);
    return rc;
}

/* One entry of mailq: queue_name NULL for a spool entry (active, deferred or hold). */
static void mailq_print(const struct spool_message *m, const char *queue_name, bool json)
{
    if (json) {
        json_t *o = json_object(), *rc = json_array();
        json_object_set_new(o, "queue_name",
                            json_string(queue_name        ? queue_name
                                        : m->env.hold     ? "hold"
                                        : m->env.attempts ? "deferred"
                                                          : "active"));
        json_object_set_new(o, "queue_id", json_string(m->env.id));
        json_object_set_new(o, "arrival_time", json_integer(m->env.arrival));
        json_object_set_new(o, "message_size", json_integer((json_int_t)m->data.len));
        json_object_set_new(o, "sender", json_string(m->env.sender));
        json_object_set_new(o, "client", json_string(m->env.client ? m->env.client : ""));
        json_object_set_new(o, "body",
                            json_string(m->env.body == SPOOL_BODY_7BIT       ? "7BIT"
                                        : m->env.body == SPOOL_BODY_8BITMIME ? "8BITMIME"
                                                                             : "BINARYMIME"));
        json_object_set_new(o, "smtputf8", json_boolean(m->env.smtputf8));
        if (m->env.dsn_envid)
            json_object_set_new(o, "dsn_envid", json_string(m->env.dsn_envid));
        json_object_set_new(o, "dsn_ret", json_string(m->env.dsn_ret_hdrs ? "HDRS" : "FULL"));
        if (m->env.attempts) {
            json_object_set_new(o, "attempts", json_integer(m->env.attempts));
            json_object_set_new(o, "next_attempt", json_integer(m->env.next_attempt / 1000));
        }
        if (m->env.last_reason)
            json_object_set_new(o, "delay_reason", json_string(m->env.last_reason));
        for (size_t r = 0; r < m->env.n_rcpts; r++) {
            const struct spool_rcpt *rp = &m->env.rcpts[r];
            json_t *ro = json_object();
            json_object_set_new(ro, "address", json_string(rp->address));
            json_object_set_new(ro, "state", json_string(spool_rcpt_state_name(rp->state)));
            if (rp->orcpt)
                json_object_set_new(ro, "orcpt", json_string(rp->orcpt));
            if (rp->notify)
                json_object_set_new(ro, "notify", json_integer(rp->notify));
            if (rp->via && rp->state == SPOOL_RCPT_PENDING) /* its queue (`wharf queue`) */
                json_object_set_new(ro, "next_hop", json_string(rp->via));
            if (rp->waits && rp->state == SPOOL_RCPT_PENDING) /* Postfix's per-recipient one */
                json_object_set_new(ro, "delay_reason", json_string(rp->waits));
            json_array_append_new(rc, ro);
        }
        json_object_set_new(o, "recipients", rc);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(o);
        return;
    }
    char date[32];
    time_t t = (time_t)m->env.arrival;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a %b %e %H:%M:%S", &tm);
    /* Postfix marks a held entry with '!' after its id */
    char idm[40];
    snprintf(idm, sizeof(idm), "%s%s", m->env.id, m->env.hold ? "!" : "");
    printf("%-11s %8zu %20s  %s\n", idm, m->data.len, date,
           m->env.sender[0] ? m->env.sender : "MAILER-DAEMON");
    if (queue_name) /* the maildrop */
        printf("(waiting in the maildrop for the mail server)\n");
    else if (m->env.last_reason) /* Postfix: why a deferred message waits */
        printf("(%s)\n", m->env.last_reason);
    for (size_t r = 0; r < m->env.n_rcpts; r++) {
        if (m->env.rcpts[r].state == SPOOL_RCPT_PENDING)
            printf("%41s %s\n", "", m->env.rcpts[r].address);
    }
    printf("\n");
}

/* What mailq shows: spool entries, then maildrop files. */
struct mailq_list {
    struct spool_message *v;
    size_t n, n_spool; /* v[n_spool..n) come from the maildrop */
};

static struct spool_message *mailq_add(struct mailq_list *l)
{
    l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
    return &l->v[l->n];
}

/* The maildrop's files as the spool entries the pickup will make of them. */
static int mailq_maildrop(const struct wharf_config *cfg, struct mailq_list *l, struct buf *err)
{
    char *dir = maildrop_dir(cfg);
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        int rc = errno == ENOENT ? 0 : -1; /* wharfd never ran: no maildrop yet */
        buf_printf(err, "cannot open %s: %s", dir, strerror(errno));
        free(dir);
        return rc;
    }
    free(dir);
    char **names;
    size_t n;
    struct maildrop_limits lim;
    maildrop_limits_from_config(&lim, cfg);
    int rc = maildrop_list(dirfd, false, &names, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct maildrop_entry e;
        struct stat st;
        bool sender_set;
        const char *why;
        char id[32];
        struct buf skip = BUF_INIT;
        int r = maildrop_read(dirfd, names[i], &lim, &e, &st, &skip);
        buf_free(&skip);
        if (r != 0)
            continue; /* picked up meanwhile, or damaged (the mta reports it) */
        struct passwd *pw = getpwuid(st.st_uid);
        const struct mta_pickup_origin o = {
            .uid = st.st_uid, .user = pw ? pw->pw_name : NULL, .arrival = st.st_ctime};
        maildrop_spool_id(names[i], st.st_uid, id);
        if (mta_pickup_convert(cfg, id, &e, &o, mailq_add(l), &sender_set, &why) == MTA_PICKUP_OK)
            l->n++;
        maildrop_entry_free(&e);
    }
    spool_list_free(names, n);
    close(dirfd);
    return rc;
}

int cmd_mailq(struct cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "-bp") != 0) {
            fprintf(stderr, "usage: mailq [--json]\n");
            return EX_USAGE;
        }
    }
    char **ids;
    size_t n;
    struct buf err = BUF_INIT;
    if (spool_list(ctx->cfg, &ids, &n, &err) != 0) {
        fprintf(stderr, "mailq: %s\n", buf_cstr(&err));
        buf_free(&err);
        return errno == EACCES ? EX_NOPERM : EX_IOERR;
    }
    struct mailq_list l = {0};
    for (size_t i = 0; i < n; i++) {
        buf_reset(&err);
        if (spool_read(ctx->cfg, ids[i], mailq_add(&l), &err) == 0)
            l.n++; /* else delivered and removed meanwhile, or damaged (the mta reports it) */
    }
    spool_list_free(ids, n);
    l.n_spool = l.n;
    buf_reset(&err);
    int rc = 0;
    if (mailq_maildrop(ctx->cfg, &l, &err) != 0) {
        fprintf(stderr, "mailq: %s\n", buf_cstr(&err));
        rc = EX_NOPERM;
    }
    uint64_t total = 0;
    if (l.n == 0 && !json)
        printf("Mail queue is empty\n");
    else if (!json)
        printf("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n");
    for (size_t i = 0; i < l.n; i++) {
        mailq_print(&l.v[i], i < l.n_spool ? NULL : "maildrop", json);
        total += l.v[i].data.len;
        spool_message_free(&l.v[i]);
    }
    if (!json && l.n > 0)
        printf("-- %llu Kbytes in %zu Request%s.\n", (unsigned long long)(total + 1023) / 1024, l.n,
               l.n == 1 ? "" : "s");
    free(l.v);
    buf_free(&err);
    return rc;
}
