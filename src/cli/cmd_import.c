/*
 * cmd_import.c - wharf import: mail and accounts from another server.
 *
 *   wharf import maildir USER PATH        Dovecot/Courier Maildir++ (flags, keywords,
 *                                         folders, subscriptions, UIDVALIDITY and UIDs)
 *   wharf import mbox USER FILE [FOLDER]  mboxrd/mboxo (Status:/X-Status:/X-Keywords:)
 *   wharf import imap USER --host H ...   from a live IMAP server (cmd_import_imap.c)
 *   wharf import passwd-file FILE         Dovecot passwd-file accounts and hashes
 *
 * Messages go through store_deliver in batches (import.h), with wharfd
 * running or not: the store's write lock serialises the import's commits
 * with the mta's, and each commit tells IMAP sessions over the bus. A
 * Maildir import is resumable: a message whose UID is below the mailbox's
 * UIDNEXT is already there and is skipped. Reads the source as untrusted
 * input (mime/mailfmt.h parses it); never writes to it.
 */
#include "auth/password.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/component.h"
#include "base/datadir.h"
#include "base/fdio.h"
#include "cli/cli.h"
#include "cli/import.h"
#include "directory/directory.h"
#include "ipc/control.h"
#include "ipc/frame.h"
#include "mime/mailfmt.h"
#include "mta/lda.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

/* ---- the batch ---- */

static double elapsed(int64_t since_us)
{
    return (double)(monotonic_us() - since_us) / 1e6;
}

void import_notify(const struct wharf_config *cfg, const char *owner, const char *mailbox)
{
    struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                           .u.mailbox_changed = {.owner = owner, .mailbox = mailbox}};
    control_notify(cfg, &ev);
}

void import_batch_init(struct import_batch *b, struct store *s, const struct wharf_config *cfg,
                       const char *owner)
{
    memset(b, 0, sizeof(*b));
    b->store = s;
    b->cfg = cfg;
    b->owner = owner;
    b->what = "";
    b->start_us = monotonic_us();
    b->last_progress_us = b->start_us;
}

static void item_clear(struct import_item *it)
{
    buf_free(&it->data);
    free(it->mailbox);
    free(it->keywords);
    memset(it, 0, sizeof(*it));
}

int import_batch_flush(struct import_batch *b)
{
    if (b->n == 0)
        return 0;
    struct store_delivery d[IMPORT_BATCH_MESSAGES];
    struct store_target t[IMPORT_BATCH_MESSAGES];
    for (size_t i = 0; i < b->n; i++) {
        struct import_item *it = &b->items[i];
        /* Import is the admin's act: quotas are not applied (0 = unlimited), and the
         * folder must exist (the reader created it), so nothing lands in INBOX by mistake. */
        t[i] = (struct store_target){
            .owner = b->owner, .mailbox = it->mailbox, .must_exist = true, .want_uid = it->uid};
        d[i] = (struct store_delivery){.data = buf_slice(&it->data),
                                       .internaldate = it->internaldate,
                                       .flags = it->flags,
                                       .keywords = it->keywords,
                                       .targets = &t[i],
                                       .n_targets = 1};
    }
    struct buf err = BUF_INIT;
    int rc = store_deliver(b->store, d, b->n, &err);
    if (rc != 0)
        fprintf(stderr, "wharf import: store: %s\n", buf_cstr(&err));
    buf_free(&err);
    const char *notified = NULL;
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        if (t[i].status == STORE_OK) {
            b->imported++;
            b->imported_bytes += b->items[i].data.len;
        } else {
            b->failed++;
            fprintf(stderr, "wharf import: a message for %s was not stored (status %d)\n",
                    b->items[i].mailbox, (int)t[i].status);
        }
        if (notified == NULL || strcmp(notified, b->items[i].mailbox) != 0) {
            import_notify(b->cfg, b->owner, b->items[i].mailbox);
            notified = b->items[i].mailbox;
        }
    }
    for (size_t i = 0; i < b->n; i++)
        item_clear(&b->items[i]);
    b->n = 0;
    b->bytes = 0;
    if (rc == 0 && elapsed(b->last_progress_us) >= 1.0) {
        b->last_progress_us = monotonic_us();
        double s = elapsed(b->start_us);
        fprintf(stderr, "wharf import: %s: %" PRIu64 " messages, %.1f MB, %.0f msg/s\n", b->what,
                b->imported, (double)b->imported_bytes / 1e6,
                s > 0 ? (double)b->imported / s : 0.0);
    }
    return rc;
}

