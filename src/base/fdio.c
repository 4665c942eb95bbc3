/*
 * fdio.c - whole reads and writes with EINTR and short transfers handled
 * (see fdio.h). Must never block on a descriptor an event loop owns.
 */
#include "base/fdio.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_loop(int fd, const char *p, size_t n, bool sock)
{
    while (n > 0) {
        ssize_t w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
        if (w < 0 && sock && errno == ENOTSOCK) {
            sock = false;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) { /* only for n == 0, which the loop excludes: never spin */
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int fd_write_all(int fd, const void *p, size_t n)
{
    return write_loop(fd, p, n, false);
}

int fd_send_all(int fd, const void *p, size_t n)
{
    return write_loop(fd, p, n, true);
}

int fd_writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0 && iov->iov_len == 0) {
        iov++;
        n--;
    }
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* read() or, when off >= 0, pread() from off, until n bytes; EIO at end of file. */
static int read_loop(int fd, char *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t r = off >= 0 ? pread(fd, p, n, off) : read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        if (off >= 0)
            off += r;
    }
    return 0;
}

int fd_read_exact(int fd, void *p, size_t n)
{
    return read_loop(fd, p, n, -1);
}

int fd_pread_exact(int fd, void *p, size_t n, off_t off)
{
    if (off < 0) {
        errno = EINVAL;
        return -1;
    }
    return read_loop(fd, p, n, off);
}

int fd_read_all(int fd, size_t max, struct buf *out)
{
    size_t start = out->len;
    for (;;) {
        buf_reserve(out, 65536);
        ssize_t r = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        out->len += (size_t)r;
        out->data[out->len] = '\0';
        if (out->len - start > max) {
            errno = EFBIG;
            return -1;
        }
    }
}
