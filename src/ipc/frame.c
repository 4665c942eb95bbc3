/*
 * frame.c - encoding, parsing and blocking I/O of IPC frames.
 */
#include "ipc/frame.h"

#include "base/fdio.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static uint32_t get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

void ipc_frame_encode(struct buf *out, uint16_t type, const void *payload, size_t len)
{
    buf_append_u32(out, (uint32_t)len);
    buf_append_u16(out, type);
    buf_append_u16(out, 0);
    buf_append(out, payload, len);
}

enum ipc_parse_result ipc_frame_parse(const void *data, size_t len, size_t max_payload,
                                      struct ipc_frame *frame, size_t *consumed_r)
{
    const unsigned char *p = data;
    if (len < IPC_HEADER_SIZE)
        return IPC_PARSE_NEED_MORE;
    uint32_t plen = get_u32(p);
    uint16_t flags = get_u16(p + 6);
    if (plen > max_payload || flags != 0)
        return IPC_PARSE_ERROR;
    if (len - IPC_HEADER_SIZE < plen)
        return IPC_PARSE_NEED_MORE;
    frame->type = get_u16(p + 4);
    frame->payload = (const char *)p + IPC_HEADER_SIZE;
    frame->len = plen;
    *consumed_r = IPC_HEADER_SIZE + (size_t)plen;
    return IPC_PARSE_OK;
}

int ipc_send(int fd, uint16_t type, const void *payload, size_t len)
{
    struct buf b = BUF_INIT;
    ipc_frame_encode(&b, type, payload, len);
    int r = fd_send_all(fd, b.data, b.len);
    buf_free(&b);
    return r;
}

int ipc_recv(int fd, size_t max_payload, uint16_t *type_r, struct buf *payload)
{
    unsigned char hdr[IPC_HEADER_SIZE];
    if (fd_read_exact(fd, hdr, sizeof(hdr)) != 0)
        return -1;
    uint32_t plen = get_u32(hdr);
    if (plen > max_payload || get_u16(hdr + 6) != 0)
        return -1;
    buf_reset(payload);
    buf_reserve(payload, plen);
    if (fd_read_exact(fd, payload->data, plen) != 0)
        return -1;
    payload->len = plen;
    payload->data[plen] = '\0';
    *type_r = get_u16(hdr + 4);
    return 0;
}

void ipc_put_u64(struct buf *b, uint64_t v)
{
    buf_append_u64(b, v);
}

void ipc_put_bytes(struct buf *b, const void *p, size_t len)
{
    buf_append_u32(b, (uint32_t)len);
    buf_append(b, p, len);
}

void ipc_put_str(struct buf *b, const char *s)
{
    ipc_put_bytes(b, s, strlen(s));
}

void ipc_reader_init(struct ipc_reader *r, const void *payload, size_t len)
{
    r->p = payload;
    r->left = len;
    r->failed = false;
}

uint64_t ipc_get_u64(struct ipc_reader *r)
{
    if (r->failed || r->left < 8) {
        r->failed = true;
        return 0;
    }
    uint64_t v = ((uint64_t)get_u32(r->p) << 32) | get_u32(r->p + 4);
    r->p += 8;
    r->left -= 8;
    return v;
}

struct slice ipc_get_bytes(struct ipc_reader *r)
{
    if (r->failed || r->left < 4) {
        r->failed = true;
        return SLICE_NULL;
    }
    uint32_t n = get_u32(r->p);
    if (r->left - 4 < n) {
        r->failed = true;
        return SLICE_NULL;
    }
    struct slice s = {(const char *)r->p + 4, n};
    r->p += 4 + (size_t)n;
    r->left -= 4 + (size_t)n;
    return s;
}

bool ipc_reader_done(const struct ipc_reader *r)
{
    return !r->failed && r->left == 0;
}

int ipc_connect(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}
