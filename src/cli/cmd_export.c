/*
 * cmd_export.c - wharf export: a user's mail in the formats other servers
 * and mail readers read.
 *
 *   wharf export maildir USER PATH         Maildir++ for Dovecot: every folder, flags,
 *                                          keywords (dovecot-keywords), subscriptions, and
 *                                          dovecot-uidlist so Dovecot serves the same UIDs
 *   wharf export mbox USER FILE [FOLDER]   mboxrd for mutt (Status:/X-Status:, X-Keywords:)
 *
 * Reads the store (a snapshot per folder listing; messages expunged while
 * the export runs are left out) and never changes it. Files are written
 * with LF line ends, as Maildir and mbox readers expect; everything is
 * synced to disk (one syncfs) before the command says it is done. Formats
 * come from mime/mailfmt.h, the same code import reads them with.
 */
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/fdio.h"
#include "cli/cli.h"
#include "mime/mailfmt.h"
#include "mime/mutf7.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

/* CRLF -> LF: what Maildir and mbox files hold. */
static void to_lf(struct slice in, struct buf *out)
{
    buf_reset(out);
    buf_reserve(out, in.len);
    for (size_t i = 0; i < in.len; i++) {
        if (in.ptr[i] == '\r' && i + 1 < in.len && in.ptr[i + 1] == '\n')
            continue;
        buf_append_byte(out, in.ptr[i]);
    }
}

static int mkdir_p(const char *path)
{
    struct buf p = BUF_INIT;
    buf_append_cstr(&p, path);
    int rc = 0;
    for (size_t i = 1; i <= p.len && rc == 0; i++) {
        if (i == p.len || p.data[i] == '/') {
            char c = p.data[i];
            p.data[i] = '\0';
            if (mkdir(p.data, 0700) != 0 && errno != EEXIST)
                rc = -1;
            p.data[i] = c;
        }
    }
    buf_free(&p);
    return rc;
}

/* A store name as Dovecot keeps it on disk: modified UTF-7, '/' as '.',
 * a '.' inside a level as dot. */
static void disk_name(const char *name, char dot, struct buf *out)
{
    struct buf enc = BUF_INIT;
    struct slice n = slice_from_cstr(name);
    if (mutf7_encode(n, &enc))
        n = buf_slice(&enc);
    for (size_t i = 0; i < n.len; i++)
        buf_append_byte(out, n.ptr[i] == '/' ? '.' : n.ptr[i] == '.' ? dot : n.ptr[i]);
    buf_free(&enc);
}

/* Keyword names of a folder, in first-seen order (at most 26: Maildir's letters). */
struct kwtab {
    char *names[MAILFMT_KEYWORDS_MAX];
    unsigned n;
    bool overflow;
};

static uint32_t keyword_mask(struct kwtab *k, const char *keywords)
{
    uint32_t mask = 0;
    const char *p = keywords;
    while (p && *p) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len == 0)
            break;
        unsigned i;
        for (i = 0; i < k->n; i++)
            if (strlen(k->names[i]) == len && strncasecmp(k->names[i], p, len) == 0)
                break;
        if (i == k->n) {
            if (k->n == MAILFMT_KEYWORDS_MAX)
                k->overflow = true;
            else
                k->names[k->n++] = xstrndup(p, len);
        }
        if (i < MAILFMT_KEYWORDS_MAX)
            mask |= 1u << i;
        p += len;
    }
    return mask;
}

