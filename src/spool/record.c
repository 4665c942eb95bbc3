/*
 * record.c - length-prefixed records (see record.h).
 */
#include "spool/record.h"

#include "base/fdio.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void record_put(struct buf *b, char type, const void *p, size_t len)
{
    buf_append_byte(b, type);
    buf_append_u32(b, (uint32_t)len);
    buf_append(b, p, len);
}

void record_put_str(struct buf *b, char type, const char *s)
{
    if (s)
        record_put(b, type, s, strlen(s));
}

void record_put_u8(struct buf *b, char type, uint8_t v)
{
    record_put(b, type, &v, 1);
}

void record_put_u32(struct buf *b, char type, uint32_t v)
{
    buf_append_byte(b, type);
    buf_append_u32(b, 4);
    buf_append_u32(b, v);
}

void record_put_u64(struct buf *b, char type, uint64_t v)
{
    buf_append_byte(b, type);
    buf_append_u32(b, 8);
    buf_append_u64(b, v);
}

uint32_t record_get_u32(const void *v)
{
    const unsigned char *p = v;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t record_get_u64(const void *v)
{
    const unsigned char *p = v;
    return (uint64_t)record_get_u32(p) << 32 | record_get_u32(p + 4);
}

int record_next(struct record_reader *r, char *type_r, struct slice *value_r)
{
    if (r->p == r->end)
        return 0;
    if (r->end - r->p < RECORD_HEAD)
        return -1;
    size_t n = record_get_u32(r->p + 1);
    if ((size_t)(r->end - r->p - RECORD_HEAD) < n)
        return -1;
    *type_r = (char)r->p[0];
    *value_r = slice_make(r->p + RECORD_HEAD, n);
    r->p += RECORD_HEAD + n;
    return 1;
}

int record_read_fd(int fd, uint64_t max, struct buf *out, struct buf *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > max) {
        buf_printf(err, "unreadable or larger than %llu bytes", (unsigned long long)max);
        return -1;
    }
    buf_reserve(out, (size_t)st.st_size);
    if (fd_read_all(fd, (size_t)max, out) == 0)
        return 0;
    if (errno == EFBIG) /* it grew while we read */
        buf_printf(err, "larger than %llu bytes", (unsigned long long)max);
    else
        buf_printf(err, "read: %s", strerror(errno));
    return -1;
}
