/*
 * test_fdio.c - unit tests for the whole-read/whole-write kit: transfers
 * larger than a pipe's buffer (short writes and reads), iovecs split at
 * every point, end of file and limits, send without SIGPIPE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fdio.h"

#define BIG (1024 * 1024) /* far more than a pipe holds: forces short transfers */

static unsigned char *pattern(size_t n)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 131 + i / 251);
    return p;
}

/* Forks a child that writes data[0..BIG) to a pipe with fn, or with writev
 * in three pieces cut at cut[0] and cut[1] when fn is NULL; returns the
 * pipe's reading end. */
static int spawn_writer(int (*fn)(int, const void *, size_t), unsigned char *data,
                        const size_t cut[2], pid_t *pid_r)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (fn != NULL)
            _exit(fn(p[1], data, BIG) == 0 ? 0 : 1);
        struct iovec iov[3] = {
            {data, cut[0]}, {data + cut[0], cut[1] - cut[0]}, {data + cut[1], BIG - cut[1]}};
        _exit(fd_writev_all(p[1], iov, 3) == 0 ? 0 : 1);
    }
    close(p[1]);
    *pid_r = pid;
    return p[0];
}

static void reap(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A child writes data to a pipe with fn; the parent reads it back whole. */
static void check_through_pipe(int (*fn)(int, const void *, size_t))
{
    unsigned char *data = pattern(BIG);
    pid_t pid;
    int fd = spawn_writer(fn, data, NULL, &pid);
    unsigned char *back = malloc(BIG);
    assert_int_equal(fd_read_exact(fd, back, BIG), 0);
    assert_memory_equal(back, data, BIG);
    char extra;
    errno = 0;
    assert_int_equal(fd_read_exact(fd, &extra, 1), -1); /* end of file */
    assert_int_equal(errno, EIO);
    close(fd);
    reap(pid);
    free(back);
    free(data);
}

static void test_write_all(void **state)
{
    check_through_pipe(fd_write_all);
}

static void test_send_all_not_a_socket(void **state)
{
    check_through_pipe(fd_send_all); /* a pipe: falls back to write() */
}

static void test_send_all_peer_gone(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    errno = 0;
    /* EPIPE, and no SIGPIPE (which would kill this test) */
    assert_int_equal(fd_send_all(sv[0], "x", 1), -1);
    assert_int_equal(errno, EPIPE);
    close(sv[0]);
}

static void test_writev_all(void **state)
{
    unsigned char *data = pattern(BIG);
    size_t cuts[][2] = {{0, 0}, {1, 2}, {BIG / 3, BIG / 2}, {BIG - 1, BIG}, {BIG, BIG}};
    for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
        pid_t pid;
        int fd = spawn_writer(NULL, data, cuts[c], &pid);
        struct buf back = BUF_INIT;
        assert_int_equal(fd_read_all(fd, BIG, &back), 0);
        assert_int_equal(back.len, BIG);
        assert_memory_equal(back.data, data, BIG);
        assert_int_equal(back.data[back.len], '\0');
        buf_free(&back);
        close(fd);
        reap(pid);
    }
    free(data);
}

static void test_files(void **state)
{
    char path[] = "/tmp/wharf-test-fdio-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(fd_write_all(fd, "0123456789", 10), 0);
    char got[4];
    assert_int_equal(fd_pread_exact(fd, got, 4, 3), 0);
    assert_memory_equal(got, "3456", 4);
    errno = 0;
    assert_int_equal(fd_pread_exact(fd, got, 4, 8), -1); /* past the end */
    assert_int_equal(errno, EIO);
    /* read_all appends, and stops at max */
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "head:");
    assert_int_equal(fd_read_all(fd, 10, &b), 0);
    assert_string_equal(b.data, "head:0123456789");
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    buf_reset(&b);
    errno = 0;
    assert_int_equal(fd_read_all(fd, 9, &b), -1);
    assert_int_equal(errno, EFBIG);
    buf_free(&b);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_all),
        cmocka_unit_test(test_send_all_not_a_socket),
        cmocka_unit_test(test_send_all_peer_gone),
        cmocka_unit_test(test_writev_all),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