int import_batch_add(struct import_batch *b, const char *mailbox, struct buf *data, unsigned flags,
                     const char *keywords, int64_t internaldate, uint32_t uid)
{
    struct import_item *it = &b->items[b->n++];
    lda_crlf(buf_slice(data), &it->data);
    buf_reset(data);
    it->mailbox = xstrdup(mailbox);
    it->keywords = keywords && *keywords ? xstrdup(keywords) : NULL;
    it->flags = flags;
    it->internaldate = internaldate;
    it->uid = uid;
    b->bytes += it->data.len;
    /* A batch holds one mailbox's UIDs in ascending order: flush on a change of mailbox. */
    if (b->n == IMPORT_BATCH_MESSAGES || b->bytes >= IMPORT_BATCH_BYTES ||
        (b->n > 1 && strcmp(b->items[b->n - 2].mailbox, mailbox) != 0))
        return import_batch_flush(b);
    return 0;
}

void import_batch_finish(struct import_batch *b, const char *kind)
{
    double s = elapsed(b->start_us);
    printf("imported %s for %s: %" PRIu64 " messages (%.1f MB) in %" PRIu64 " folders, %" PRIu64
           " already there, %" PRIu64 " failed, %.1f s, %.0f msg/s, %.1f MB/s\n",
           kind, b->owner, b->imported, (double)b->imported_bytes / 1e6, b->folders, b->skipped,
           b->failed, s, s > 0 ? (double)b->imported / s : 0.0,
           s > 0 ? (double)b->imported_bytes / 1e6 / s : 0.0);
    for (size_t i = 0; i < b->n; i++)
        item_clear(&b->items[i]);
    b->n = 0;
}

