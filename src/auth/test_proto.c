/*
 * test_proto.c - unit tests for the auth frames: round trips and every way
 * a request can be malformed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth/auth_proto.h"
#include "ipc/frame.h"

static const struct auth_request req = {
    .service = "smtp",
    .mechanism = "PLAIN",
    .authzid = "",
    .username = "alice@example.org",
    .password = "pw",
    .client_addr = "192.0.2.1",
    .secure = true,
};

static void test_request_roundtrip(void **state)
{
    struct buf b = BUF_INIT;
    auth_proto_put_request(&b, 42, &req);
    struct auth_wire_request w;
    const char *why = NULL;
    assert_int_equal(auth_proto_get_request(b.data, b.len, 255, &w, &why), 0);
    assert_int_equal(w.id, 42);
    assert_true(slice_eq(w.username, SLICE_LIT("alice@example.org")));
    assert_true(slice_eq(w.password, SLICE_LIT("pw")));
    assert_true(slice_eq(w.client_addr, SLICE_LIT("192.0.2.1")));
    assert_int_equal(w.flags, AUTH_FLAG_SECURE);
    /* Every truncation fails. */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(auth_proto_get_request(b.data, n, 255, &w, &why), -1);
    /* Trailing bytes fail. */
    buf_append_byte(&b, 'x');
    assert_int_equal(auth_proto_get_request(b.data, b.len, 255, &w, &why), -1);
    assert_string_equal(why, "trailing bytes");
    buf_free(&b);
}

static void test_request_limits(void **state)
{
    struct buf b = BUF_INIT;
    struct auth_wire_request w;
    const char *why;
    struct auth_request r = req;
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    r.password = big;
    auth_proto_put_request(&b, 1, &r);
    assert_int_equal(auth_proto_get_request(b.data, b.len, 255, &w, &why), -1);
    assert_int_equal(auth_proto_get_request(b.data, b.len, 299, &w, &why), 0);
    /* A NUL inside a field. */
    buf_reset(&b);
    ipc_put_u64(&b, 1);
    ipc_put_str(&b, "smtp");
    ipc_put_str(&b, "PLAIN");
    ipc_put_str(&b, "");
    ipc_put_bytes(&b, "al\0ce", 5);
    ipc_put_str(&b, "pw");
    ipc_put_str(&b, "192.0.2.1");
    ipc_put_u64(&b, 0);
    assert_int_equal(auth_proto_get_request(b.data, b.len, 255, &w, &why), -1);
    /* Unknown flags. */
    buf_reset(&b);
    r = req;
    auth_proto_put_request(&b, 1, &r);
    b.data[b.len - 1] = 8; /* 1, 2 and 4 are SECURE, SESSION and END_SESSION */
    assert_int_equal(auth_proto_get_request(b.data, b.len, 255, &w, &why), -1);
    assert_string_equal(why, "unknown flags");
    buf_free(&b);
}

static void test_reply(void **state)
{
    struct buf b = BUF_INIT;
    auth_proto_put_reply(&b, 7, AUTH_OK, "alice@example.org", "whs_0123456789abcdef_x");
    uint64_t id;
    enum auth_result res;
    struct slice acct, sess;
    assert_int_equal(auth_proto_get_reply(b.data, b.len, &id, &res, &acct, &sess), 0);
    assert_int_equal(id, 7);
    assert_int_equal(res, AUTH_OK);
    assert_true(slice_eq(acct, SLICE_LIT("alice@example.org")));
    assert_true(slice_eq(sess, SLICE_LIT("whs_0123456789abcdef_x")));
    buf_reset(&b);
    auth_proto_put_reply(&b, 7, (enum auth_result)99, "", NULL);
    assert_int_equal(auth_proto_get_reply(b.data, b.len, &id, &res, &acct, &sess), -1);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_roundtrip),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
