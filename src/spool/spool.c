/*
 * spool.c - the mail queue on disk: durable write, read, update, list, remove.
 *
 * File layout (all integers big-endian):
 *     "WSPL" u32 version (3; versions 1 and 2 are read too)
 *     records: u8 type, u32 length, length bytes
 *     a final 'Z' record of length 0: a file without it is damaged.
 * Record types: I id, S sender, R recipient address (starts a recipient),
 * O orcpt, N notify (u32), X state (u8) -- O/N/X apply to the last R --,
 * B body (u8), U smtputf8 (u8), T ret-hdrs (u8), E envid, A auth user,
 * C client, H helo, W arrival (u64), M message data; since version 2:
 * P next attempt (u64 ms), K attempts (u32), L last reason, D warned (u8),
 * G on hold (u8); since version 3: F account reached by alias expansion
 * (its folder, empty for INBOX; applies to the last R) and the state
 * EXPANDED in X; V the next hop of its last outbound attempt and Y why it waits there
 * (apply to the last R, written only when set).
 * Files are written as DATA/spool/tmp/ID, fsync'd, then renamed to
 * DATA/spool/queue/ID and the directory fsync'd: a name in queue/ is complete.
 * A finished entry is renamed to DATA/spool/done/ID at once (spool_retire: no
 * block is freed, so it is cheap) and unlinked there later, off the mta's loop.
 *
 * Must never: leave a partial file under queue/, trust a length in a file
 * beyond the file's size, or answer success before the data is durable.
 */
#include "spool/spool.h"

#include "base/alloc.h"
#include "base/fdio.h"
#include "spool/record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define SPOOL_MAGIC "WSPL"
#define SPOOL_VERSION 3u
#define SPOOL_VERSION_MIN 1u
/* Largest spool file read back: a damaged length can never make us allocate more. */
#define SPOOL_MAX_FILE (4ull << 30)

static char *spool_path(const struct wharf_config *cfg, const char *sub, const char *id)
{
    struct buf b = BUF_INIT;
    char *root = config_data_path(cfg, "spool");
    buf_printf(&b, "%s/%s%s%s", root, sub, id ? "/" : "", id ? id : "");
    free(root);
    return buf_steal(&b, NULL);
}

static bool spool_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return false;
    }
    return true;
}

/* Temporary files older than this were left by a crash: nobody is still writing them. */
#define SPOOL_TMP_MAX_AGE_S (24 * 3600)

/* Removes what a crash left in tmp/ (never a file a live writer may still hold). */
static void spool_clean_tmp(const struct wharf_config *cfg)
{
    char *dir = spool_path(cfg, "tmp", NULL);
    DIR *d = opendir(dir);
    if (d == NULL) {
        free(dir);
        return;
    }
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (!spool_id_valid(de->d_name) || fstatat(dirfd(d), de->d_name, &st, 0) != 0)
            continue;
        if (now - st.st_mtime > SPOOL_TMP_MAX_AGE_S)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
    free(dir);
}