/* Reads a whole file (at most IMPORT_MESSAGE_MAX bytes) into out (reset first). */
static int read_file(int dirfd, const char *name, struct buf *out, int64_t *mtime_r)
{
    buf_reset(out);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > IMPORT_MESSAGE_MAX) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    *mtime_r = (int64_t)st.st_mtime;
    buf_reserve(out, (size_t)st.st_size + 1);
    if (fd_read_all(fd, IMPORT_MESSAGE_MAX, out) != 0) {
        int e = errno; /* EFBIG: grew past the limit while we read */
        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

/* ---- Maildir ---- */

struct md_msg {
    char *dir;  /* "cur" or "new" */
    char *name; /* file name */
    char *base; /* unique part */
    uint32_t uid;
};

struct uid_entry {
    char *base;
    uint32_t uid;
};

static int cmp_uid_entry(const void *a, const void *b)
{
    return strcmp(((const struct uid_entry *)a)->base, ((const struct uid_entry *)b)->base);
}

static int cmp_md_msg(const void *a, const void *b)
{
    const struct md_msg *x = a, *y = b;
    if (x->uid != y->uid) {
        if (x->uid == 0 || y->uid == 0)
            return x->uid == 0 ? 1 : -1; /* known UIDs first */
        return x->uid < y->uid ? -1 : 1;
    }
    return strcmp(x->base, y->base); /* unknown ones in name (arrival) order */
}

/* Calls fn(arg, line) for each line of a small side file; 1 when it does not exist. */
static int each_line(int dirfd, const char *name,
                     void (*fn)(void *arg, struct slice line, size_t n), void *arg)
{
    struct buf data = BUF_INIT;
    int64_t mtime;
    if (read_file(dirfd, name, &data, &mtime) != 0) {
        buf_free(&data);
        return errno == ENOENT ? 1 : -1;
    }
    size_t start = 0, n = 0;
    for (size_t i = 0; i <= data.len; i++) {
        if (i == data.len || data.data[i] == '\n') {
            size_t end = i;
            if (end > start && data.data[end - 1] == '\r')
                end--;
            if (end > start || i < data.len)
                fn(arg, slice_make(data.data + start, end - start), n++);
            start = i + 1;
        }
    }
    buf_free(&data);
    return 0;
}

struct uidlist {
    uint32_t uidvalidity, nextuid;
    struct uid_entry *v;
    size_t n, cap;
    bool bad_header;
};

static void uidlist_line(void *arg, struct slice line, size_t n)
{
    struct uidlist *u = arg;
    if (n == 0) {
        if (!mailfmt_uidlist_header(line, &u->uidvalidity, &u->nextuid))
            u->bad_header = true;
        return;
    }
    uint32_t uid;
    struct slice base;
    if (u->bad_header || !mailfmt_uidlist_record(line, &uid, &base))
        return;
    /* the record may carry the whole file name: keep its unique part */
    struct mailfmt_maildir_name mn;
    if (!mailfmt_maildir_name_parse(base, &mn))
        return;
    if (u->n == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 256;
        u->v = xreallocarray(u->v, u->cap, sizeof(*u->v));
    }
    u->v[u->n++] = (struct uid_entry){slice_strdup(mn.base), uid};
}

struct keywords {
    char *names[MAILFMT_KEYWORDS_MAX];
};

static void keywords_line(void *arg, struct slice line, size_t n)
{
    (void)n;
    struct keywords *k = arg;
    unsigned idx;
    struct slice name;
    if (mailfmt_keywords_line(line, &idx, &name) && k->names[idx] == NULL)
        k->names[idx] = slice_strdup(name);
}

static void list_dir(const char *path, const char *sub, struct md_msg **v, size_t *n, size_t *cap,
                     const struct uidlist *u)
{
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/%s", path, sub);
    DIR *d = opendir(p.data);
    buf_free(&p);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct mailfmt_maildir_name mn;
        if (!mailfmt_maildir_name_parse(slice_from_cstr(e->d_name), &mn))
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            *v = xreallocarray(*v, *cap, sizeof(**v));
        }
        struct md_msg *m = &(*v)[(*n)++];
        m->dir = xstrdup(sub);
        m->name = xstrdup(e->d_name);
        m->base = slice_strdup(mn.base);
        m->uid = 0;
        if (u->n > 0) {
            struct uid_entry key = {m->base, 0};
            struct uid_entry *f = bsearch(&key, u->v, u->n, sizeof(*u->v), cmp_uid_entry);
            if (f)
                m->uid = f->uid;
        }
    }
    closedir(d);
}

/* Finds the file of a message by its unique part in cur/ or new/ (its name now). */
static int find_by_base(const char *path, const char *base, struct md_msg *m)
{
    static const char *const subs[] = {"cur", "new"};
    struct buf p = BUF_INIT;
    int rc = -1;
    for (int i = 0; i < 2 && rc != 0; i++) {
        buf_reset(&p);
        buf_printf(&p, "%s/%s", path, subs[i]);
        DIR *d = opendir(p.data);
        struct dirent *e;
        while (d && rc != 0 && (e = readdir(d)) != NULL) {
            struct mailfmt_maildir_name mn;
            if (mailfmt_maildir_name_parse(slice_from_cstr(e->d_name), &mn) &&
                slice_eq(mn.base, slice_from_cstr(base))) {
                free(m->dir);
                free(m->name);
                m->dir = xstrdup(subs[i]);
                m->name = xstrdup(e->d_name);
                rc = 0;
            }
        }
        if (d)
            closedir(d);
    }
    buf_free(&p);
    errno = ENOENT;
    return rc;
}

