/*
 * cmd_import_imap.c - wharf import imap USER --host H [--port P] --user U
 *                     --password-file F [--tls|--starttls] [--insecure]
 *
 * Copies every folder of an account on a live IMAP server (imapsync-like):
 * LIST, LSUB, then per folder EXAMINE (read-only: the source's \Seen and
 * \Recent are left alone), the light listing (UID FLAGS INTERNALDATE) of the
 * UIDs not imported yet, and the bodies in chunks (BODY.PEEK[]), each body
 * handed to the import batch as soon as it is read: memory is one chunk's
 * listing and one message, whatever the mailbox's size.
 *
 * Resumable: a folder takes the source's UIDVALIDITY and each message its
 * source UID (store_mailbox_set_uids, want_uid), so the folder's UIDNEXT is
 * the high-water mark; a rerun fetches only UIDs at or above it. (A folder
 * that already holds mail of its own under another UIDVALIDITY gets new
 * UIDs, and is then imported whole.) Never changes the source: EXAMINE and
 * BODY.PEEK only. TLS certificates are verified unless --insecure.
 */
#include "base/alloc.h"
#include "cli/imapc_parse.h"
#include "mime/mutf7.h"
#include "net/net_tls_client.h"
#include "cli/import.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

/* Longest response line (without literals) accepted from the server. */
#define IMAPC_LINE_MAX (1024 * 1024)
/* UIDs per UID FETCH of bodies: a bounded command line and listing. */
#define IMAPC_CHUNK 100
/* Seconds without a byte from the server before giving up. */
#define IMAPC_TIMEOUT 300

struct imapc {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char rbuf[65536];
    size_t rpos, rlen;
    struct buf text;
    struct buf lits[IMAPC_LITERALS_MAX];
    struct imapc_resp resp;
    unsigned tagn;
    char tag[16];
    struct buf cmd;
};

static void imapc_error(const char *what)
{
    fprintf(stderr, "wharf import imap: %s\n", what);
}

static int fill(struct imapc *c)
{
    for (;;) {
        ssize_t r;
        if (c->ssl) {
            int n = SSL_read(c->ssl, c->rbuf, (int)sizeof(c->rbuf));
            r = n > 0 ? n : -1;
        } else
            r = read(c->fd, c->rbuf, sizeof(c->rbuf));
        if (r < 0 && errno == EINTR && c->ssl == NULL)
            continue;
        if (r <= 0) {
            imapc_error(r == 0 ? "the server closed the connection" : "read error or timeout");
            return -1;
        }
        c->rpos = 0;
        c->rlen = (size_t)r;
        return 0;
    }
}

static int read_bytes(struct imapc *c, struct buf *out, uint64_t n)
{
    while (n > 0) {
        if (c->rpos == c->rlen && fill(c) != 0)
            return -1;
        size_t k = c->rlen - c->rpos;
        if (k > n)
            k = (size_t)n;
        buf_append(out, c->rbuf + c->rpos, k);
        c->rpos += k;
        n -= k;
    }
    return 0;
}

/* Appends one line (CRLF or LF removed) to out; -1 when too long or on error. */
static int read_line(struct imapc *c, struct buf *out)
{
    size_t start = out->len;
    for (;;) {
        if (c->rpos == c->rlen && fill(c) != 0)
            return -1;
        const char *p = c->rbuf + c->rpos;
        const char *nl = memchr(p, '\n', c->rlen - c->rpos);
        size_t k = nl ? (size_t)(nl - p) : c->rlen - c->rpos;
        buf_append(out, p, k);
        c->rpos += k + (nl ? 1 : 0);
        if (out->len - start > IMAPC_LINE_MAX) {
            imapc_error("response line too long");
            return -1;
        }
        if (nl) {
            if (out->len > start && out->data[out->len - 1] == '\r')
                out->len--;
            return 0;
        }
    }
}

