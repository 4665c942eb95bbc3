/*
 * test_ldap_syncmsg.c - unit tests for RFC 4533's values (ldap_syncmsg.c):
 * the request control as OpenLDAP's syncrepl consumer encodes it, a
 * syncStateValue with and without a cookie, each syncInfoValue choice
 * (newcookie, refreshDelete with refreshDone FALSE, refreshPresent with its
 * defaults, syncIdSet of deletes), a syncDoneValue, and values refused
 * (truncated, a UUID that is not 16 bytes, an unknown state or choice).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "directory/ldap_syncmsg.h"

#define U16 "\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff"
#define BYTES(s) (const unsigned char *)(s), sizeof(s) - 1

static void test_request(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    lsync_request(&b, 3, NULL, 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "\x30\x03\x0a\x01\x03", 5);
    buf_reset(&b);
    lsync_request(&b, 3, "rid=000,csn=1", 13);
    assert_memory_equal(b.data, "\x30\x12\x0a\x01\x03\x04\x0drid=000,csn=1", 20);
    buf_reset(&b);
    char big[300];
    memset(big, 'c', sizeof(big));
    lsync_request(&b, 1, big, sizeof(big));
    assert_memory_equal(b.data, "\x30\x82\x01\x33\x0a\x01\x01\x04\x82\x01\x2c", 11);
    assert_int_equal(b.len, 11 + 300);
    buf_free(&b);
}

static void test_state(void **state)
{
    (void)state;
    struct lsync_state_value v;
    assert_int_equal(lsync_parse_state(BYTES("\x30\x19\x0a\x01\x01\x04\x10" U16 "\x04\x02"
                                             "ck"),
                                       &v),
                     0);
    assert_int_equal(v.state, LSYNC_ADD);
    assert_memory_equal(v.uuid, U16, 16);
    assert_int_equal(v.cookie.n, 2);
    assert_memory_equal(v.cookie.p, "ck", 2);
    assert_int_equal(lsync_parse_state(BYTES("\x30\x16\x0a\x01\x03\x04\x10" U16), &v), -1);
    assert_int_equal(lsync_parse_state(BYTES("\x30\x15\x0a\x01\x03\x04\x10" U16), &v), 0);
    assert_int_equal(v.state, LSYNC_DELETE);
    assert_null(v.cookie.p);
    /* A state beyond delete, a UUID of 15 bytes, trailing bytes. */
    assert_int_equal(lsync_parse_state(BYTES("\x30\x15\x0a\x01\x04\x04\x10" U16), &v), -1);
    assert_int_equal(lsync_parse_state(BYTES("\x30\x14\x0a\x01\x01\x04\x0f"
                                             "0123456789abcde"),
                                       &v),
                     -1);
    assert_int_equal(lsync_parse_state(BYTES("\x30\x15\x0a\x01\x01\x04\x10" U16 "x"), &v), -1);
}

static void test_info(void **state)
{
    (void)state;
    struct lsync_info i;
    assert_int_equal(lsync_parse_info(BYTES("\x80\x03"
                                            "abc"),
                                      &i),
                     0);
    assert_int_equal(i.kind, LSYNC_NEW_COOKIE);
    assert_int_equal(i.cookie.n, 3);
    /* refreshDelete { cookie "c", refreshDone FALSE } */
    assert_int_equal(lsync_parse_info(BYTES("\xa1\x06\x04\x01"
                                            "c\x01\x01\x00"),
                                      &i),
                     0);
    assert_int_equal(i.kind, LSYNC_REFRESH_DELETE);
    assert_false(i.refresh_done);
    assert_int_equal(i.cookie.n, 1);
    /* refreshPresent {}: refreshDone defaults to TRUE */
    assert_int_equal(lsync_parse_info(BYTES("\xa2\x00"), &i), 0);
    assert_int_equal(i.kind, LSYNC_REFRESH_PRESENT);
    assert_true(i.refresh_done);
    assert_null(i.cookie.p);
    /* syncIdSet { refreshDeletes TRUE, { uuid, uuid } } */
    assert_int_equal(
        lsync_parse_info(BYTES("\xa3\x29\x01\x01\xff\x31\x24\x04\x10" U16 "\x04\x10" U16), &i), 0);
    assert_int_equal(i.kind, LSYNC_ID_SET);
    assert_true(i.refresh_deletes);
    assert_int_equal(i.n_uuids, 2);
    unsigned char u[16];
    lsync_uuid_at(&i, 1, u);
    assert_memory_equal(u, U16, 16);
    /* A truncated set, a UUID of 2 bytes, an unknown choice, a long-form UUID header. */
    assert_int_equal(lsync_parse_info(BYTES("\xa3\x07\x31\x24\x04\x10" U16), &i), -1);
    assert_int_equal(lsync_parse_info(BYTES("\xa3\x06\x31\x04\x04\x02xy"), &i), -1);
    assert_int_equal(lsync_parse_info(BYTES("\xa4\x00"), &i), -1);
    assert_int_equal(lsync_parse_info(BYTES("\xa3\x15\x31\x13\x04\x81\x10" U16), &i), -1);
    assert_int_equal(lsync_parse_info(BYTES(""), &i), -1);
}

static void test_done(void **state)
{
    (void)state;
    struct lsync_bytes c;
    bool deletes = true;
    assert_int_equal(lsync_parse_done(BYTES("\x30\x00"), &c, &deletes), 0);
    assert_null(c.p);
    assert_false(deletes);
    assert_int_equal(lsync_parse_done(BYTES("\x30\x07\x04\x02"
                                            "ck\x01\x01\x01"),
                                      &c, &deletes),
                     0);
    assert_int_equal(c.n, 2);
    assert_true(deletes);
    assert_int_equal(lsync_parse_done(BYTES("\x30\x08\x04\x02"
                                            "ck\x01\x01\x01"),
                                      &c, &deletes),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_done),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