/* Imports one Maildir folder (PATH itself for INBOX). */
static int maildir_folder(struct import_batch *b, const char *path, const char *mailbox)
{
    struct buf err = BUF_INIT;
    int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        fprintf(stderr, "wharf import: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct uidlist u = {0};
    if (each_line(dirfd, "dovecot-uidlist", uidlist_line, &u) < 0)
        fprintf(stderr, "wharf import: %s/dovecot-uidlist: %s\n", path, strerror(errno));
    if (u.bad_header) {
        fprintf(stderr, "wharf import: %s/dovecot-uidlist: unreadable header, UIDs not kept\n",
                path);
        u.uidvalidity = u.nextuid = 0;
    }
    if (u.n)
        qsort(u.v, u.n, sizeof(*u.v), cmp_uid_entry);
    struct keywords kw = {0};
    each_line(dirfd, "dovecot-keywords", keywords_line, &kw);

    struct md_msg *v = NULL;
    size_t n = 0, cap = 0;
    list_dir(path, "cur", &v, &n, &cap, &u);
    list_dir(path, "new", &v, &n, &cap, &u);
    if (n)
        qsort(v, n, sizeof(*v), cmp_md_msg);
    /* Messages the uidlist does not name get the UIDs after its next UID, in name
     * order: the same numbering on every run, which is what makes a rerun resume. */
    uint32_t next = u.nextuid ? u.nextuid : 1; /* Dovecot may not have rewritten it */
    for (size_t i = 0; i < u.n; i++)
        if (u.v[i].uid >= next && u.v[i].uid < UINT32_MAX)
            next = u.v[i].uid + 1;
    for (size_t i = 0; i < n; i++) {
        if (v[i].uid >= next)
            next = v[i].uid + 1;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].uid == 0)
            v[i].uid = next++;
    int rc = store_mailbox_set_uids(b->store, b->owner, mailbox, NULL, u.uidvalidity, 1, &err);
    bool keep_uids = true;
    if (rc != 0 && u.uidvalidity != 0) {
        /* the mailbox already has mail of its own: import with new UIDs (clients resync) */
        fprintf(stderr, "wharf import: %s: %s; importing with new UIDs\n", mailbox, buf_cstr(&err));
        buf_reset(&err);
        keep_uids = false;
        rc = store_mailbox_set_uids(b->store, b->owner, mailbox, NULL, 0, 1, &err);
    }
    struct store_mailbox mb = {0};
    if (rc == 0 && store_mailbox_get(b->store, b->owner, mailbox, &mb, &err) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "wharf import: %s: %s\n", mailbox, buf_cstr(&err));
    b->what = mailbox;
    b->folders++;
    struct buf data = BUF_INIT, keywords = BUF_INIT;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (keep_uids && v[i].uid < mb.uidnext) {
            b->skipped++;
            continue;
        }
        struct buf p = BUF_INIT;
        buf_printf(&p, "%s/%s", v[i].dir, v[i].name);
        int64_t mtime = 0;
        int r = read_file(dirfd, p.data, &data, &mtime);
        if (r != 0 && errno == ENOENT && find_by_base(path, v[i].base, &v[i]) == 0) {
            /* a running server moved it (new/ -> cur/) or renamed it (flags) meanwhile */
            buf_reset(&p);
            buf_printf(&p, "%s/%s", v[i].dir, v[i].name);
            r = read_file(dirfd, p.data, &data, &mtime);
        }
        if (r != 0) {
            fprintf(stderr, "wharf import: %s/%s: %s\n", path, p.data, strerror(errno));
            b->failed++;
            buf_free(&p);
            continue;
        }
        buf_free(&p);
        struct mailfmt_maildir_name mn;
        mailfmt_maildir_name_parse(slice_from_cstr(v[i].name), &mn);
        buf_reset(&keywords);
        for (unsigned k = 0; k < MAILFMT_KEYWORDS_MAX; k++)
            if ((mn.keywords & (1u << k)) && kw.names[k]) {
                if (keywords.len)
                    buf_append_byte(&keywords, ' ');
                buf_append_cstr(&keywords, kw.names[k]);
            }
        rc = import_batch_add(b, mb.name, &data, mn.flags, buf_cstr(&keywords), mtime,
                              keep_uids ? v[i].uid : 0);
    }
    if (rc == 0)
        rc = import_batch_flush(b);
    if (rc == 0 && keep_uids)
        rc = store_mailbox_set_uids(b->store, b->owner, mailbox, NULL, 0, next, &err);
    if (rc != 0 && err.len)
        fprintf(stderr, "wharf import: %s: %s\n", mailbox, buf_cstr(&err));
    store_mailbox_free(&mb);
    buf_free(&data);
    buf_free(&keywords);
    buf_free(&err);
    for (size_t i = 0; i < n; i++) {
        free(v[i].dir);
        free(v[i].name);
        free(v[i].base);
    }
    free(v);
    for (size_t i = 0; i < u.n; i++)
        free(u.v[i].base);
    free(u.v);
    for (unsigned k = 0; k < MAILFMT_KEYWORDS_MAX; k++)
        free(kw.names[k]);
    close(dirfd);
    return rc;
}

