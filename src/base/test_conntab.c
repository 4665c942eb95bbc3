/*
 * test_conntab.c - the shared connection-count table: totals over slots,
 * limits, probe collisions, a full row, slot reset after a crash, keys.
 */
#include "base/conntab.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const names[] = {"smtp", "imap"};

static struct conntab *table(unsigned slots)
{
    struct buf err = BUF_INIT;
    struct conntab *t = conntab_create(slots, names, 2, &err);
    assert_non_null(t);
    buf_free(&err);
    return t;
}

static void test_services(void **state)
{
    struct conntab *t = table(4);
    assert_int_equal(conntab_service(t, "imap"), 1);
    assert_int_equal(conntab_service(t, "pop3"), -1);
    assert_string_equal(conntab_service_name(t, 0), "smtp");
    conntab_free(t);
}

/* The per-address limit holds over every slot, exactly at the limit. */
static void test_counts_over_slots(void **state)
{
    struct conntab *t = table(4);
    int a = conntab_slot_claim(t), b = conntab_slot_claim(t);
    assert_true(a >= 0 && b >= 0 && a != b);
    struct conntab_hold h[4];
    uint64_t key = 12345;
    assert_int_equal(conntab_acquire(t, a, 0, key, 100, 3, &h[0]), CONNTAB_OK);
    assert_int_equal(conntab_acquire(t, b, 0, key, 100, 3, &h[1]), CONNTAB_OK);
    assert_int_equal(conntab_acquire(t, a, 0, key, 100, 3, &h[2]), CONNTAB_OK);
    assert_int_equal(conntab_acquire(t, b, 0, key, 100, 3, &h[3]), CONNTAB_TOO_MANY_ADDR);
    assert_int_equal(conntab_key_total(t, key), 3);
    assert_int_equal(conntab_service_total(t, 0), 3);
    assert_int_equal(conntab_service_total(t, 1), 0);
    /* Another service from the same address is counted apart (its key differs). */
    conntab_release(t, b, &h[1]);
    assert_int_equal(conntab_key_total(t, key), 2);
    assert_int_equal(conntab_acquire(t, b, 0, key, 100, 3, &h[1]), CONNTAB_OK);
    for (int i = 0; i < 3; i++)
        conntab_release(t, i == 1 ? b : a, &h[i]);
    assert_int_equal(conntab_key_total(t, key), 0);
    assert_int_equal(conntab_service_total(t, 0), 0);
    conntab_free(t);
}

static void test_service_limit(void **state)
{
    struct conntab *t = table(4);
    int a = conntab_slot_claim(t), b = conntab_slot_claim(t);
    struct conntab_hold h[3];
    assert_int_equal(conntab_acquire(t, a, 1, 1, 2, 0, &h[0]), CONNTAB_OK);
    assert_int_equal(conntab_acquire(t, b, 1, 2, 2, 0, &h[1]), CONNTAB_OK);
    assert_int_equal(conntab_acquire(t, b, 1, 3, 2, 0, &h[2]), CONNTAB_TOO_MANY);
    assert_int_equal(h[2].service, -1);
    conntab_release(t, b, &h[2]); /* a refused hold gives back nothing */
    assert_int_equal(conntab_service_total(t, 1), 2);
    conntab_free(t);
}

/* Keys that start probing at the same cell are kept apart. */
static void test_collisions(void **state)
{
    struct conntab *t = table(2);
    int a = conntab_slot_claim(t);
    struct conntab_hold h[3];
    uint64_t k1 = 7, k2 = 7 + CONNTAB_ADDRS_PER_SLOT, k3 = 7 + 2 * CONNTAB_ADDRS_PER_SLOT;
    assert_int_equal(conntab_acquire(t, a, 0, k1, 0, 1, &h[0]), CONNTAB_OK);
    assert_int_equal(conntab_acquire(t, a, 0, k2, 0, 1, &h[1]), CONNTAB_OK);
    assert_int_not_equal(h[0].cell, h[1].cell);
    assert_int_equal(conntab_key_total(t, k1), 1);
    assert_int_equal(conntab_key_total(t, k2), 1);
    assert_int_equal(conntab_key_total(t, k3), 0);
    /* k1 leaves: its cell is reused by k3, k2 behind it is still found. */
    conntab_release(t, a, &h[0]);
    assert_int_equal(conntab_acquire(t, a, 0, k3, 0, 1, &h[2]), CONNTAB_OK);
    assert_int_equal(h[2].cell, h[0].cell);
    assert_int_equal(conntab_key_total(t, k2), 1);
    assert_int_equal(conntab_acquire(t, a, 0, k2, 0, 1, &h[0]), CONNTAB_TOO_MANY_ADDR);
    conntab_free(t);
}

