/*
 * test_datadir.c - unit tests for datadir_write_file, the one way a state
 * file is rewritten: the file replaced whole with its mode, and the temporary
 * files that a writer which no longer runs left beside it removed (a live
 * writer's and other files kept).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/datadir.h"

static char dir[] = "/tmp/wharf-datadir-test-XXXXXX";

static char *path_of(const char *name)
{
    static char p[sizeof(dir) + 64];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return p;
}

static void touch(const char *name)
{
    int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "left", 4), 4);
    close(fd);
}

static bool exists(const char *name)
{
    return access(path_of(name), F_OK) == 0;
}

/* A process id that no process has now: a child's, reaped. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return pid;
}

static void test_replaces_whole(void **state)
{
    (void)state;
    char *p = path_of("state");
    assert_int_equal(datadir_write_file(p, "one\n", 4, 0600), 0);
    assert_int_equal(datadir_write_file(p, "two two\n", 8, 0640), 0);
    char got[16] = {0};
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_int_equal(fread(got, 1, sizeof(got) - 1, f), 8);
    fclose(f);
    assert_string_equal(got, "two two\n");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
}

static void test_dead_writers_tmp_removed(void **state)
{
    (void)state;
    char dead[64], live[64];
    snprintf(dead, sizeof(dead), "cache.%ld.tmp", (long)dead_pid());
    snprintf(live, sizeof(live), "cache.%ld.tmp", (long)getppid()); /* the test runner */
    const char *others[] = {"cache.x.tmp", "cache.12.tmpx", "other.1.tmp", "cache.tmp"};
    touch(dead);
    touch(live);
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        touch(others[i]);
    assert_int_equal(datadir_write_file(path_of("cache"), "x\n", 2, 0600), 0);
    assert_false(exists(dead));
    assert_true(exists(live));
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        assert_true(exists(others[i]));
    assert_true(exists("cache"));
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replaces_whole),
        cmocka_unit_test(test_dead_writers_tmp_removed),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    DIR *d = opendir(dir);
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.')
            unlinkat(dirfd(d), de->d_name, 0);
    if (d != NULL)
        closedir(d);
    return rmdir(dir) == 0 ? rc : 1;
}