/* One response, literals taken out (see imapc_parse.h). */
static int read_resp(struct imapc *c)
{
    buf_reset(&c->text);
    size_t n_lits = 0;
    for (;;) {
        if (read_line(c, &c->text) != 0)
            return -1;
        /* a line ending in {N} or {N+} announces N bytes */
        size_t len = c->text.len;
        const char *t = c->text.data;
        if (len < 3 || t[len - 1] != '}')
            break;
        size_t i = len - 1;
        if (t[i - 1] == '+')
            i--;
        size_t end = i;
        while (i > 0 && t[i - 1] >= '0' && t[i - 1] <= '9')
            i--;
        if (i == 0 || t[i - 1] != '{' || i == end || end - i > 10)
            break;
        uint64_t n = strtoull(t + i, NULL, 10);
        if (n > IMPORT_MESSAGE_MAX || n_lits == IMAPC_LITERALS_MAX) {
            imapc_error("literal too large or too many literals");
            return -1;
        }
        buf_reset(&c->lits[n_lits]);
        if (read_bytes(c, &c->lits[n_lits], n) != 0)
            return -1;
        n_lits++;
    }
    c->resp.text = buf_slice(&c->text);
    for (size_t i = 0; i < n_lits; i++)
        c->resp.lits[i] = buf_slice(&c->lits[i]);
    c->resp.n_lits = n_lits;
    return 0;
}