/* A full probe window fails open: admitted, counted in the service, untracked. */
static void test_full(void **state)
{
    struct conntab *t = table(2);
    int a = conntab_slot_claim(t);
    struct conntab_hold h;
    for (uint64_t i = 0; i < CONNTAB_MAX_PROBE; i++)
        assert_int_equal(conntab_acquire(t, a, 0, 5 + i * CONNTAB_ADDRS_PER_SLOT, 0, 1, &h),
                         CONNTAB_OK);
    uint64_t extra = 5 + CONNTAB_MAX_PROBE * (uint64_t)CONNTAB_ADDRS_PER_SLOT;
    assert_int_equal(conntab_acquire(t, a, 0, extra, 0, 1, &h), CONNTAB_OK_UNTRACKED);
    assert_int_equal(h.cell, -1);
    assert_int_equal(conntab_service_total(t, 0), CONNTAB_MAX_PROBE + 1);
    conntab_release(t, a, &h);
    assert_int_equal(conntab_service_total(t, 0), CONNTAB_MAX_PROBE);
    conntab_free(t);
}

/* A crashed worker's row is zeroed by the supervisor; the others keep theirs. */
static void test_slot_reset(void **state)
{
    struct conntab *t = table(2);
    int a = conntab_slot_claim(t), b = conntab_slot_claim(t);
    assert_int_equal(conntab_slot_claim(t), -1);
    struct conntab_hold h;
    assert_int_equal(conntab_acquire(t, a, 0, 99, 0, 2, &h), CONNTAB_OK);
    assert_int_equal(conntab_acquire(t, a, 0, 99, 0, 2, &h), CONNTAB_OK);
    assert_int_equal(conntab_acquire(t, b, 0, 99, 0, 2, &h), CONNTAB_TOO_MANY_ADDR);
    conntab_slot_clear(t, a);
    assert_int_equal(conntab_key_total(t, 99), 0);
    assert_int_equal(conntab_service_total(t, 0), 0);
    assert_int_equal(conntab_acquire(t, b, 0, 99, 0, 2, &h), CONNTAB_OK);
    conntab_slot_release(t, b);
    assert_int_equal(conntab_key_total(t, 99), 0);
    assert_int_equal(conntab_slot_claim(t), b);
    conntab_free(t);
}

/* The oldest idle stranger of another row, never this row's, never a cleared row's. */
static void test_idlest_elsewhere(void **state)
{
    struct conntab *t = table(4);
    int a = conntab_slot_claim(t), b = conntab_slot_claim(t), c = conntab_slot_claim(t);
    int64_t stamp = 0;
    assert_int_equal(conntab_idlest_elsewhere(t, a, 1, 1000, &stamp), -1);
    conntab_set_idlest(t, a, 1, 100);
    conntab_set_idlest(t, b, 1, 500);
    conntab_set_idlest(t, c, 1, 300);
    conntab_set_idlest(t, c, 0, 50); /* another service */
    assert_int_equal(conntab_idlest_elsewhere(t, a, 1, 1000, &stamp), c);
    assert_int_equal(stamp, 300);
    assert_int_equal(conntab_idlest_elsewhere(t, c, 1, 1000, &stamp), a);
    /* Not idle long enough: none. */
    assert_int_equal(conntab_idlest_elsewhere(t, a, 1, 299, &stamp), -1);
    conntab_slot_clear(t, c);
    assert_int_equal(conntab_idlest_elsewhere(t, a, 1, 1000, &stamp), b);
    conntab_set_idlest(t, b, 1, 0); /* b has none left */
    assert_int_equal(conntab_idlest_elsewhere(t, a, 1, 1000, &stamp), -1);
    conntab_free(t);
}

/* Two mappings of one memfd see each other's counts (as wharfd and a worker do). */
static void test_attach(void **state)
{
    struct conntab *t = table(2);
    struct buf err = BUF_INIT;
    int a = conntab_slot_claim(t);
    assert_null(conntab_attach(conntab_fd(t), 5, &err));
    struct conntab *w = conntab_attach(dup(conntab_fd(t)), (unsigned)a, &err);
    assert_non_null(w);
    struct conntab_hold h;
    assert_int_equal(conntab_acquire(w, a, 1, 42, 0, 0, &h), CONNTAB_OK);
    assert_int_equal(conntab_service_total(t, 1), 1);
    buf_free(&err);
    conntab_free(w);
    conntab_free(t);
}

/*
 * Two processes race for one place thousands of times: whoever holds it must
 * always find itself alone (the check-after-add never admits past the limit).
 */