struct subs_ctx {
    struct import_batch *b;
    bool v2;
};

static void subscription_line(void *arg, struct slice line, size_t n)
{
    struct subs_ctx *c = arg;
    if (n == 0 && slice_eq(line, slice_from_cstr("V\t2"))) {
        c->v2 = true; /* Dovecot 2.3: tab is the hierarchy separator */
        return;
    }
    if (line.len == 0 || line.len > STORE_MAILBOX_NAME_MAX)
        return;
    struct buf name = BUF_INIT;
    for (size_t i = 0; i < line.len; i++)
        buf_append_byte(&name, line.ptr[i] == (c->v2 ? '\t' : '.') ? '/' : line.ptr[i]);
    mailfmt_name_decode(&name);
    struct buf err = BUF_INIT;
    if (store_subscribe(c->b->store, c->b->owner, buf_cstr(&name), true, &err) != 0)
        fprintf(stderr, "wharf import: subscription %s: %s\n", buf_cstr(&name), buf_cstr(&err));
    buf_free(&err);
    buf_free(&name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int import_maildir(struct import_batch *b, const char *path)
{
    int rc = maildir_folder(b, path, STORE_INBOX);
    /* Maildir++ folders: PATH/.A.B is "A/B"; parents before children (sorted). */
    DIR *d = rc == 0 ? opendir(path) : NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = xreallocarray(names, cap, sizeof(*names));
        }
        names[n++] = xstrdup(e->d_name);
    }
    if (d)
        closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    struct buf mailbox = BUF_INIT, sub = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        buf_reset(&sub);
        buf_printf(&sub, "%s/%s", path, names[i]);
        struct stat st;
        if (rc == 0 && mailfmt_maildir_folder(slice_from_cstr(names[i]), '.', &mailbox) &&
            stat(sub.data, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (strcmp(mailbox.data, "INBOX") == 0)
                continue;
            rc = maildir_folder(b, sub.data, mailbox.data);
        }
        free(names[i]);
    }
    free(names);
    buf_free(&mailbox);
    buf_free(&sub);
    if (rc == 0) {
        int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct subs_ctx c = {b, false};
        if (dirfd >= 0) {
            each_line(dirfd, "subscriptions", subscription_line, &c);
            close(dirfd);
        }
    }
    return rc;
}

/* ---- mbox ---- */

/* Header value of "Name:" if line is that header (case-insensitive), else a NULL slice. */
static struct slice header_value(struct slice line, const char *name)
{
    size_t n = strlen(name);
    if (line.len > n && slice_startswith_nocase(line, name) && line.ptr[n] == ':')
        return slice_trim(slice_make(line.ptr + n + 1, line.len - n - 1));
    return slice_make(NULL, 0);
}

struct mbox_msg {
    struct buf data;
    struct slice status, xstatus; /* into status_buf */
    struct buf status_buf, xstatus_buf, keywords;
    int64_t date;
    uint32_t uid;                /* X-UID, 0 when none */
    uint32_t base_uv, base_next; /* X-IMAPbase of the first message */
    bool keep_uids;              /* the folder took the source's UIDVALIDITY */
    uint32_t uidnext, last_uid;
    bool in_header;
    bool pending_blank; /* an empty line held back: it may precede the next separator */
};