static int write_all(struct imapc *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (c->ssl) {
            int k = SSL_write(c->ssl, p, (int)n);
            w = k > 0 ? k : -1;
        } else
            w = write(c->fd, p, n);
        if (w < 0 && errno == EINTR && c->ssl == NULL)
            continue;
        if (w <= 0) {
            imapc_error("write error");
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends "TAG " + the command in c->cmd + CRLF. */
static int send_cmd(struct imapc *c)
{
    snprintf(c->tag, sizeof(c->tag), "W%u", ++c->tagn);
    struct buf line = BUF_INIT;
    buf_printf(&line, "%s %.*s\r\n", c->tag, (int)c->cmd.len, c->cmd.data);
    int rc = write_all(c, line.data, line.len);
    buf_free(&line);
    return rc;
}

/*
 * Reads responses until the tagged one; each untagged one goes to fn (may be
 * NULL). Returns 0 on OK, 1 on NO/BAD (printed), -1 on I/O trouble or when fn
 * fails.
 */
static int wait_tagged(struct imapc *c, int (*fn)(void *arg, const struct imapc_resp *r), void *arg)
{
    for (;;) {
        if (read_resp(c) != 0)
            return -1;
        struct slice text;
        int t = imapc_parse_tagged(&c->resp, c->tag, &text);
        if (t == 1)
            return 0;
        if (t == 0) {
            fprintf(stderr, "wharf import imap: %.*s: %.*s\n",
                    (int)(c->cmd.len > 40 ? 40 : c->cmd.len), c->cmd.data, (int)text.len, text.ptr);
            return 1;
        }
        if (fn && fn(arg, &c->resp) != 0)
            return -1;
    }
}

/* Appends an IMAP quoted string; false for bytes a quoted string cannot hold. */
static bool quote(struct buf *b, const char *s)
{
    buf_append_byte(b, '"');
    for (; *s; s++) {
        if (*s == '\r' || *s == '\n')
            return false;
        if (*s == '"' || *s == '\\')
            buf_append_byte(b, '\\');
        buf_append_byte(b, *s);
    }
    buf_append_byte(b, '"');
    return true;
}

static int tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int e = getaddrinfo(host, port, &hints, &res);
    if (e != 0) {
        fprintf(stderr, "wharf import imap: %s: %s\n", host, gai_strerror(e));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "wharf import imap: cannot connect to %s port %s: %s\n", host, port,
                strerror(errno));
    else {
        struct timeval tv = {IMAPC_TIMEOUT, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

static int start_tls(struct imapc *c, const char *host, bool insecure)
{
    struct buf err = BUF_INIT;
    const struct net_tls_client_peer peer = {
        .name = host, .verify = insecure ? NET_TLS_VERIFY_NONE : NET_TLS_VERIFY_NAME};
    c->ctx = net_tls_client_ctx_new(NULL, &err);
    if (c->ctx != NULL)
        c->ssl = net_tls_client_ssl_new(c->ctx, &peer, &err);
    if (c->ssl == NULL) {
        fprintf(stderr, "wharf import imap: TLS with %s: %s\n", host, buf_cstr(&err));
        buf_free(&err);
        return -1;
    }
    buf_free(&err);
    SSL_set_fd(c->ssl, c->fd);
    if (SSL_connect(c->ssl) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        fprintf(stderr, "wharf import imap: TLS with %s: %s%s\n", host, e,
                insecure ? "" : " (--insecure skips the certificate check)");
        return -1;
    }
    return 0;
}

static void imapc_close(struct imapc *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    buf_free(&c->text);
    buf_free(&c->cmd);
    for (size_t i = 0; i < IMAPC_LITERALS_MAX; i++)
        buf_free(&c->lits[i]);
}

/* ---- folders ---- */

struct folder {
    char *remote; /* the name on the server (as LIST gave it) */
    char *local;  /* the store's name */
};

struct folders {
    struct folder *v;
    size_t n, cap;
    char **subs;
    size_t n_subs, cap_subs;
};

static char *local_name(struct slice remote, char delim)
{
    if (slice_eq_cstr_nocase(remote, "INBOX"))
        return xstrdup(STORE_INBOX);
    /* an IMAP4rev1 server's names are modified UTF-7 (RFC 3501 5.1.3); one
     * that is not strictly so is kept as sent */
    struct buf utf8 = BUF_INIT;
    if (mutf7_decode(remote, &utf8))
        remote = buf_slice(&utf8);
    char *s = slice_strdup(remote);
    buf_free(&utf8);
    for (char *p = s; *p; p++)
        if (delim && *p == delim)
            *p = '/';
        else if (*p == '/')
            *p = '_'; /* a '/' inside a level of another server's hierarchy */
    return s;
}

static int on_list(void *arg, const struct imapc_resp *r)
{
    struct folders *f = arg;
    struct buf name = BUF_INIT;
    char delim;
    bool noselect;
    if (imapc_parse_list(r, "LIST", &name, &delim, &noselect) && !noselect) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 16;
            f->v = xreallocarray(f->v, f->cap, sizeof(*f->v));
        }
        f->v[f->n].remote = xstrdup(buf_cstr(&name));
        f->v[f->n].local = local_name(buf_slice(&name), delim);
        f->n++;
    } else if (imapc_parse_list(r, "LSUB", &name, &delim, &noselect)) {
        if (f->n_subs == f->cap_subs) {
            f->cap_subs = f->cap_subs ? f->cap_subs * 2 : 16;
            f->subs = xreallocarray(f->subs, f->cap_subs, sizeof(*f->subs));
        }
        f->subs[f->n_subs++] = local_name(buf_slice(&name), delim);
    }
    buf_free(&name);
    return 0;
}

/* ---- one folder ---- */

struct meta {
    uint32_t uid;
    unsigned flags;
    char *keywords;
    int64_t date;
};

struct folder_ctx {
    struct import_batch *b;
    const struct folder *f;
    uint32_t uidvalidity, uidnext, exists, min_uid;
    struct meta *m;
    size_t n, cap;
    struct imapc_fetch fetch;
    bool keep_uids;
    int rc;
};

static int on_select(void *arg, const struct imapc_resp *r)
{
    struct folder_ctx *fc = arg;
    imapc_parse_code_number(r, "UIDVALIDITY", &fc->uidvalidity);
    imapc_parse_code_number(r, "UIDNEXT", &fc->uidnext);
    imapc_parse_exists(r, &fc->exists);
    return 0;
}

static int on_listing(void *arg, const struct imapc_resp *r)
{
    struct folder_ctx *fc = arg;
    if (!imapc_parse_fetch(r, &fc->fetch) || fc->fetch.uid < fc->min_uid || fc->fetch.uid == 0)
        return 0;
    if (fc->n == fc->cap) {
        fc->cap = fc->cap ? fc->cap * 2 : 256;
        fc->m = xreallocarray(fc->m, fc->cap, sizeof(*fc->m));
    }
    fc->m[fc->n++] =
        (struct meta){fc->fetch.uid, fc->fetch.flags,
                      fc->fetch.keywords.len ? xstrdup(buf_cstr(&fc->fetch.keywords)) : NULL,
                      fc->fetch.internaldate};
    return 0;
}

static int cmp_meta(const void *a, const void *b)
{
    uint32_t x = ((const struct meta *)a)->uid, y = ((const struct meta *)b)->uid;
    return x < y ? -1 : x > y;
}

static int on_body(void *arg, const struct imapc_resp *r)
{
    struct folder_ctx *fc = arg;
    if (!imapc_parse_fetch(r, &fc->fetch) || !fc->fetch.has_body)
        return 0;
    struct meta key = {.uid = fc->fetch.uid};
    struct meta *m = bsearch(&key, fc->m, fc->n, sizeof(*fc->m), cmp_meta);
    if (m == NULL)
        return 0;
    struct buf data = BUF_INIT;
    buf_append_slice(&data, fc->fetch.body);
    int rc = import_batch_add(fc->b, fc->f->local, &data, m->flags, m->keywords, m->date,
                              fc->keep_uids ? m->uid : 0);
    buf_free(&data);
    return rc;
}

static int import_folder(struct imapc *c, struct import_batch *b, const struct folder *f)
{
    struct folder_ctx fc = {.b = b, .f = f, .keep_uids = true};
    buf_reset(&c->cmd);
    buf_append_cstr(&c->cmd, "EXAMINE ");
    if (!quote(&c->cmd, f->remote))
        return 0;
    int rc = send_cmd(c) == 0 ? wait_tagged(c, on_select, &fc) : -1;
    if (rc != 0)
        return rc < 0 ? -1 : 0; /* a folder the server will not open: go on */
    struct buf err = BUF_INIT;
    if (store_mailbox_set_uids(b->store, b->owner, f->local, NULL, fc.uidvalidity, 1, &err) != 0) {
        fprintf(stderr, "wharf import imap: %s: %s; importing with new UIDs\n", f->local,
                buf_cstr(&err));
        buf_reset(&err);
        fc.keep_uids = false;
        if (store_mailbox_set_uids(b->store, b->owner, f->local, NULL, 0, 1, &err) != 0) {
            fprintf(stderr, "wharf import imap: %s: %s\n", f->local, buf_cstr(&err));
            buf_free(&err);
            return -1;
        }
    }
    struct store_mailbox mb;
    if (store_mailbox_get(b->store, b->owner, f->local, &mb, &err) != 0) {
        fprintf(stderr, "wharf import imap: %s: %s\n", f->local, buf_cstr(&err));
        buf_free(&err);
        return -1;
    }
    fc.min_uid = fc.keep_uids ? mb.uidnext : 1;
    store_mailbox_free(&mb);
    b->what = f->local;
    b->folders++;
    if (fc.exists > 0) {
        buf_reset(&c->cmd);
        buf_printf(&c->cmd, "UID FETCH %" PRIu32 ":* (UID FLAGS INTERNALDATE)", fc.min_uid);
        rc = send_cmd(c) == 0 ? wait_tagged(c, on_listing, &fc) : -1;
    }
    if (rc == 0 && fc.n > 1)
        qsort(fc.m, fc.n, sizeof(*fc.m), cmp_meta);
    for (size_t i = 0; i < fc.n && rc == 0; i += IMAPC_CHUNK) {
        buf_reset(&c->cmd);
        buf_append_cstr(&c->cmd, "UID FETCH ");
        for (size_t k = i; k < fc.n && k < i + IMAPC_CHUNK; k++)
            buf_printf(&c->cmd, "%s%" PRIu32, k > i ? "," : "", fc.m[k].uid);
        buf_append_cstr(&c->cmd, " (UID BODY.PEEK[])");
        rc = send_cmd(c) == 0 ? wait_tagged(c, on_body, &fc) : -1;
        if (rc == 0)
            rc = import_batch_flush(b);
    }
    if (fc.keep_uids && fc.exists > fc.n)
        b->skipped += fc.exists - fc.n; /* imported by an earlier run */
    if (rc == 0 && fc.keep_uids && fc.uidnext > 1 &&
        store_mailbox_set_uids(b->store, b->owner, f->local, NULL, 0, fc.uidnext, &err) != 0) {
        fprintf(stderr, "wharf import imap: %s: %s\n", f->local, buf_cstr(&err));
        rc = -1;
    }
    fprintf(stderr, "wharf import imap: %s: %zu new of %" PRIu32 "\n", f->local, fc.n, fc.exists);
    for (size_t i = 0; i < fc.n; i++)
        free(fc.m[i].keywords);
    free(fc.m);
    buf_free(&fc.fetch.keywords);
    buf_free(&err);
    return rc == 0 ? 0 : -1;
}

/* ---- the command ---- */

static int read_password(const char *file, struct buf *pw)
{
    FILE *f = fopen(file, "re");
    if (f == NULL) {
        fprintf(stderr, "wharf import imap: %s: %s\n", file, strerror(errno));
        return -1;
    }
    char line[1024];
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (!ok)
        return -1;
    line[strcspn(line, "\r\n")] = '\0';
    buf_append_cstr(pw, line);
    explicit_bzero(line, sizeof(line));
    return 0;
}

int import_imap(struct cli_ctx *ctx, struct store *s, const char *owner, int argc, char **argv)
{
    const char *host = NULL, *port = NULL, *user = NULL, *pwfile = NULL;
    bool tls = false, starttls = false, insecure = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = strcmp(a, "--host") == 0            ? &host
                            : strcmp(a, "--port") == 0          ? &port
                            : strcmp(a, "--user") == 0          ? &user
                            : strcmp(a, "--password-file") == 0 ? &pwfile
                                                                : NULL;
        if (slot && i + 1 < argc)
            *slot = argv[++i];
        else if (strcmp(a, "--tls") == 0)
            tls = true;
        else if (strcmp(a, "--starttls") == 0)
            starttls = true;
        else if (strcmp(a, "--insecure") == 0)
            insecure = true;
        else {
            fprintf(stderr, "wharf import imap: unknown argument %s\n", a);
            return EX_USAGE;
        }
    }
    if (!host || !user || !pwfile) {
        fprintf(stderr, "usage: wharf import imap USER --host H [--port P] --user U "
                        "--password-file F [--tls|--starttls] [--insecure]\n");
        return EX_USAGE;
    }
    if (!port)
        port = tls ? "993" : "143";
    struct buf pw = BUF_INIT;
    if (read_password(pwfile, &pw) != 0)
        return EX_NOINPUT;
    struct imapc *c = xcalloc(1, sizeof(*c));
    struct import_batch *b = xcalloc(1, sizeof(*b));
    import_batch_init(b, s, ctx->cfg, owner);
    struct folders fl = {0};
    int code = EX_UNAVAILABLE;
    c->fd = tcp_connect(host, port);
    if (c->fd < 0 || (tls && start_tls(c, host, insecure) != 0) || read_resp(c) != 0)
        goto out;
    if (!slice_startswith_nocase(c->resp.text, "* OK") &&
        !slice_startswith_nocase(c->resp.text, "* PREAUTH")) {
        imapc_error("no IMAP greeting");
        goto out;
    }
    if (starttls && !tls) {
        buf_reset(&c->cmd);
        buf_append_cstr(&c->cmd, "STARTTLS");
        /* nothing the server sent before TLS is kept (a STARTTLS wall) */
        if (send_cmd(c) != 0 || wait_tagged(c, NULL, NULL) != 0)
            goto out;
        c->rpos = c->rlen = 0;
        if (start_tls(c, host, insecure) != 0)
            goto out;
    }
    buf_reset(&c->cmd);
    buf_append_cstr(&c->cmd, "LOGIN ");
    if (!quote(&c->cmd, user) || (buf_append_byte(&c->cmd, ' '), !quote(&c->cmd, pw.data))) {
        imapc_error("user or password with a line break");
        code = EX_DATAERR;
        goto out;
    }
    int rc = send_cmd(c) == 0 ? wait_tagged(c, NULL, NULL) : -1;
    explicit_bzero(c->cmd.data, c->cmd.cap);
    if (rc != 0) {
        code = rc > 0 ? EX_NOPERM : EX_UNAVAILABLE;
        goto out;
    }
    static const char *const lists[] = {"LIST \"\" \"*\"", "LSUB \"\" \"*\""};
    for (int i = 0; i < 2; i++) {
        buf_reset(&c->cmd);
        buf_append_cstr(&c->cmd, lists[i]);
        if (send_cmd(c) != 0 || wait_tagged(c, on_list, &fl) < 0)
            goto out;
    }
    code = 0;
    for (size_t i = 0; i < fl.n && code == 0; i++)
        if (import_folder(c, b, &fl.v[i]) != 0)
            code = EX_TEMPFAIL;
    for (size_t i = 0; i < fl.n_subs && code == 0; i++) {
        struct buf err = BUF_INIT;
        if (store_subscribe(s, owner, fl.subs[i], true, &err) != 0)
            fprintf(stderr, "wharf import imap: subscription %s: %s\n", fl.subs[i], buf_cstr(&err));
        buf_free(&err);
    }
    buf_reset(&c->cmd);
    buf_append_cstr(&c->cmd, "LOGOUT");
    if (code == 0 && send_cmd(c) == 0)
        wait_tagged(c, NULL, NULL);
out:
    import_batch_finish(b, "imap");
    if (code == 0 && b->failed)
        code = EX_DATAERR;
    for (size_t i = 0; i < fl.n; i++) {
        free(fl.v[i].remote);
        free(fl.v[i].local);
    }
    free(fl.v);
    for (size_t i = 0; i < fl.n_subs; i++)
        free(fl.subs[i]);
    free(fl.subs);
    imapc_close(c);
    free(c);
    free(b);
    explicit_bzero(pw.data, pw.cap);
    buf_free(&pw);
    return code;
}
