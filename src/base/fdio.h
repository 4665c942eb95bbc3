/*
 * fdio.h - the one kit for whole reads and writes on a file descriptor:
 * the loops that retry on EINTR and go on after a short read or write.
 *
 * Blocking descriptors only (files, pipes, the IPC sockets of a worker's
 * helper threads and of the CLI); an event loop's non-blocking sockets go
 * through libevent instead. Every function returns 0 when all is done and
 * -1 with errno set otherwise; none of them closes the descriptor or logs.
 */
#ifndef WHARF_BASE_FDIO_H
#define WHARF_BASE_FDIO_H

#include "base/buf.h"

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Writes all n bytes of p. */
int fd_write_all(int fd, const void *p, size_t n);
/* Like fd_write_all on a socket, without SIGPIPE (MSG_NOSIGNAL: a peer gone
 * is EPIPE, not a signal); falls back to write() when fd is not a socket. */
int fd_send_all(int fd, const void *p, size_t n);
/* Writes the n buffers of iov whole; iov is consumed (changed) as it goes. */
int fd_writev_all(int fd, struct iovec *iov, int n);

/* Reads exactly n bytes into p; end of file before that is -1 with errno EIO. */
int fd_read_exact(int fd, void *p, size_t n);
/* Reads exactly n bytes at offset off; a shorter file is -1 with errno EIO. */
int fd_pread_exact(int fd, void *p, size_t n, off_t off);
/* Appends everything up to end of file to out; more than max bytes read is
 * -1 with errno EFBIG (out then holds what was read). */
int fd_read_all(int fd, size_t max, struct buf *out);

#endif