static int mbox_emit(struct import_batch *b, const char *mailbox, struct mbox_msg *m)
{
    unsigned flags =
        mailfmt_mbox_status_flags(buf_slice(&m->status_buf), buf_slice(&m->xstatus_buf));
    if (m->base_uv != 0) { /* the first message names the folder's UIDVALIDITY */
        struct buf err = BUF_INIT;
        m->keep_uids =
            store_mailbox_set_uids(b->store, b->owner, mailbox, NULL, m->base_uv, 1, &err) == 0;
        struct store_mailbox mb;
        if (m->keep_uids && store_mailbox_get(b->store, b->owner, mailbox, &mb, &err) == 0) {
            m->uidnext = mb.uidnext;
            store_mailbox_free(&mb);
        } else
            m->keep_uids = false;
        if (!m->keep_uids)
            fprintf(stderr, "wharf import: %s: %s; importing with new UIDs\n", mailbox,
                    buf_cstr(&err));
        buf_free(&err);
        m->base_uv = 0;
    }
    uint32_t uid = 0;
    if (m->keep_uids && m->uid != 0) {
        if (m->uid < m->uidnext) { /* imported by an earlier run */
            b->skipped++;
            buf_reset(&m->data);
            buf_reset(&m->status_buf);
            buf_reset(&m->xstatus_buf);
            buf_reset(&m->keywords);
            return 0;
        }
        if (m->uid > m->last_uid)
            uid = m->last_uid = m->uid; /* out of order: the next UID instead */
    }
    int rc = import_batch_add(b, mailbox, &m->data, flags, buf_cstr(&m->keywords), m->date, uid);
    buf_reset(&m->status_buf);
    buf_reset(&m->xstatus_buf);
    buf_reset(&m->keywords);
    return rc;
}

static int import_mbox(struct import_batch *b, const char *file, const char *mailbox)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");
    if (f == NULL) {
        fprintf(stderr, "wharf import: %s: %s\n", file, strerror(errno));
        return EX_NOINPUT;
    }
    struct buf err = BUF_INIT;
    if (store_mailbox_set_uids(b->store, b->owner, mailbox, NULL, 0, 1, &err) != 0) {
        fprintf(stderr, "wharf import: %s: %s\n", mailbox, buf_cstr(&err));
        buf_free(&err);
        if (f != stdin)
            fclose(f);
        return EX_TEMPFAIL;
    }
    buf_free(&err);
    b->what = mailbox;
    b->folders++;
    struct mbox_msg m = {.data = BUF_INIT};
    bool have = false, prev_blank = true, too_big = false, first = true;
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        struct slice l = slice_make(line, (size_t)len);
        bool nl = l.len > 0 && l.ptr[l.len - 1] == '\n';
        struct slice body = slice_make(l.ptr, l.len - (nl ? 1 : 0));
        if (body.len > 0 && body.ptr[body.len - 1] == '\r')
            body.len--;
        struct slice sender;
        int64_t date;
        if (prev_blank && mailfmt_mbox_from_parse(body, &sender, &date)) {
            if (have && !too_big)
                rc = mbox_emit(b, mailbox, &m);
            first = !have;
            m.uid = 0;
            buf_reset(&m.data);
            m.date = date;
            m.in_header = true;
            m.pending_blank = false;
            have = true;
            too_big = false;
            prev_blank = false;
            continue;
        }
        prev_blank = body.len == 0;
        if (!have)
            continue; /* junk before the first separator */
        if (m.pending_blank) {
            buf_append_byte(&m.data, '\n');
            m.pending_blank = false;
        }
        if (m.in_header) {
            if (body.len == 0)
                m.in_header = false;
            struct slice v;
            if ((v = header_value(body, "Status")).ptr) {
                buf_append_slice(&m.status_buf, v);
                continue; /* mbox bookkeeping, not part of the message */
            }
            if ((v = header_value(body, "X-Status")).ptr) {
                buf_append_slice(&m.xstatus_buf, v);
                continue;
            }
            if ((v = header_value(body, "X-Keywords")).ptr) {
                if (m.keywords.len)
                    buf_append_byte(&m.keywords, ' ');
                buf_append_slice(&m.keywords, v);
                continue;
            }
            uint32_t uv, next;
            if ((v = header_value(body, "X-IMAPbase")).ptr) {
                if (first && mailfmt_mbox_imapbase(v, &uv, &next)) {
                    m.base_uv = uv;
                    m.base_next = next;
                }
                continue;
            }
            if ((v = header_value(body, "X-UID")).ptr) {
                if (!mailfmt_mbox_uid(v, &m.uid))
                    m.uid = 0;
                continue;
            }
            /* mutt's mbox bookkeeping: wrong once line ends become CRLF */
            if (header_value(body, "Content-Length").ptr)
                continue;
        } else if (body.len == 0 && nl) {
            m.pending_blank = true; /* the separator's blank line, unless more follows */
            continue;
        }
        struct slice out = m.in_header ? body : mailfmt_mbox_unquote(body);
        if (m.data.len + out.len + 1 > IMPORT_MESSAGE_MAX) {
            if (!too_big)
                fprintf(stderr, "wharf import: a message in %s is over %u bytes: skipped\n", file,
                        IMPORT_MESSAGE_MAX);
            too_big = true;
            b->failed++;
            buf_reset(&m.data);
            continue;
        }
        buf_append_slice(&m.data, out);
        if (nl)
            buf_append_byte(&m.data, '\n');
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "wharf import: %s: read error\n", file);
        rc = -1;
    }
    if (rc == 0 && have && !too_big)
        rc = mbox_emit(b, mailbox, &m);
    if (rc == 0)
        rc = import_batch_flush(b);
    if (rc == 0 && m.keep_uids && m.base_next > 1) {
        struct buf e = BUF_INIT;
        rc = store_mailbox_set_uids(b->store, b->owner, mailbox, NULL, 0, m.base_next, &e);
        if (rc != 0)
            fprintf(stderr, "wharf import: %s: %s\n", mailbox, buf_cstr(&e));
        buf_free(&e);
    }
    free(line);
    buf_free(&m.data);
    buf_free(&m.status_buf);
    buf_free(&m.xstatus_buf);
    buf_free(&m.keywords);
    if (f != stdin)
        fclose(f);
    return rc == 0 ? 0 : EX_TEMPFAIL;
}