int spool_init(const struct wharf_config *cfg, struct buf *err)
{
    const char *subs[] = {"", "tmp", "queue", "done", "corrupt"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char *p = spool_path(cfg, subs[i], NULL);
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            buf_printf(err, "cannot create %s: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        free(p);
    }
    spool_clean_tmp(cfg);
    return 0;
}

void spool_new_id(char id[32])
{
    static unsigned counter;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(id, 32, "%09llX%05lX%06lX%03X", (unsigned long long)tv.tv_sec, (long)tv.tv_usec,
             (long)getpid() & 0xFFFFFF, counter++ & 0xFFF);
}

/* Everything but the message data (which goes in its own iovec, never copied). */
static void spool_encode_envelope(const struct spool_message *msg, struct buf *b)
{
    const struct spool_envelope *e = &msg->env;
    buf_append(b, SPOOL_MAGIC, 4);
    buf_append_u32(b, SPOOL_VERSION);
    record_put_str(b, 'I', e->id);
    record_put_str(b, 'S', e->sender ? e->sender : "");
    for (size_t i = 0; i < e->n_rcpts; i++) {
        const struct spool_rcpt *r = &e->rcpts[i];
        record_put_str(b, 'R', r->address);
        record_put_str(b, 'O', r->orcpt);
        record_put_u32(b, 'N', r->notify);
        record_put_u8(b, 'X', (uint8_t)r->state);
        if (r->account)
            record_put_str(b, 'F', r->folder ? r->folder : "");
        if (r->via)
            record_put_str(b, 'V', r->via);
        if (r->waits)
            record_put_str(b, 'Y', r->waits);
    }
    record_put_u8(b, 'B', (uint8_t)e->body);
    record_put_u8(b, 'U', e->smtputf8);
    record_put_u8(b, 'T', e->dsn_ret_hdrs);
    record_put_str(b, 'E', e->dsn_envid);
    record_put_str(b, 'A', e->auth_user);
    record_put_str(b, 'C', e->client);
    record_put_str(b, 'H', e->helo);
    record_put_u64(b, 'W', (uint64_t)e->arrival);
    if (e->junk)
        record_put_u8(b, 'J', 1);
    record_put_u64(b, 'P', (uint64_t)e->next_attempt);
    record_put_u32(b, 'K', e->attempts);
    record_put_str(b, 'L', e->last_reason);
    if (e->last_tls)
        record_put_str(b, 'Q', e->last_tls);
    record_put_u8(b, 'D', e->warned);
    record_put_u8(b, 'G', e->hold);
    buf_append_byte(b, 'M');
    buf_append_u32(b, (uint32_t)msg->data.len);
}

/* Writes the temporary file; fsyncs it when sync is true. */
static int spool_write_tmp(const struct wharf_config *cfg, const struct spool_message *msg,
                           bool sync, struct buf *err)
{
    if (!spool_id_valid(msg->env.id) || msg->data.len > UINT32_MAX) {
        buf_printf(err, "bad queue id or oversized message");
        return -1;
    }
    char *tmp = spool_path(cfg, "tmp", msg->env.id);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        buf_printf(err, "open %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    struct buf head = BUF_INIT;
    spool_encode_envelope(msg, &head);
    static const char tail[5] = {'Z', 0, 0, 0, 0};
    struct iovec iov[3] = {
        {head.data, head.len}, {msg->data.data, msg->data.len}, {(void *)tail, sizeof(tail)}};
    int rc = fd_writev_all(fd, iov, 3);
    if (rc == 0 && sync)
        rc = fdatasync(fd);
    if (rc != 0)
        buf_printf(err, "write %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == 0) {
        buf_printf(err, "close %s: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        unlink(tmp);
    buf_free(&head);
    free(tmp);
    return rc;
}

static int spool_rename_in(const struct wharf_config *cfg, const char *id, struct buf *err)
{
    char *tmp = spool_path(cfg, "tmp", id), *fin = spool_path(cfg, "queue", id);
    int rc = rename(tmp, fin);
    if (rc != 0) {
        buf_printf(err, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(fin);
    return rc;
}

static int spool_sync_dir(const struct wharf_config *cfg, bool whole_fs, struct buf *err)
{
    char *dir = spool_path(cfg, "queue", NULL);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = -1;
    if (fd >= 0) {
        rc = whole_fs ? syncfs(fd) : fsync(fd);
        close(fd);
    }
    if (rc != 0)
        buf_printf(err, "sync %s: %s", dir, strerror(errno));
    free(dir);
    return rc;
}

int spool_write(const struct wharf_config *cfg, const struct spool_message *msg, struct buf *err)
{
    if (spool_write_tmp(cfg, msg, true, err) != 0 || spool_rename_in(cfg, msg->env.id, err) != 0)
        return -1;
    return spool_sync_dir(cfg, false, err);
}

int spool_write_batch(const struct wharf_config *cfg, const struct spool_message *const *msgs,
                      size_t n, bool *ok_r, struct buf *err)
{
    if (n == 1) {
        ok_r[0] = spool_write(cfg, msgs[0], err) == 0;
        return ok_r[0] ? 0 : -1;
    }
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        ok_r[i] = spool_write_tmp(cfg, msgs[i], false, err) == 0;
        good += ok_r[i];
    }
    if (good == 0)
        return -1;
    /* One syncfs makes every temporary file of the batch durable at once. */
    if (spool_sync_dir(cfg, true, err) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (ok_r[i] && spool_rename_in(cfg, msgs[i]->env.id, err) != 0)
            ok_r[i] = false;
    }
    if (spool_sync_dir(cfg, false, err) != 0)
        goto fail;
    return 0;
fail:
    for (size_t i = 0; i < n; i++) {
        if (ok_r[i]) {
            char *p = spool_path(cfg, "queue", msgs[i]->env.id);
            unlink(p);
            free(p);
            p = spool_path(cfg, "tmp", msgs[i]->env.id);
            unlink(p);
            free(p);
        }
        ok_r[i] = false;
    }
    return -1;
}

int spool_update_rcpts(const struct wharf_config *cfg, const struct spool_message *msg,
                       struct buf *err)
{
    return spool_write(cfg, msg, err);
}

/* 1 (with err) when path does not exist, -1 for other failures. */
static int read_file(const char *path, struct buf *out, struct buf *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        buf_printf(err, "open %s: %s", path, strerror(e));
        return e == ENOENT ? 1 : -1;
    }
    int rc = record_read_fd(fd, SPOOL_MAX_FILE, out, err);
    if (rc != 0)
        buf_printf(err, " (%s)", path);
    close(fd);
    return rc;
}

int spool_decode(const void *data, size_t len, struct spool_message *msg, struct buf *err)
{
    memset(msg, 0, sizeof(*msg));
    buf_init(&msg->data);
    uint32_t version = len >= 8 ? record_get_u32((const char *)data + 4) : 0;
    if (len < 8 || memcmp(data, SPOOL_MAGIC, 4) != 0 || version < SPOOL_VERSION_MIN ||
        version > SPOOL_VERSION)
        goto bad;
    bool v2 = version >= 2, v3 = version >= 3;
    struct record_reader rd = record_reader_make((const char *)data + 8, len - 8);
    struct spool_envelope *e = &msg->env;
    struct spool_rcpt *last = NULL;
    bool done = false;
    while (!done) {
        char type;
        struct slice v;
        int more = record_next(&rd, &type, &v);
        if (more < 0)
            goto bad;
        if (more == 0)
            break;
        size_t n = v.len;
        switch (type) {
        case 'I':
            if (n == 0 || n >= sizeof(e->id))
                goto bad;
            memcpy(e->id, v.ptr, n);
            e->id[n] = '\0';
            break;
        case 'S':
            free(e->sender);
            e->sender = slice_strdup(v);
            break;
        case 'R':
            e->rcpts = xreallocarray(e->rcpts, e->n_rcpts + 1, sizeof(*e->rcpts));
            last = &e->rcpts[e->n_rcpts++];
            *last = (struct spool_rcpt){.address = slice_strdup(v)};
            break;
        case 'O':
            if (last == NULL || last->orcpt)
                goto bad;
            last->orcpt = slice_strdup(v);
            break;
        case 'N':
            if (last == NULL || n != 4)
                goto bad;
            last->notify = record_get_u32(v.ptr);
            break;
        case 'X':
            if (last == NULL || n != 1 ||
                (unsigned char)v.ptr[0] > (v3 ? SPOOL_RCPT_EXPANDED : SPOOL_RCPT_FAILED))
                goto bad;
            last->state = (enum spool_rcpt_state)v.ptr[0];
            break;
        case 'V':
        case 'Y':
            if (last == NULL || !v3 || *(type == 'V' ? &last->via : &last->waits) != NULL)
                goto bad;
            *(type == 'V' ? &last->via : &last->waits) = slice_strdup(v);
            break;
        case 'F':
            if (last == NULL || last->account || !v3)
                goto bad;
            last->account = true;
            last->folder = n ? slice_strdup(v) : NULL;
            break;
        case 'B':
            if (n != 1 || (unsigned char)v.ptr[0] > SPOOL_BODY_BINARYMIME)
                goto bad;
            e->body = (enum spool_body)v.ptr[0];
            break;
        case 'U':
        case 'T':
            if (n != 1)
                goto bad;
            *(type == 'U' ? &e->smtputf8 : &e->dsn_ret_hdrs) = v.ptr[0] != 0;
            break;
        case 'E':
        case 'A':
        case 'C':
        case 'H': {
            char **f = type == 'E'   ? &e->dsn_envid
                       : type == 'A' ? &e->auth_user
                       : type == 'C' ? &e->client
                                     : &e->helo;
            free(*f);
            *f = slice_strdup(v);
            break;
        }
        case 'W':
        case 'P':
            if (n != 8 || (type == 'P' && !v2))
                goto bad;
            *(type == 'W' ? &e->arrival : &e->next_attempt) = (int64_t)record_get_u64(v.ptr);
            break;
        case 'K':
            if (n != 4 || !v2)
                goto bad;
            e->attempts = record_get_u32(v.ptr);
            break;
        case 'L':
        case 'Q':
            if (!v2)
                goto bad;
            free(*(type == 'L' ? &e->last_reason : &e->last_tls));
            *(type == 'L' ? &e->last_reason : &e->last_tls) = slice_strdup(v);
            break;
        case 'D':
        case 'G':
            if (n != 1 || !v2)
                goto bad;
            *(type == 'D' ? &e->warned : &e->hold) = v.ptr[0] != 0;
            break;
        case 'J':
            if (n != 1 || !v3)
                goto bad;
            e->junk = v.ptr[0] != 0;
            break;
        case 'M':
            buf_reset(&msg->data);
            buf_append(&msg->data, v.ptr, v.len);
            break;
        case 'Z':
            done = true;
            break;
        default:
            goto bad;
        }
    }
    if (!done || rd.p != rd.end || e->id[0] == '\0' || e->sender == NULL)
        goto bad;
    return 0;
bad:
    buf_printf(err, "damaged spool file");
    spool_message_free(msg);
    return -1;
}

int spool_read(const struct wharf_config *cfg, const char *id, struct spool_message *msg,
               struct buf *err)
{
    memset(msg, 0, sizeof(*msg)); /* data stays BUF_INIT: spool_message_free is safe */
    if (!spool_id_valid(id)) {
        buf_printf(err, "bad queue id");
        return -1;
    }
    char *path = spool_path(cfg, "queue", id);
    struct buf raw = BUF_INIT;
    int rc = read_file(path, &raw, err);
    if (rc == 0) {
        rc = spool_decode(raw.data, raw.len, msg, err);
        if (rc != 0)
            buf_printf(err, " (%s)", path);
    }
    free(path);
    buf_free(&raw);
    return rc;
}

bool spool_ctl_parse(const char *s, enum spool_ctl *c_r)
{
    static const char *const names[] = {"flush", "hold", "release", "requeue"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *c_r = (enum spool_ctl)i;
            return true;
        }
    }
    return false;
}

int spool_control(const struct wharf_config *cfg, const char *id, enum spool_ctl c, struct buf *err)
{
    struct spool_message m;
    if (spool_read(cfg, id, &m, err) != 0)
        return -1;
    struct spool_envelope *e = &m.env;
    switch (c) {
    case SPOOL_CTL_HOLD:
        e->hold = true;
        break;
    case SPOOL_CTL_REQUEUE:
        e->attempts = 0;
        e->warned = false;
        free(e->last_reason);
        e->last_reason = NULL;
        free(e->last_tls);
        e->last_tls = NULL;
        /* fall through */
    case SPOOL_CTL_RELEASE:
        e->hold = c == SPOOL_CTL_REQUEUE ? e->hold : false;
        /* fall through */
    case SPOOL_CTL_FLUSH:
        e->next_attempt = 0;
        break;
    }
    int rc = spool_write(cfg, &m, err);
    spool_message_free(&m);
    return rc;
}

bool spool_exists(const struct wharf_config *cfg, const char *id)
{
    if (!spool_id_valid(id))
        return false;
    char *path = spool_path(cfg, "queue", id);
    struct stat st;
    bool yes = lstat(path, &st) == 0;
    free(path);
    return yes;
}

int spool_set_aside(const struct wharf_config *cfg, int dirfd, const char *name, struct buf *err)
{
    char *dir = spool_path(cfg, "corrupt", NULL);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -1 : renameat(dirfd, name, fd, name);
    if (rc != 0)
        buf_printf(err, "cannot move %s to %s: %s", name, dir, strerror(errno));
    else
        rc = fsync(fd);
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* Unlinks sub/id, not durably. */
static int spool_unlink(const struct wharf_config *cfg, const char *sub, const char *id,
                        struct buf *err)
{
    if (!spool_id_valid(id)) {
        buf_printf(err, "bad queue id");
        return -1;
    }
    char *path = spool_path(cfg, sub, id);
    int rc = unlink(path);
    if (rc != 0)
        buf_printf(err, "unlink %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

int spool_remove(const struct wharf_config *cfg, const char *id, struct buf *err)
{
    return spool_unlink(cfg, "queue", id, err);
}

int spool_retire(const struct wharf_config *cfg, const char *id, struct buf *err)
{
    if (!spool_id_valid(id)) {
        buf_printf(err, "bad queue id");
        return -1;
    }
    char *from = spool_path(cfg, "queue", id), *to = spool_path(cfg, "done", id);
    int rc = rename(from, to);
    if (rc != 0)
        buf_printf(err, "rename %s: %s", from, strerror(errno));
    free(from);
    free(to);
    return rc;
}

int spool_remove_retired(const struct wharf_config *cfg, const char *id, struct buf *err)
{
    return spool_unlink(cfg, "done", id, err);
}

int spool_delete(const struct wharf_config *cfg, const char *id, struct buf *err)
{
    return spool_remove(cfg, id, err) == 0 ? spool_sync_dir(cfg, false, err) : -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int spool_list_dir(const struct wharf_config *cfg, const char *sub, char ***ids_r,
                          size_t *n_r, struct buf *err)
{
    *ids_r = NULL;
    *n_r = 0;
    char *dir = spool_path(cfg, sub, NULL);
    DIR *d = opendir(dir);
    if (d == NULL) {
        int rc = errno == ENOENT ? 0 : -1;
        if (rc)
            buf_printf(err, "opendir %s: %s", dir, strerror(errno));
        free(dir);
        return rc;
    }
    free(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!spool_id_valid(de->d_name))
            continue;
        *ids_r = xreallocarray(*ids_r, *n_r + 1, sizeof(char *));
        (*ids_r)[(*n_r)++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (*n_r > 1)
        qsort(*ids_r, *n_r, sizeof(char *), cmp_str);
    return 0;
}

int spool_list(const struct wharf_config *cfg, char ***ids_r, size_t *n_r, struct buf *err)
{
    return spool_list_dir(cfg, "queue", ids_r, n_r, err);
}

int spool_list_retired(const struct wharf_config *cfg, char ***ids_r, size_t *n_r, struct buf *err)
{
    return spool_list_dir(cfg, "done", ids_r, n_r, err);
}

void spool_list_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

void spool_message_free(struct spool_message *msg)
{
    struct spool_envelope *e = &msg->env;
    free(e->sender);
    for (size_t i = 0; i < e->n_rcpts; i++) {
        free(e->rcpts[i].address);
        free(e->rcpts[i].orcpt);
        free(e->rcpts[i].folder);
        free(e->rcpts[i].via);
        free(e->rcpts[i].waits);
    }
    free(e->rcpts);
    free(e->dsn_envid);
    free(e->auth_user);
    free(e->client);
    free(e->helo);
    free(e->last_reason);
    free(e->last_tls);
    buf_free(&msg->data);
    memset(e, 0, sizeof(*e));
}

const char *spool_rcpt_state_name(enum spool_rcpt_state s)
{
    static const char *const names[] = {"pending", "delivered", "failed", "expanded"};
    return (size_t)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}
