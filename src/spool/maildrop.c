/*
 * maildrop.c - the maildrop file format, its durable write (by any local
 * user) and its careful read (by the mta and mailq). See maildrop.h.
 *
 * Must never: replace an existing file, follow a symbolic link or open a
 * FIFO when reading, read more than the limits allow, or report a file as
 * written before it and its directory entry are durable.
 */
#include "spool/maildrop.h"

#include "base/alloc.h"
#include "base/fdio.h"
#include "spool/record.h"
#include "spool/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAILDROP_MAGIC "WMDR"
#define MAILDROP_VERSION 1u
/* Attempts at a fresh name before giving up (names are unique per process
 * and microsecond; a clash means a clock step or a hostile file). */
#define MAILDROP_NAME_TRIES 16

void maildrop_limits_from_config(struct maildrop_limits *lim_r, const struct wharf_config *cfg)
{
    lim_r->max_rcpts = (size_t)cfg->smtp_max_recipients;
    lim_r->max_data = (uint64_t)cfg->smtp_max_message_size;
}

char *maildrop_dir(const struct wharf_config *cfg)
{
    return config_data_path(cfg, "maildrop");
}

bool maildrop_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n != MAILDROP_NAME_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

void maildrop_spool_id(const char *name, uid_t uid, char id_r[32])
{
    char b36[8], *p = b36 + sizeof(b36);
    *--p = '\0';
    uint32_t u = (uint32_t)uid;
    do {
        *--p = "0123456789abcdefghijklmnopqrstuvwxyz"[u % 36];
        u /= 36;
    } while (u);
    snprintf(id_r, 32, "%.*sm%s", MAILDROP_NAME_LEN, name, p);
}

/* The file up to the message's length (the message follows in its own iovec). */
static void encode_head(const struct maildrop_entry *e, struct buf *b)
{
    buf_append(b, MAILDROP_MAGIC, 4);
    buf_append_u32(b, MAILDROP_VERSION);
    record_put_u32(b, 'U', e->uid);
    record_put_str(b, 'S', e->sender);
    for (size_t i = 0; i < e->n_rcpts; i++)
        record_put_str(b, 'R', e->rcpts[i]);
    buf_append_byte(b, 'M');
    buf_append_u32(b, (uint32_t)e->data.len);
}

static const char maildrop_tail[RECORD_HEAD] = {'Z', 0, 0, 0, 0};

void maildrop_encode(const struct maildrop_entry *e, struct buf *out)
{
    encode_head(e, out);
    buf_append_slice(out, buf_slice(&e->data));
    buf_append(out, maildrop_tail, sizeof(maildrop_tail));
}

static bool address_bytes_ok(struct slice v)
{
    if (v.len > MAILDROP_MAX_ADDRESS)
        return false;
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)v.ptr[i] < 0x20 || v.ptr[i] == 0x7f)
            return false;
    return true;
}

int maildrop_decode(const void *data, size_t len, const struct maildrop_limits *lim,
                    struct maildrop_entry *e, const char **why_r)
{
    *e = (struct maildrop_entry){.data = BUF_INIT};
    if (len < 8 || memcmp(data, MAILDROP_MAGIC, 4) != 0) {
        *why_r = "not a maildrop file";
        return -1;
    }
    if (record_get_u32((const char *)data + 4) != MAILDROP_VERSION) {
        *why_r = "unknown maildrop file version";
        return -1;
    }
    struct record_reader rd = record_reader_make((const char *)data + 8, len - 8);
    /* Each record type in its place: U S R... M Z. */
    static const char order[] = "USRMZ";
    size_t at = 0;
    for (;;) {
        char type;
        struct slice v;
        int more = record_next(&rd, &type, &v);
        if (more <= 0) {
            *why_r = more < 0 ? "truncated record" : "no end record";
            goto bad;
        }
        if (order[at] == 'R' && type != 'R' && e->n_rcpts > 0)
            at++; /* past the recipients */
        if (order[at] == '\0' || order[at] != type) {
            *why_r = "record missing, repeated or out of order";
            goto bad;
        }
        switch (type) {
        case 'U':
            if (v.len != 4) {
                *why_r = "bad uid record";
                goto bad;
            }
            e->uid = record_get_u32(v.ptr);
            at++;
            break;
        case 'S':
            if (!address_bytes_ok(v)) {
                *why_r = "sender too long or with control characters";
                goto bad;
            }
            e->sender = slice_strdup(v);
            at++;
            break;
        case 'R':
            if (v.len == 0 || !address_bytes_ok(v)) {
                *why_r = "recipient empty, too long or with control characters";
                goto bad;
            }
            if (e->n_rcpts == lim->max_rcpts) {
                *why_r = "too many recipients";
                goto bad;
            }
            e->rcpts = xreallocarray(e->rcpts, e->n_rcpts + 1, sizeof(*e->rcpts));
            e->rcpts[e->n_rcpts++] = slice_strdup(v);
            break; /* R stays expected until another record comes */
        case 'M':
            if (v.len > lim->max_data) {
                *why_r = "message too large";
                goto bad;
            }
            buf_append_slice(&e->data, v);
            at++;
            break;
        case 'Z':
            if (v.len != 0 || rd.p != rd.end) {
                *why_r = "data after the end record";
                goto bad;
            }
            return 0;
        }
    }
bad:
    maildrop_entry_free(e);
    return -1;
}

/* Makes the new name durable: fsync of the directory when it can be opened
 * (root, the wharf user), else syncfs() through the file (the maildrop is
 * not readable to other users, and fsync needs a readable descriptor). */