/* ---- Dovecot passwd-file ---- */

/*
 * The hash password.c verifies for a passwd-file password field, into out
 * (reset): {SHA512-CRYPT}, {BLF-CRYPT}, {CRYPT} and scheme-less crypt
 * strings as they are; {PLAIN}/{CLEARTEXT} hashed now. Returns false for
 * schemes Wharf does not verify (MD5, SHA1, SSHA...).
 */
static bool passwd_hash(const char *field, struct buf *out)
{
    buf_reset(out);
    const char *scheme = "CRYPT", *value = field;
    char sch[32];
    if (field[0] == '{') {
        const char *end = strchr(field, '}');
        if (end == NULL || (size_t)(end - field - 1) >= sizeof(sch))
            return false;
        memcpy(sch, field + 1, (size_t)(end - field - 1));
        sch[end - field - 1] = '\0';
        scheme = sch;
        value = end + 1;
    }
    if (strcasecmp(scheme, "PLAIN") == 0 || strcasecmp(scheme, "CLEARTEXT") == 0) {
        struct buf err = BUF_INIT;
        int rc = password_hash(value, out, &err);
        buf_free(&err);
        return rc == 0;
    }
    if (strcasecmp(scheme, "SHA512-CRYPT") != 0 && strcasecmp(scheme, "BLF-CRYPT") != 0 &&
        strcasecmp(scheme, "CRYPT") != 0)
        return false;
    if (!password_hash_supported(value))
        return false;
    buf_append_cstr(out, value);
    return true;
}

