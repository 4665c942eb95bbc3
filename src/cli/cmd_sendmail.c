/*
 * cmd_sendmail.c - `wharf sendmail` (also when invoked as `sendmail`) and
 * `wharf mailq` (also `mailq`, `sendmail -bp`).
 *
 * sendmail reads a message from stdin and submits it by speaking SMTP to the
 * local MX service (the first address of smtp_listen, loopback for "*"),
 * which trusts it as a client inside mynetworks: no setuid helper, no
 * world-writable queue, and the message takes exactly the path (limits,
 * smuggling checks, durable spool) any other message takes. If wharfd is not
 * running the message is not queued and sendmail exits EX_TEMPFAIL (75) so
 * cron and scripts see it. mailq reads the spool (root or the wharf user).
 *
 * Must never: pass message or address text to a shell, or exit 0 before the
 * server said 250 to the end of data.
 */
#include "base/alloc.h"
#include "cli/cli.h"
#include "spool/spool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

/* Largest message sendmail reads from stdin before refusing (the server has its own limit). */
#define SENDMAIL_MAX_INPUT (1024ull * 1024 * 1024)
/* Longest SMTP reply line read from the server. */
#define SENDMAIL_MAX_REPLY 4096

struct smtp_client {
    int fd;
    char rbuf[8192];
    size_t rlen;
};