static int export_maildir_folder(struct store *s, const char *owner, const struct store_mailbox *mb,
                                 const char *dir, uint64_t *count, uint64_t *bytes)
{
    struct buf path = BUF_INIT, name = BUF_INIT, data = BUF_INIT, lf = BUF_INIT, err = BUF_INIT,
               uidlist = BUF_INIT;
    struct store_message *msgs = NULL;
    size_t n = 0;
    struct kwtab kw = {0};
    int rc = -1;
    const char *subs[] = {"cur", "new", "tmp"};
    for (int i = 0; i < 3; i++) {
        buf_reset(&path);
        buf_printf(&path, "%s/%s", dir, subs[i]);
        if (mkdir_p(path.data) != 0) {
            fprintf(stderr, "wharf export: %s: %s\n", path.data, strerror(errno));
            goto out;
        }
    }
    if (store_message_list_id(s, owner, mb->id, 1, &msgs, &n, &err) != 0) {
        fprintf(stderr, "wharf export: %s: %s\n", mb->name, buf_cstr(&err));
        goto out;
    }
    buf_printf(&uidlist, "3 V%" PRIu32 " N%" PRIu32 "\n", mb->uidvalidity, mb->uidnext);
    for (size_t i = 0; i < n; i++) {
        int r = store_message_read_id(s, owner, mb->id, msgs[i].uid, &data, &err);
        if (r == 1)
            continue; /* expunged meanwhile */
        if (r != 0) {
            fprintf(stderr, "wharf export: %s: %s\n", mb->name, buf_cstr(&err));
            goto out;
        }
        to_lf(buf_slice(&data), &lf);
        /* unique part: arrival time, then what makes it unique in this export */
        buf_reset(&name);
        buf_printf(&name, "%" PRId64 ".W%" PRIu32 "V%" PRIu32 ".wharf,S=%zu", msgs[i].internaldate,
                   msgs[i].uid, mb->uidvalidity, lf.len);
        buf_printf(&uidlist, "%" PRIu32 " :%s\n", msgs[i].uid, name.data);
        mailfmt_maildir_info_format(&name, msgs[i].flags, keyword_mask(&kw, msgs[i].keywords));
        buf_reset(&path);
        buf_printf(&path, "%s/cur/%s", dir, name.data);
        int fd = open(path.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || fd_write_all(fd, lf.data, lf.len) != 0) {
            fprintf(stderr, "wharf export: %s: %s\n", path.data, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto out;
        }
        /* Dovecot takes a Maildir message's INTERNALDATE from its mtime */
        struct timespec times[2] = {{msgs[i].internaldate, 0}, {msgs[i].internaldate, 0}};
        futimens(fd, times);
        close(fd);
        (*count)++;
        *bytes += lf.len;
    }
    if (kw.overflow)
        fprintf(stderr, "wharf export: %s: more than %d keywords; the others are left out\n",
                mb->name, MAILFMT_KEYWORDS_MAX);
    struct {
        const char *file;
        struct buf *text;
    } side[2] = {{"dovecot-uidlist", &uidlist}, {"dovecot-keywords", &data}};
    buf_reset(&data);
    for (unsigned i = 0; i < kw.n; i++)
        buf_printf(&data, "%u %s\n", i, kw.names[i]);
    for (int i = 0; i < 2; i++) {
        if (i == 1 && kw.n == 0)
            break;
        buf_reset(&path);
        buf_printf(&path, "%s/%s", dir, side[i].file);
        int fd = open(path.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || fd_write_all(fd, side[i].text->data, side[i].text->len) != 0) {
            fprintf(stderr, "wharf export: %s: %s\n", path.data, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto out;
        }
        close(fd);
    }
    rc = 0;
out:
    store_message_list_free(msgs, n);
    for (unsigned i = 0; i < kw.n; i++)
        free(kw.names[i]);
    buf_free(&path);
    buf_free(&name);
    buf_free(&data);
    buf_free(&lf);
    buf_free(&err);
    buf_free(&uidlist);
    return rc;
}

static int export_maildir(struct store *s, const char *owner, const char *root)
{
    struct store_mailbox *l = NULL;
    size_t n = 0;
    struct buf err = BUF_INIT, dir = BUF_INIT, subs = BUF_INIT;
    if (store_mailbox_list(s, owner, &l, &n, &err) != 0) {
        fprintf(stderr, "wharf export: %s\n", buf_cstr(&err));
        buf_free(&err);
        return EX_TEMPFAIL;
    }
    if (mkdir_p(root) != 0) {
        fprintf(stderr, "wharf export: %s: %s\n", root, strerror(errno));
        store_mailbox_list_free(l, n);
        buf_free(&err);
        return EX_CANTCREAT;
    }
    uint64_t count = 0, bytes = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        buf_reset(&dir);
        if (strcmp(l[i].name, STORE_INBOX) == 0)
            buf_append_cstr(&dir, root);
        else {
            /* Maildir++: "A/B" is ROOT/.A.B in modified UTF-7, as Dovecot
             * keeps it; a '.' inside a level cannot be kept */
            buf_printf(&dir, "%s/.", root);
            disk_name(l[i].name, '_', &dir);
        }
        rc = export_maildir_folder(s, owner, &l[i], dir.data, &count, &bytes);
    }
    /* Subscriptions may name folders that do not exist (RFC 3501 LSUB) */
    char **names = NULL;
    size_t n_names = 0;
    if (rc == 0 && store_subscriptions(s, owner, &names, &n_names, &err) != 0) {
        fprintf(stderr, "wharf export: %s\n", buf_cstr(&err));
        rc = -1;
    }
    for (size_t i = 0; i < n_names; i++) {
        disk_name(names[i], '.', &subs);
        buf_append_byte(&subs, '\n');
    }
    store_names_free(names, n_names);
    if (rc == 0) {
        buf_reset(&dir);
        buf_printf(&dir, "%s/subscriptions", root);
        int fd = open(dir.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || fd_write_all(fd, subs.data ? subs.data : "", subs.len) != 0)
            rc = -1;
        if (fd >= 0)
            close(fd);
    }
    if (rc == 0 && datadir_syncfs(root) != 0)
        rc = -1;
    if (rc == 0)
        printf("exported %s: %" PRIu64 " messages (%.1f MB) in %zu folders to %s\n", owner, count,
               (double)bytes / 1e6, n, root);
    store_mailbox_list_free(l, n);
    buf_free(&err);
    buf_free(&dir);
    buf_free(&subs);
    return rc == 0 ? 0 : EX_IOERR;
}

/* The envelope sender for the "From " line: Return-Path's address, else MAILER-DAEMON. */
static struct slice return_path(struct slice msg)
{
    size_t i = 0;
    while (i < msg.len) {
        const char *nl = memchr(msg.ptr + i, '\n', msg.len - i);
        size_t end = nl ? (size_t)(nl - msg.ptr) : msg.len;
        struct slice line = slice_make(msg.ptr + i, end - i);
        if (line.len == 0)
            break;
        if (slice_startswith_nocase(line, "Return-Path:")) {
            const char *lt = memchr(line.ptr, '<', line.len);
            const char *gt = lt ? memchr(lt, '>', line.len - (size_t)(lt - line.ptr)) : NULL;
            if (lt && gt)
                return slice_make(lt + 1, (size_t)(gt - lt - 1));
        }
        i = end + 1;
    }
    return slice_make("", 0);
}

static int export_mbox(struct store *s, const char *owner, const char *file, const char *mailbox)
{
    struct store_message *msgs = NULL;
    size_t n = 0;
    struct buf err = BUF_INIT, data = BUF_INIT, lf = BUF_INIT, out = BUF_INIT;
    if (store_message_list(s, owner, mailbox, 1, &msgs, &n, &err) != 0) {
        fprintf(stderr, "wharf export: %s: %s\n", mailbox, buf_cstr(&err));
        buf_free(&err);
        return EX_TEMPFAIL;
    }
    struct store_mailbox mb;
    if (store_mailbox_get(s, owner, mailbox, &mb, &err) != 0) {
        fprintf(stderr, "wharf export: %s: %s\n", mailbox,
                err.len ? buf_cstr(&err) : "no such folder");
        store_message_list_free(msgs, n);
        buf_free(&err);
        return EX_NOINPUT;
    }
    /* Dovecot's mbox UID headers: X-IMAPbase (UIDVALIDITY, UIDNEXT, the folder's
     * keywords) on the first message and X-UID on each, so it serves the same UIDs */
    struct buf imapbase = BUF_INIT;
    buf_printf(&imapbase, "X-IMAPbase: %" PRIu32 " %010" PRIu32, mb.uidvalidity, mb.uidnext);
    struct kwtab kw = {0};
    for (size_t i = 0; i < n; i++)
        keyword_mask(&kw, msgs[i].keywords);
    for (unsigned i = 0; i < kw.n; i++) {
        buf_printf(&imapbase, " %s", kw.names[i]);
        free(kw.names[i]);
    }
    buf_append_byte(&imapbase, '\n');
    int64_t id = mb.id;
    store_mailbox_free(&mb);
    int fd = strcmp(file, "-") == 0 ? 1 : open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -1 : 0;
    if (fd < 0)
        fprintf(stderr, "wharf export: %s: %s\n", file, strerror(errno));
    uint64_t count = 0, bytes = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int r = store_message_read_id(s, owner, id, msgs[i].uid, &data, &err);
        if (r == 1)
            continue;
        if (r != 0) {
            fprintf(stderr, "wharf export: %s\n", buf_cstr(&err));
            rc = -1;
            break;
        }
        to_lf(buf_slice(&data), &lf);
        buf_reset(&out);
        mailfmt_mbox_from_format(&out, return_path(buf_slice(&lf)), msgs[i].internaldate);
        bool header = true;
        size_t p = 0;
        while (p < lf.len) {
            const char *nl = memchr(lf.data + p, '\n', lf.len - p);
            size_t end = nl ? (size_t)(nl - lf.data) : lf.len;
            struct slice line = slice_make(lf.data + p, end - p);
            if (header && line.len == 0) {
                /* our flags replace any the message carried in */
                if (count == 0)
                    buf_append_slice(&out, buf_slice(&imapbase));
                buf_printf(&out, "X-UID: %" PRIu32 "\n", msgs[i].uid);
                mailfmt_mbox_status_format(&out, msgs[i].flags);
                if (msgs[i].keywords && *msgs[i].keywords)
                    buf_printf(&out, "X-Keywords: %s\n", msgs[i].keywords);
                header = false;
            } else if (header && (mailfmt_mbox_status_header(line) ||
                                  slice_startswith_nocase(line, "X-Keywords:") ||
                                  slice_startswith_nocase(line, "X-UID:") ||
                                  slice_startswith_nocase(line, "X-IMAPbase:"))) {
                p = end + 1;
                continue;
            } else if (!header && mailfmt_mbox_quoted(line))
                buf_append_byte(&out, '>');
            buf_append_slice(&out, line);
            buf_append_byte(&out, '\n');
            p = end + 1;
        }
        if (header) { /* a message without a body */
            if (count == 0)
                buf_append_slice(&out, buf_slice(&imapbase));
            buf_printf(&out, "X-UID: %" PRIu32 "\n", msgs[i].uid);
            mailfmt_mbox_status_format(&out, msgs[i].flags);
            buf_append_byte(&out, '\n');
        }
        buf_append_byte(&out, '\n'); /* the blank line before the next "From " */
        if (fd_write_all(fd, out.data, out.len) != 0) {
            fprintf(stderr, "wharf export: %s: %s\n", file, strerror(errno));
            rc = -1;
        }
        count++;
        bytes += lf.len;
    }
    if (rc == 0 && fd > 1 && fsync(fd) != 0)
        rc = -1;
    if (fd > 1)
        close(fd);
    if (rc == 0 && fd != 1)
        printf("exported %s %s: %" PRIu64 " messages (%.1f MB) to %s\n", owner, mailbox, count,
               (double)bytes / 1e6, file);
    store_message_list_free(msgs, n);
    buf_free(&imapbase);
    buf_free(&err);
    buf_free(&data);
    buf_free(&lf);
    buf_free(&out);
    return rc == 0 ? 0 : EX_IOERR;
}

int cmd_export(struct cli_ctx *ctx, int argc, char **argv)
{
    bool maildir = argc == 4 && strcmp(argv[1], "maildir") == 0;
    bool mbox = (argc == 4 || argc == 5) && strcmp(argv[1], "mbox") == 0;
    if (!maildir && !mbox) {
        fprintf(stderr, "usage: wharf export maildir USER PATH\n"
                        "       wharf export mbox USER FILE [FOLDER]\n");
        return EX_USAGE;
    }
    int code = 0;
    char *owner = cli_account_name(ctx->cfg, argv[2], &code);
    if (owner == NULL)
        return code;
    struct store *s = cli_store_open(ctx->cfg);
    if (s == NULL) {
        free(owner);
        return EX_TEMPFAIL;
    }
    code = maildir ? export_maildir(s, owner, argv[3])
                   : export_mbox(s, owner, argv[3], argc == 5 ? argv[4] : STORE_INBOX);
    store_close(s);
    free(owner);
    return code;
}