static int import_passwd_file(struct cli_ctx *ctx, const char *file)
{
    FILE *f = fopen(file, "re");
    if (f == NULL) {
        fprintf(stderr, "wharf import: %s: %s\n", file, strerror(errno));
        return EX_NOINPUT;
    }
    struct buf err = BUF_INIT;
    /* the hashes go to the credentials, which only root (before the drop)
     * and the auth user can open */
    struct directory *d = cli_directory_open(ctx);
    if (d == NULL) {
        fclose(f);
        return EX_TEMPFAIL;
    }
    unsigned added = 0, updated = 0, nopass = 0, bad = 0;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    struct buf hash = BUF_INIT;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        /* user:password:uid:gid:gecos:home:shell:extra */
        char *colon = strchr(line, ':');
        if (colon)
            *colon = '\0';
        char *pw = colon ? colon + 1 : (char *)"";
        char *end = strchr(pw, ':');
        if (end)
            *end = '\0';
        char *addr = lda_user_address(ctx->cfg, line);
        char *norm = directory_normalize_address(addr, false);
        free(addr);
        if (norm == NULL) {
            fprintf(stderr, "wharf import: %s:%zu: not an address: %s\n", file, lineno, line);
            bad++;
            continue;
        }
        bool have_hash = *pw && passwd_hash(pw, &hash);
        if (*pw && !have_hash) {
            fprintf(stderr,
                    "wharf import: %s: password scheme not supported (set one with wharf user "
                    "passwd)\n",
                    norm);
            nopass++;
        }
        buf_reset(&err);
        const char *domain = strchr(norm, '@') + 1;
        enum directory_status st = directory_domain_add(d, domain, &err);
        if (st == DIRECTORY_OK)
            printf("domain %s added\n", domain);
        buf_reset(&err);
        st = directory_account_add(d, norm, have_hash ? hash.data : NULL, 0, 0, &err);
        if (st == DIRECTORY_ERR_EXISTS && have_hash) {
            buf_reset(&err);
            st = directory_account_set_hash(d, norm, hash.data, &err);
            if (st == DIRECTORY_OK)
                updated++;
        } else if (st == DIRECTORY_OK)
            added++;
        else if (st == DIRECTORY_ERR_EXISTS)
            st = DIRECTORY_OK;
        if (st != DIRECTORY_OK) {
            fprintf(stderr, "wharf import: %s: %s\n", norm, buf_cstr(&err));
            bad++;
        }
        if (hash.cap)
            explicit_bzero(hash.data, hash.cap);
        free(norm);
    }
    if (line)
        explicit_bzero(line, cap);
    free(line);
    buf_free(&hash);
    buf_free(&err);
    directory_close(d);
    fclose(f);
    printf("imported passwd-file %s: %u accounts added, %u passwords updated, %u without a "
           "usable password, %u refused\n",
           file, added, updated, nopass, bad);
    return bad ? EX_DATAERR : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: wharf import maildir USER PATH\n"
                    "       wharf import mbox USER FILE [FOLDER]\n"
                    "       wharf import imap USER --host H [--port P] --user U "
                    "--password-file F [--tls]\n"
                    "       wharf import passwd-file FILE\n");
    return EX_USAGE;
}

int cmd_import(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *kind = argv[1];
    if (strcmp(kind, "passwd-file") == 0)
        return argc == 3 ? import_passwd_file(ctx, argv[2]) : usage();
    bool maildir = strcmp(kind, "maildir") == 0, mbox = strcmp(kind, "mbox") == 0,
         imap = strcmp(kind, "imap") == 0;
    if ((maildir && argc != 4) || (mbox && (argc < 4 || argc > 5)) || (imap && argc < 4) ||
        !(maildir || mbox || imap))
        return usage();
    int code = 0;
    char *owner = cli_account_name(ctx->cfg, argv[2], &code);
    if (owner == NULL)
        return code;
    struct store *s = cli_store_open(ctx->cfg);
    if (s == NULL) {
        free(owner);
        return EX_TEMPFAIL;
    }
    if (imap) {
        code = import_imap(ctx, s, owner, argc - 3, argv + 3);
    } else {
        struct import_batch *b = xcalloc(1, sizeof(*b));
        import_batch_init(b, s, ctx->cfg, owner);
        if (maildir) {
            struct stat st;
            if (stat(argv[3], &st) != 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "wharf import: %s is not a Maildir\n", argv[3]);
                code = EX_NOINPUT;
            } else if (import_maildir(b, argv[3]) != 0)
                code = EX_TEMPFAIL;
        } else
            code = import_mbox(b, argv[3], argc == 5 ? argv[4] : STORE_INBOX);
        import_batch_finish(b, kind);
        if (code == 0 && b->failed)
            code = EX_DATAERR;
        free(b);
    }
    store_close(s);
    free(owner);
    return code;
}
