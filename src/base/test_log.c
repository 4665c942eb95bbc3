/*
 * test_log.c - unit tests for WHARF_ASSERT: a death test (in a forked
 * child) that a false condition logs FILE:LINE and the condition through
 * the log kit and aborts, and that a true one costs nothing but the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"

static int evaluated;

static int count(int v)
{
    evaluated++;
    return v;
}

static void test_assert_true(void **state)
{
    evaluated = 0;
    WHARF_ASSERT(count(1) == 1);
    assert_int_equal(evaluated, 1); /* evaluated once, even in a release build */
}

static void test_assert_false_aborts(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    int line = __LINE__ + 9;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDERR_FILENO);
        signal(SIGABRT, SIG_DFL);
        log_init("test", LOG_TO_STDERR);
        int two = 2;
        WHARF_ASSERT(two + 2 == 5);
        _exit(0); /* not reached */
    }
    close(p[1]);
    struct buf out = BUF_INIT;
    char tmp[512];
    ssize_t n;
    while ((n = read(p[0], tmp, sizeof(tmp))) > 0)
        buf_append(&out, tmp, (size_t)n);
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    struct buf want = BUF_INIT;
    buf_printf(&want, "assertion failed: %s:%d: two + 2 == 5", __FILE__, line);
    assert_non_null(strstr(out.data, want.data));
    assert_non_null(strstr(out.data, "panic"));
    buf_free(&want);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assert_true),
        cmocka_unit_test(test_assert_false_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
