/*
 * test_login_cache.c - unit tests for the cache of the last LDAP logins
 * (login_cache.c): lookups, the TTL, the cap (oldest first), and the file:
 * written and read back across a restart (wall-clock dates), merged with
 * newer logins, and refused whole, never half-read, when it is cut short or
 * garbage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/login_cache.h"
#include "base/datadir.h"

#define TTL (3600 * 1000)
#define WALL 1800000000000LL /* the wall clock of these tests, in ms */

static void assert_hash(struct login_cache *c, const char *account, const char *want, int64_t now)
{
    char *h = login_cache_get(c, account, now);
    if (want == NULL) {
        assert_null(h);
    } else {
        assert_non_null(h);
        assert_string_equal(h, want);
    }
    free(h);
}

static void test_ttl_and_replace(void **state)
{
    (void)state;
    struct login_cache *c = login_cache_new(10, TTL);
    login_cache_put(c, "alice@example.test", "$y$a1", 1000);
    login_cache_put(c, "bob@example.test", "$y$b1", 2000);
    assert_hash(c, "alice@example.test", "$y$a1", 1000 + TTL);
    assert_hash(c, "nobody@example.test", NULL, 2000);
    /* A new login replaces the hash (a password changed in LDAP). */
    login_cache_put(c, "alice@example.test", "$y$a2", 3000);
    assert_hash(c, "alice@example.test", "$y$a2", 3000);
    assert_int_equal(login_cache_size(c), 2);
    /* Past the TTL, an entry is gone; the newer one stays until its own. */
    assert_hash(c, "bob@example.test", NULL, 2000 + TTL + 1);
    assert_hash(c, "alice@example.test", "$y$a2", 3000 + TTL);
    assert_hash(c, "alice@example.test", NULL, 3000 + TTL + 1);
    assert_int_equal(login_cache_size(c), 0);
    login_cache_free(c);
    /* TTL 0: nothing is kept. */
    c = login_cache_new(10, 0);
    login_cache_put(c, "alice@example.test", "$y$a1", 1000);
    assert_hash(c, "alice@example.test", NULL, 1000);
    assert_int_equal(login_cache_version(c), 0);
    login_cache_free(c);
}

static void test_cap_drops_the_oldest(void **state)
{
    (void)state;
    struct login_cache *c = login_cache_new(3, TTL);
    login_cache_put(c, "a", "$y$a", 1);
    login_cache_put(c, "b", "$y$b", 2);
    login_cache_put(c, "c", "$y$c", 3);
    login_cache_put(c, "a", "$y$a2", 4); /* a logs in again: now the newest */
    login_cache_put(c, "d", "$y$d", 5);  /* b goes */
    assert_int_equal(login_cache_size(c), 3);
    assert_hash(c, "b", NULL, 5);
    assert_hash(c, "a", "$y$a2", 5);
    assert_hash(c, "c", "$y$c", 5);
    assert_hash(c, "d", "$y$d", 5);
    login_cache_put(c, "e", "$y$e", 6); /* c goes */
    assert_hash(c, "c", NULL, 6);
    assert_hash(c, "a", "$y$a2", 6);
    login_cache_free(c);
}

/* A password LDAP refused while its hash was cached (changed in LDAP): the entry answers
 * nothing, is not written, and an older file's entry does not bring it back. */