static int sync_entry(int dirfd, int filefd)
{
    int d = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return errno == EACCES ? syncfs(filefd) : -1;
    int rc = fsync(d);
    close(d);
    return rc;
}

/* Renames tmp to a fresh name without ever replacing a file. */
static int rename_fresh(int dirfd, const char *tmp, char name_r[32])
{
    for (int i = 0; i < MAILDROP_NAME_TRIES; i++) {
        spool_new_id(name_r);
        if (renameat2(dirfd, tmp, dirfd, name_r, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno == EINVAL ||
            errno == ENOSYS) { /* no RENAME_NOREPLACE here: link does not replace */
            if (linkat(dirfd, tmp, dirfd, name_r, 0) == 0)
                return unlinkat(dirfd, tmp, 0);
        }
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

int maildrop_write(const struct wharf_config *cfg, const struct maildrop_entry *e, char name_r[32],
                   struct buf *err)
{
    char *dir = maildrop_dir(cfg);
    int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), fd = -1;
    char tmp[40] = "";
    const char *step = "open";
    if (dirfd < 0 || e->data.len > UINT32_MAX)
        goto fail;
    step = "create";
    for (int i = 0; fd < 0 && i < MAILDROP_NAME_TRIES; i++) {
        spool_new_id(name_r);
        snprintf(tmp, sizeof(tmp), "t%s", name_r);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        tmp[0] = '\0';
        goto fail;
    }
    /* group wharf comes from the setgid directory; the umask must not take its read bit */
    step = "write";
    struct buf head = BUF_INIT;
    encode_head(e, &head);
    struct iovec iov[3] = {{head.data, head.len},
                           {e->data.data, e->data.len},
                           {(void *)maildrop_tail, sizeof(maildrop_tail)}};
    int rc = fchmod(fd, 0640) == 0 && fd_writev_all(fd, iov, 3) == 0 ? fsync(fd) : -1;
    int saved = errno;
    buf_free(&head);
    errno = saved;
    if (rc != 0)
        goto fail;
    step = "rename";
    if (rename_fresh(dirfd, tmp, name_r) != 0)
        goto fail;
    tmp[0] = '\0';
    step = "sync";
    if (sync_entry(dirfd, fd) != 0) {
        saved = errno;
        unlinkat(dirfd, name_r, 0); /* not known to be durable: never reported as written */
        errno = saved;
        goto fail;
    }
    close(fd);
    close(dirfd);
    free(dir);
    return 0;
fail:
    buf_printf(err, "%s %s: %s", step, dir, strerror(errno));
    if (tmp[0])
        unlinkat(dirfd, tmp, 0);
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    free(dir);
    return -1;
}

/* Largest file that can hold what lim allows. */
static uint64_t max_file(const struct maildrop_limits *lim)
{
    uint64_t addr = RECORD_HEAD + MAILDROP_MAX_ADDRESS;
    return 8 + (RECORD_HEAD + 4) + addr * (lim->max_rcpts + 1) + RECORD_HEAD + lim->max_data +
           RECORD_HEAD;
}

int maildrop_read(int dirfd, const char *name, const struct maildrop_limits *lim,
                  struct maildrop_entry *e, struct stat *st_r, struct buf *err)
{
    *e = (struct maildrop_entry){.data = BUF_INIT};
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        buf_printf(err, "%s", errno == ELOOP ? "a symbolic link" : strerror(errno));
        return -1;
    }
    struct buf raw = BUF_INIT;
    const char *why = NULL;
    int rc = -1;
    if (fstat(fd, st_r) != 0)
        buf_printf(err, "fstat: %s", strerror(errno));
    else if (!S_ISREG(st_r->st_mode))
        buf_printf(err, "not a regular file");
    else if (st_r->st_nlink != 1)
        buf_printf(err, "%ju links to it", (uintmax_t)st_r->st_nlink);
    else if (record_read_fd(fd, max_file(lim), &raw, err) != 0)
        ;
    else if (maildrop_decode(raw.data, raw.len, lim, e, &why) != 0)
        buf_printf(err, "%s", why);
    else if (e->uid != st_r->st_uid) {
        buf_printf(err, "claims uid %u but belongs to uid %u", e->uid, (unsigned)st_r->st_uid);
        maildrop_entry_free(e);
    } else
        rc = 0;
    close(fd);
    buf_free(&raw);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int maildrop_list(int dirfd, bool junk, char ***names_r, size_t *n_r, struct buf *err)
{
    *names_r = NULL;
    *n_r = 0;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        buf_printf(err, "cannot list the maildrop: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        if (!maildrop_name_valid(n)) {
            struct stat st;
            if (!junk || (n[0] == 't' && maildrop_name_valid(n + 1) &&
                          fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                          now - st.st_mtime < MAILDROP_TMP_MAX_AGE_S))
                continue; /* a writer may still be busy with it */
        }
        *names_r = xreallocarray(*names_r, *n_r + 1, sizeof(char *));
        (*names_r)[(*n_r)++] = xstrdup(n);
    }
    closedir(d);
    if (*n_r > 1)
        qsort(*names_r, *n_r, sizeof(char *), cmp_str);
    return 0;
}

void maildrop_entry_free(struct maildrop_entry *e)
{
    free(e->sender);
    for (size_t i = 0; i < e->n_rcpts; i++)
        free(e->rcpts[i]);
    free(e->rcpts);
    buf_free(&e->data);
    memset(e, 0, sizeof(*e));
}