static void test_race(void **state)
{
    struct conntab *t = table(4);
    int slots[2] = {conntab_slot_claim(t), conntab_slot_claim(t)};
    /* Holders by the test's own count (the table's sums may include a rival's try). */
    _Atomic int *holders =
        mmap(NULL, sizeof(*holders), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(holders != MAP_FAILED);
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            int bad = 0;
            for (int n = 0; n < 50000; n++) {
                struct conntab_hold h;
                if (conntab_acquire(t, (unsigned)slots[i], 0, 77, 0, 1, &h) == CONNTAB_OK) {
                    bad += atomic_fetch_add(holders, 1) != 0;
                    atomic_fetch_sub(holders, 1);
                    conntab_release(t, (unsigned)slots[i], &h);
                }
            }
            _exit(bad ? 1 : 0);
        }
    }
    for (int i = 0; i < 2; i++) {
        int st;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_int_equal(conntab_key_total(t, 77), 0);
    assert_int_equal(conntab_service_total(t, 0), 0);
    munmap((void *)holders, sizeof(*holders));
    conntab_free(t);
}

/* wharfd (root) survives a worker that scribbles on the header or tries to shrink the table. */
static void test_hostile_worker(void **state)
{
    struct conntab *t = table(2);
    int fd = conntab_fd(t);
    assert_int_equal(ftruncate(fd, 0), -1);
    unsigned char *raw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(raw != MAP_FAILED);
    memset(raw + 8, 0xff, 8 + CONNTAB_MAX_SERVICES * CONNTAB_SERVICE_NAME_MAX); /* sizes, names */
    munmap(raw, 4096);
    assert_int_equal(conntab_service_total(t, 1), 0);
    assert_string_equal(conntab_service_name(t, 1), "imap");
    assert_int_equal(conntab_service(t, "imap"), 1);
    assert_true(conntab_slot_claim(t) >= 0);
    conntab_free(t);
}

static uint64_t key_of(int family, const char *text)
{
    struct sockaddr_storage ss = {0};
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &in->sin_addr), 1);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
    }
    return conntab_key(0, (struct sockaddr *)&ss);
}

/* IPv6 counts per /64; IPv4-mapped addresses count as IPv4. */
static void test_keys(void **state)
{
    assert_int_equal(key_of(AF_INET6, "2001:db8:1:2::1"), key_of(AF_INET6, "2001:db8:1:2:ffff::9"));
    assert_int_not_equal(key_of(AF_INET6, "2001:db8:1:2::1"), key_of(AF_INET6, "2001:db8:1:3::1"));
    assert_int_equal(key_of(AF_INET6, "::ffff:192.0.2.1"), key_of(AF_INET, "192.0.2.1"));
    assert_int_not_equal(key_of(AF_INET, "192.0.2.1"), key_of(AF_INET, "192.0.2.2"));
    struct sockaddr_in in = {.sin_family = AF_INET};
    assert_int_not_equal(conntab_key(0, (struct sockaddr *)&in),
                         conntab_key(1, (struct sockaddr *)&in));
    assert_int_not_equal(key_of(AF_INET, "0.0.0.0"), 0);
}

/* Per-(user, address) counts after login: over every slot, no service total touched. */
static void test_named_keys(void **state)
{
    struct conntab *t = table(4);
    int a = conntab_slot_claim(t), b = conntab_slot_claim(t);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000201)};
    struct sockaddr_in other = in;
    other.sin_addr.s_addr = htonl(0xc0000202);
    uint64_t alice = conntab_key_named("imap\nalice@example.com", (struct sockaddr *)&in);
    assert_int_not_equal(alice, conntab_key_named("imap\nbob@example.com", (struct sockaddr *)&in));
    assert_int_not_equal(alice,
                         conntab_key_named("imap\nalice@example.com", (struct sockaddr *)&other));
    assert_int_not_equal(alice,
                         conntab_key_named("pop3\nalice@example.com", (struct sockaddr *)&in));
    int cell[3];
    assert_int_equal(conntab_acquire_key(t, a, alice, 2, &cell[0]), CONNTAB_OK);
    assert_int_equal(conntab_acquire_key(t, b, alice, 2, &cell[1]), CONNTAB_OK);
    assert_int_equal(conntab_acquire_key(t, a, alice, 2, &cell[2]), CONNTAB_TOO_MANY_ADDR);
    assert_int_equal(conntab_key_total(t, alice), 2);
    assert_int_equal(conntab_service_total(t, 0) + conntab_service_total(t, 1), 0);
    conntab_release_key(t, b, cell[1]);
    assert_int_equal(conntab_acquire_key(t, a, alice, 2, &cell[2]), CONNTAB_OK);
    conntab_release_key(t, a, cell[0]);
    conntab_release_key(t, a, cell[2]);
    assert_int_equal(conntab_key_total(t, alice), 0);
    conntab_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_services),       cmocka_unit_test(test_counts_over_slots),
        cmocka_unit_test(test_service_limit),  cmocka_unit_test(test_collisions),
        cmocka_unit_test(test_full),           cmocka_unit_test(test_slot_reset),
        cmocka_unit_test(test_attach),         cmocka_unit_test(test_keys),
        cmocka_unit_test(test_hostile_worker), cmocka_unit_test(test_race),
        cmocka_unit_test(test_named_keys),     cmocka_unit_test(test_idlest_elsewhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