static void test_refused_password_is_dropped(void **state)
{
    (void)state;
    struct buf text = BUF_INIT, err = BUF_INIT;
    struct login_cache *c = login_cache_new(10, TTL);
    login_cache_put(c, "alice@example.test", "$y$j9T$alice$old", 1000);
    login_cache_put(c, "bob@example.test", "$y$j9T$bob$new", 1000);
    login_cache_format(c, 1000, WALL, &text); /* what an older process wrote */
    /* A refusal of another hash than the one held (a newer login's) changes nothing. */
    login_cache_refused(c, "bob@example.test", "$y$j9T$bob$old", 2000);
    assert_hash(c, "bob@example.test", "$y$j9T$bob$new", 2000);
    uint64_t v = login_cache_version(c);
    login_cache_refused(c, "alice@example.test", "$y$j9T$alice$old", 2000);
    assert_true(login_cache_version(c) != v); /* to be written */
    assert_hash(c, "alice@example.test", NULL, 2000);
    assert_int_equal(login_cache_parse(c, text.data, text.len, 2000, WALL + 1000, NULL, &err), 0);
    assert_hash(c, "alice@example.test", NULL, 2000);
    struct buf out = BUF_INIT;
    assert_int_equal(login_cache_format(c, 2000, WALL, &out), 1);
    assert_null(strstr(out.data, "alice"));
    /* A later login puts a hash again. */
    login_cache_put(c, "alice@example.test", "$y$j9T$alice$new", 3000);
    assert_hash(c, "alice@example.test", "$y$j9T$alice$new", 3000);
    login_cache_free(c);
    buf_free(&text);
    buf_free(&out);
    buf_free(&err);
}

/* A file in a new temporary folder (dir: a mkdtemp template; path: 64 bytes). */
static void write_file(char *dir, char *path, const char *text)
{
    if (dir[strlen(dir) - 1] == 'X')
        assert_non_null(mkdtemp(dir));
    snprintf(path, 64, "%s/login-cache", dir);
    assert_int_equal(datadir_write_file(path, text, strlen(text), 0600), 0);
}

