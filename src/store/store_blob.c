/*
 * store_blob.c - append-only segment files holding message bodies.
 *
 * Writes are appends at the end of the current segment; durability is one
 * fdatasync per batch (blob_sync), done by the caller before it commits the
 * metadata that refers to the new records. Never overwrites a byte.
 */
#include "store/store_blob.h"
#include "base/alloc.h"
#include "base/fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *segment_path(const struct blob_dir *b, int64_t seg)
{
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/%016" PRIx64, b->path, (uint64_t)seg);
    return buf_steal(&p, NULL);
}

int blob_dir_open(struct blob_dir *b, const char *store_dir, bool fsync, struct buf *err)
{
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/blobs", store_dir);
    if (mkdir(p.data, 0700) != 0 && errno != EEXIST) {
        buf_printf(err, "cannot create %s: %s", p.data, strerror(errno));
        buf_free(&p);
        return -1;
    }
    b->path = buf_steal(&p, NULL);
    b->fsync = fsync;
    b->fd = -1;
    b->fd_seg = -1;
    b->dirty = b->dir_dirty = false;
    return 0;
}

void blob_dir_close(struct blob_dir *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    free(b->path);
    b->path = NULL;
}

void blob_hash_hex(struct slice data, char hex[BLOB_HASH_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data.ptr, data.len, md, &mdlen, EVP_sha256(), NULL);
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

uint64_t blob_segment_size(struct blob_dir *b, int64_t seg)
{
    char *path = segment_path(b, seg);
    struct stat st;
    uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    free(path);
    return size;
}

static int open_segment(struct blob_dir *b, int64_t seg, struct buf *err)
{
    if (b->fd >= 0 && b->fd_seg == seg)
        return 0;
    if (b->fd >= 0) {
        /* The previous segment's appends must be durable before we lose its fd. */
        if (b->dirty && b->fsync && fdatasync(b->fd) != 0) {
            buf_printf(err, "fdatasync blob segment: %s", strerror(errno));
            return -1;
        }
        b->dirty = false;
        close(b->fd);
        b->fd = -1;
    }
    char *path = segment_path(b, seg);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        b->dir_dirty = true;
    }
    if (fd < 0) {
        buf_printf(err, "cannot open %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    free(path);
    b->fd = fd;
    b->fd_seg = seg;
    return 0;
}

int blob_append(struct blob_dir *b, int64_t seg, struct slice data, const char *hex,
                uint64_t *offset_r, struct buf *err)
{
    if (open_segment(b, seg, err) != 0)
        return -1;
    struct stat st;
    if (fstat(b->fd, &st) != 0) {
        buf_printf(err, "fstat blob segment: %s", strerror(errno));
        return -1;
    }
    struct buf rec = BUF_INIT;
    buf_append(&rec, "WBLB", 4);
    buf_append_u32(&rec, 0);
    buf_append_u64(&rec, data.len);
    for (unsigned i = 0; i < 32; i++) {
        unsigned v = 0;
        for (unsigned k = 0; k < 2; k++) {
            char c = hex[2 * i + k];
            v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        buf_append_byte(&rec, (char)v);
    }
    struct iovec_like {
        const char *p;
        size_t n;
    } parts[2] = {{rec.data, rec.len}, {data.ptr, data.len}};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        const char *p = parts[i].p;
        size_t n = parts[i].n;
        if (fd_write_all(b->fd, p, n) != 0) {
            buf_printf(err, "write blob segment: %s", strerror(errno));
            rc = -1;
        }
    }
    buf_free(&rec);
    b->dirty = true;
    if (rc == 0)
        *offset_r = (uint64_t)st.st_size + BLOB_HEADER_SIZE;
    return rc;
}

int blob_sync(struct blob_dir *b, struct buf *err)
{
    if (b->fsync && b->dirty && b->fd >= 0 && fdatasync(b->fd) != 0) {
        buf_printf(err, "fdatasync blob segment: %s", strerror(errno));
        return -1;
    }
    b->dirty = false;
    if (b->fsync && b->dir_dirty) {
        int dfd = open(b->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) {
            buf_printf(err, "fsync %s: %s", b->path, strerror(errno));
            if (dfd >= 0)
                close(dfd);
            return -1;
        }
        close(dfd);
    }
    b->dir_dirty = false;
    blob_release(b);
    return 0;
}

void blob_release(struct blob_dir *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    b->fd_seg = -1;
    b->dirty = false;
}

int blob_read(struct blob_dir *b, int64_t seg, uint64_t offset, uint64_t len, struct buf *out,
              struct buf *err)
{
    char *path = segment_path(b, seg);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        buf_printf(err, "cannot open %s: %s", path, strerror(e));
        free(path);
        errno = e;
        return -1;
    }
    free(path);
    buf_reset(out);
    buf_reserve(out, (size_t)len);
    if (fd_pread_exact(fd, out->data, (size_t)len, (off_t)offset) != 0) {
        buf_printf(err, "blob segment %016" PRIx64 " is short", (uint64_t)seg);
        close(fd);
        errno = EIO;
        return -1;
    }
    close(fd);
    out->len = (size_t)len;
    out->data[out->len] = '\0';
    return 0;
}

void blob_segment_remove(struct blob_dir *b, int64_t seg)
{
    if (b->fd >= 0 && b->fd_seg == seg) {
        close(b->fd);
        b->fd = -1;
        b->dirty = false;
    }
    char *path = segment_path(b, seg);
    unlink(path);
    free(path);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int blob_segments(struct blob_dir *b, int64_t **segs_r, size_t *n_r, struct buf *err)
{
    DIR *d = opendir(b->path);
    if (d == NULL) {
        buf_printf(err, "cannot read %s: %s", b->path, strerror(errno));
        return -1;
    }
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 16 || strspn(e->d_name, "0123456789abcdef") != 16)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[n++] = (int64_t)strtoull(e->d_name, NULL, 16);
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_i64);
    *segs_r = v;
    *n_r = n;
    return 0;
}