static int client_connect(const struct wharf_config *cfg)
{
    if (cfg->smtp_listen.n == 0) {
        fprintf(stderr, "sendmail: smtp_listen is off: nowhere to submit\n");
        return -1;
    }
    struct listen_addr la;
    if (!config_parse_listen_addr(cfg->smtp_listen.v[0], &la)) {
        fprintf(stderr, "sendmail: cannot parse smtp_listen '%s'\n", cfg->smtp_listen.v[0]);
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
        fprintf(stderr, "sendmail: bad address %s\n", host);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "sendmail: cannot connect to the mail server at %s port %s: %s\n", host,
                port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one (possibly multi-line) reply; returns its code, -1 on a lost connection. */
static int read_reply(struct smtp_client *c, struct buf *text)
{
    buf_reset(text);
    for (;;) {
        char *nl = memchr(c->rbuf, '\n', c->rlen);
        if (nl == NULL) {
            if (c->rlen == sizeof(c->rbuf))
                return -1;
            ssize_t r = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            c->rlen += (size_t)r;
            continue;
        }
        size_t len = (size_t)(nl - c->rbuf) + 1;
        if (text->len < SENDMAIL_MAX_REPLY)
            buf_append(text, c->rbuf, len);
        bool more = len >= 4 && c->rbuf[3] == '-';
        int code = len >= 3 ? atoi(c->rbuf) : -1;
        memmove(c->rbuf, c->rbuf + len, c->rlen - len);
        c->rlen -= len;
        if (!more)
            return code;
    }
}

static int command(struct smtp_client *c, struct buf *text, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int command(struct smtp_client *c, struct buf *text, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    buf_append(&b, "\r\n", 2);
    int rc = send_all(c->fd, b.data, b.len);
    buf_free(&b);
    return rc == 0 ? read_reply(c, text) : -1;
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
            } else if (send_all(fd, tmp, (size_t)r) != 0) {
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

/* Collects addresses from a To/Cc/Bcc field value: <a@b> or bare a@b, comma separated. */
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
        if (item.len > 0 && memchr(item.ptr, '@', item.len)) {
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
    int fd = client_connect(cfg);
    if (fd < 0)
        return EX_TEMPFAIL;
    if (smtp_stdio) {
        int rc = relay_stdio(fd);
        close(fd);
        return rc;
    }
    for (; i < argc; i++) {
        if (strpbrk(argv[i], "<>\r\n ") != NULL) {
            fprintf(stderr, "sendmail: bad recipient address %s\n", argv[i]);
            close(fd);
            return EX_USAGE;
        }
        rcpts = xreallocarray(rcpts, n_rcpts + 1, sizeof(char *));
        rcpts[n_rcpts++] = xstrdup(argv[i]);
    }
    struct buf msg = BUF_INIT, text = BUF_INIT, sender = BUF_INIT;
    bool has_from = false, eight_bit = false;
    int rc = read_message(ignore_dots, extract, &msg, &rcpts, &n_rcpts, &has_from, &eight_bit);
    if (rc != 0)
        goto out;
    if (n_rcpts == 0) {
        fprintf(stderr, "sendmail: no recipients\n");
        rc = EX_USAGE;
        goto out;
    }
    struct passwd *pw = getpwuid(getuid());
    if (from)
        buf_append_cstr(&sender, from);
    else
        buf_printf(&sender, "%s@%s", pw ? pw->pw_name : "nobody", cfg->myhostname);
    bool utf8 = false;
    for (size_t k = 0; k < sender.len; k++)
        utf8 |= (unsigned char)sender.data[k] >= 0x80;
    for (size_t r = 0; r < n_rcpts; r++)
        for (const char *p = rcpts[r]; *p; p++)
            utf8 |= (unsigned char)*p >= 0x80;

    struct smtp_client c = {.fd = fd};
    int code = read_reply(&c, &text);
    if (code != 220)
        goto fail;
    code = command(&c, &text, "EHLO localhost");
    if (code != 250)
        goto fail;
    code = command(&c, &text, "MAIL FROM:<%s>%s%s", sender.data, eight_bit ? " BODY=8BITMIME" : "",
                   utf8 ? " SMTPUTF8" : "");
    if (code != 250)
        goto fail;
    for (size_t r = 0; r < n_rcpts; r++) {
        code = command(&c, &text, "RCPT TO:<%s>", rcpts[r]);
        if (code != 250 && code != 251) {
            fprintf(stderr, "sendmail: %s: %s", rcpts[r], buf_cstr(&text));
            rc = code >= 500 ? EX_NOUSER : EX_TEMPFAIL;
            goto quit;
        }
    }
    code = command(&c, &text, "DATA");
    if (code != 354)
        goto fail;
    struct buf out = BUF_INIT;
    if (!has_from) {
        if (fullname || (pw && !from && pw->pw_gecos && pw->pw_gecos[0]))
            buf_printf(&out, "From: %s <%s>\r\n", fullname ? fullname : pw->pw_gecos, sender.data);
        else
            buf_printf(&out, "From: <%s>\r\n", sender.data);
    }
    /* Dot-stuffing (RFC 5321 4.5.2). */
    const char *p = msg.data, *end = msg.data + msg.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (*p == '.')
            buf_append_byte(&out, '.');
        buf_append(&out, p, l);
        p += l;
    }
    buf_append(&out, ".\r\n", 3);
    if (send_all(fd, out.data, out.len) != 0)
        code = -1;
    else
        code = read_reply(&c, &text);
    buf_free(&out);
    if (code != 250)
        goto fail;
    rc = 0;
    goto quit;
fail:
    if (code < 0)
        fprintf(stderr, "sendmail: lost connection to the mail server\n");
    else
        fprintf(stderr, "sendmail: the mail server said: %s", buf_cstr(&text));
    rc = exit_for(code);
quit:
    if (code >= 0)
        command(&c, &text, "QUIT");
out:
    close(fd);
    for (size_t r = 0; r < n_rcpts; r++)
        free(rcpts[r]);
    free(rcpts);
    buf_free(&msg);
    buf_free(&text);
    buf_free(&sender);
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
    if (n == 0 && !json)
        printf("Mail queue is empty\n");
    else if (!json)
        printf("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n");
    uint64_t total = 0;
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        struct spool_message m;
        buf_reset(&err);
        if (spool_read(ctx->cfg, ids[i], &m, &err) != 0)
            continue; /* delivered and removed meanwhile, or damaged (the mta reports it) */
        shown++;
        total += m.data.len;
        if (json) {
            json_t *o = json_object(), *rc = json_array();
            json_object_set_new(o, "queue_name", json_string(m.env.hold       ? "hold"
                                                               : m.env.attempts ? "deferred"
                                                                                : "active"));
            json_object_set_new(o, "queue_id", json_string(m.env.id));
            json_object_set_new(o, "arrival_time", json_integer(m.env.arrival));
            json_object_set_new(o, "message_size", json_integer((json_int_t)m.data.len));
            json_object_set_new(o, "sender", json_string(m.env.sender));
            json_object_set_new(o, "client", json_string(m.env.client ? m.env.client : ""));
            json_object_set_new(o, "body",
                                json_string(m.env.body == SPOOL_BODY_7BIT       ? "7BIT"
                                            : m.env.body == SPOOL_BODY_8BITMIME ? "8BITMIME"
                                                                                : "BINARYMIME"));
            json_object_set_new(o, "smtputf8", json_boolean(m.env.smtputf8));
            if (m.env.dsn_envid)
                json_object_set_new(o, "dsn_envid", json_string(m.env.dsn_envid));
            json_object_set_new(o, "dsn_ret", json_string(m.env.dsn_ret_hdrs ? "HDRS" : "FULL"));
            if (m.env.attempts) {
                json_object_set_new(o, "attempts", json_integer(m.env.attempts));
                json_object_set_new(o, "next_attempt", json_integer(m.env.next_attempt / 1000));
            }
            if (m.env.last_reason)
                json_object_set_new(o, "delay_reason", json_string(m.env.last_reason));
            for (size_t r = 0; r < m.env.n_rcpts; r++) {
                const struct spool_rcpt *rp = &m.env.rcpts[r];
                json_t *ro = json_object();
                json_object_set_new(ro, "address", json_string(rp->address));
                json_object_set_new(ro, "state", json_string(spool_rcpt_state_name(rp->state)));
                if (rp->orcpt)
                    json_object_set_new(ro, "orcpt", json_string(rp->orcpt));
                if (rp->notify)
                    json_object_set_new(ro, "notify", json_integer(rp->notify));
                json_array_append_new(rc, ro);
            }
            json_object_set_new(o, "recipients", rc);
            char *s = json_dumps(o, JSON_COMPACT);
            printf("%s\n", s);
            free(s);
            json_decref(o);
        } else {
            char date[32];
            time_t t = (time_t)m.env.arrival;
            struct tm tm;
            localtime_r(&t, &tm);
            strftime(date, sizeof(date), "%a %b %e %H:%M:%S", &tm);
            /* Postfix marks a held entry with '!' after its id */
            char idm[40];
            snprintf(idm, sizeof(idm), "%s%s", m.env.id, m.env.hold ? "!" : "");
            printf("%-11s %8zu %20s  %s\n", idm, m.data.len, date,
                   m.env.sender[0] ? m.env.sender : "MAILER-DAEMON");
            if (m.env.last_reason) /* Postfix: why a deferred message waits */
                printf("(%s)\n", m.env.last_reason);
            for (size_t r = 0; r < m.env.n_rcpts; r++) {
                if (m.env.rcpts[r].state == SPOOL_RCPT_PENDING)
                    printf("%41s %s\n", "", m.env.rcpts[r].address);
            }
            printf("\n");
        }
        spool_message_free(&m);
    }
    if (!json && shown > 0)
        printf("-- %llu Kbytes in %zu Request%s.\n", (unsigned long long)(total + 1023) / 1024,
               shown, shown == 1 ? "" : "s");
    spool_list_free(ids, n);
    buf_free(&err);
    return 0;
}