static void test_file_round_trip(void **state)
{
    (void)state;
    char dir[] = "/tmp/wharf-logins-XXXXXX", path[64];
    struct buf text = BUF_INIT, err = BUF_INIT;
    /* Monotonic times of this boot: 50 s, 20 min and 2 h before now (5,000,000 ms). */
    int64_t mono = 5000000;
    struct login_cache *c = login_cache_new(10, 3 * TTL);
    login_cache_put(c, "old@example.test", "$y$j9T$old$x", mono - 2 * TTL);
    login_cache_put(c, "bob@example.test", "$y$j9T$bob$x", mono - 1200000);
    login_cache_put(c, "alice@example.test", "$y$j9T$alice$x", mono - 50000);
    login_cache_put(c, "tab\there", "$y$j9T$tab$x",
                    mono); /* never written: a line could not say it */
    login_cache_format(c, mono, WALL, &text);
    assert_string_equal(text.data, "wharf-login-cache 1\n"
                                   "1799992800\told@example.test\t$y$j9T$old$x\n"
                                   "1799998800\tbob@example.test\t$y$j9T$bob$x\n"
                                   "1799999950\talice@example.test\t$y$j9T$alice$x\n");
    write_file(dir, path, text.data);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    login_cache_free(c);

    /* After a restart (another monotonic clock), a minute later by the wall clock:
     * the entries keep their age, and one past the TTL (1 h here) is not taken. */
    c = login_cache_new(10, TTL);
    size_t n = 0;
    int64_t mono2 = 100;
    assert_int_equal(login_cache_load(c, path, mono2, WALL + 60000, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_hash(c, "alice@example.test", "$y$j9T$alice$x", mono2);
    assert_hash(c, "bob@example.test", "$y$j9T$bob$x", mono2);
    assert_hash(c, "old@example.test", NULL, mono2);
    assert_hash(c, "bob@example.test", "$y$j9T$bob$x", mono2 + TTL - 1260000);
    assert_hash(c, "bob@example.test", NULL, mono2 + TTL - 1260000 + 1000);
    assert_hash(c, "alice@example.test", "$y$j9T$alice$x", mono2 + TTL - 1260000 + 1000);
    login_cache_free(c);

    /* Read into a cache that holds newer logins (the auth process after a reload):
     * its own stay, the file's others come in, oldest first under the cap. */
    c = login_cache_new(2, 3 * TTL);
    login_cache_put(c, "alice@example.test", "$y$j9T$alice$new", mono2);
    assert_int_equal(login_cache_load(c, path, mono2, WALL, &n, &err), 0);
    assert_int_equal(login_cache_size(c), 2);
    assert_hash(c, "alice@example.test", "$y$j9T$alice$new", mono2);
    assert_hash(c, "bob@example.test", "$y$j9T$bob$x", mono2);
    login_cache_free(c);

    /* Lines out of order (not as this code writes them): the cap keeps the newest. */
    write_file(dir, path,
               "wharf-login-cache 1\n"
               "1799999990\tc@example.test\t$y$j9T$c$x\n"
               "1799999980\tb@example.test\t$y$j9T$b$x\n"
               "1799999970\ta@example.test\t$y$j9T$a$x\n"
               "1799999985\td@example.test\t$y$j9T$d$x\n");
    c = login_cache_new(2, TTL);
    assert_int_equal(login_cache_load(c, path, mono2, WALL, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_hash(c, "c@example.test", "$y$j9T$c$x", mono2);
    assert_hash(c, "d@example.test", "$y$j9T$d$x", mono2);
    login_cache_format(c, mono2, WALL, &text);
    assert_string_equal(text.data, "wharf-login-cache 1\n"
                                   "1799999985\td@example.test\t$y$j9T$d$x\n"
                                   "1799999990\tc@example.test\t$y$j9T$c$x\n");
    login_cache_free(c);

    /* No file: nothing to read, no error. */
    unlink(path);
    c = login_cache_new(10, TTL);
    assert_int_equal(login_cache_load(c, path, mono2, WALL, &n, &err), 1);
    assert_int_equal(err.len, 0);
    login_cache_free(c);
    rmdir(dir);
    buf_free(&text);
    buf_free(&err);
}

/* A file cut short or not ours is refused whole, says why, and names no hash. */
static void test_bad_files_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"", "not a login cache"},
        {"garbage\n", "not a login cache"},
        {"wharf-login-cache 2\n", "not a login cache"},
        {"wharf-login-cache 1\n1799999950\ta@example.test\t$y$j9T$a$x\n1799999950\tb@exa",
         "line 3: cut short"},
        {"wharf-login-cache 1\n1799999950\ta@example.test\t$y$j9T$a$x", "line 2: cut short"},
        {"wharf-login-cache 1\n1799999950\ta@example.test\n", "line 2: not three fields"},
        {"wharf-login-cache 1\n-1\ta@example.test\t$y$j9T$a$x\n", "line 2: not a date"},
        {"wharf-login-cache 1\n1799999950999\ta@example.test\t$y$j9T$a$x\n", "line 2: not a date"},
        {"wharf-login-cache 1\n1799999950\t\t$y$j9T$a$x\n", "line 2: not an account name"},
        {"wharf-login-cache 1\n1799999950\ta@example.test\t$6$secret hash\n",
         "line 2: not a yescrypt hash"},
        {"wharf-login-cache 1\n1799999950\ta@example.test\t$y$j9T$a$x\textra\n",
         "line 2: not a yescrypt hash"},
        {"wharf-login-cache 1\n1799999950\ta@exam\rple.test\t$y$j9T$a$x\n",
         "line 2: not an account name"},
    };
    char dir[] = "/tmp/wharf-logins-XXXXXX", path[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(dir, path, bad[i].text);
        struct login_cache *c = login_cache_new(10, TTL);
        login_cache_put(c, "kept@example.test", "$y$kept", 100);
        uint64_t v = login_cache_version(c);
        struct buf err = BUF_INIT;
        assert_int_equal(login_cache_load(c, path, 100, WALL, NULL, &err), -1);
        if (strstr(buf_cstr(&err), bad[i].why) == NULL)
            fail_msg("file %zu: \"%s\" does not say \"%s\"", i, buf_cstr(&err), bad[i].why);
        assert_non_null(strstr(buf_cstr(&err), path));
        assert_null(strstr(buf_cstr(&err), "$y$"));
        assert_null(strstr(buf_cstr(&err), "secret"));
        assert_int_equal(login_cache_version(c), v);
        assert_int_equal(login_cache_size(c), 1);
        assert_hash(c, "a@example.test", NULL, 100);
        login_cache_free(c);
        buf_free(&err);
    }
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl_and_replace),
        cmocka_unit_test(test_cap_drops_the_oldest),
        cmocka_unit_test(test_refused_password_is_dropped),
        cmocka_unit_test(test_file_round_trip),
        cmocka_unit_test(test_bad_files_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
