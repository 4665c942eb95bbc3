/*
 * test_sasl.c - unit tests for SASL PLAIN and LOGIN decoding: RFC 4616
 * examples, edge cases, limits, strict base64 (the base64 kit itself is
 * tested in src/base/test_base64.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth/sasl.h"
#include "base/base64.h"

static struct slice b64(const void *raw, size_t len, struct buf *tmp)
{
    buf_reset(tmp);
    base64_encode(raw, len, tmp);
    return buf_slice(tmp);
}

#define PLAIN(lit) b64(lit, sizeof(lit) - 1, &tmp)

static void test_plain_ok(void **state)
{
    struct sasl_plain p;
    struct buf tmp = BUF_INIT;
    sasl_plain_init(&p);
    /* RFC 4616 section 4 examples. */
    assert_int_equal(sasl_plain_decode(PLAIN("\0tim\0tanstaaftanstaaf"), 255, &p), SASL_OK);
    assert_string_equal(p.authzid.data, "");
    assert_string_equal(p.authcid.data, "tim");
    assert_string_equal(p.passwd.data, "tanstaaftanstaaf");
    assert_int_equal(sasl_plain_decode(PLAIN("Ursel\0Kurt\0xipj3plmq"), 255, &p), SASL_OK);
    assert_string_equal(p.authzid.data, "Ursel");
    assert_string_equal(p.authcid.data, "Kurt");
    assert_string_equal(p.passwd.data, "xipj3plmq");
    /* The same as text on the wire. */
    assert_int_equal(sasl_plain_decode(SLICE_LIT("AHRpbQB0YW5zdGFhZnRhbnN0YWFm"), 255, &p),
                     SASL_OK);
    assert_string_equal(p.authcid.data, "tim");
    /* UTF-8 is fine. */
    assert_int_equal(sasl_plain_decode(PLAIN("\0j\xc3\xbcrgen\0p\xe2\x82\xac"), 255, &p), SASL_OK);
    assert_string_equal(p.authcid.data, "j\xc3\xbcrgen");
    sasl_plain_free(&p);
    buf_free(&tmp);
}

static void test_plain_bad(void **state)
{
    struct sasl_plain p;
    struct buf tmp = BUF_INIT;
    sasl_plain_init(&p);
    assert_int_equal(sasl_plain_decode(SLICE_LIT("*"), 255, &p), SASL_CANCEL);
    assert_int_equal(sasl_plain_decode(SLICE_LIT("="), 255, &p), SASL_MALFORMED);
    assert_int_equal(sasl_plain_decode(SLICE_LIT(""), 255, &p), SASL_MALFORMED);
    assert_int_equal(sasl_plain_decode(PLAIN("timtanstaaf"), 255, &p), SASL_MALFORMED);
    assert_int_equal(sasl_plain_decode(PLAIN("\0timtanstaaf"), 255, &p), SASL_MALFORMED);
    assert_int_equal(sasl_plain_decode(PLAIN("\0tim\0pw\0"), 255, &p), SASL_MALFORMED);
    assert_int_equal(sasl_plain_decode(PLAIN("\0\0pw"), 255, &p), SASL_MALFORMED);
    assert_int_equal(sasl_plain_decode(PLAIN("\0tim\0"), 255, &p), SASL_MALFORMED);
    assert_int_equal(sasl_plain_decode(PLAIN("\0\0"), 255, &p), SASL_MALFORMED);
    /* Invalid UTF-8: a lone continuation byte, an overlong NUL, a surrogate. */
    assert_int_equal(sasl_plain_decode(PLAIN("\0t\x80m\0pw"), 255, &p), SASL_MALFORMED);
    assert_int_equal(sasl_plain_decode(PLAIN("\0t\xc0\x80\0pw"), 255, &p), SASL_MALFORMED);
    assert_int_equal(sasl_plain_decode(PLAIN("\0t\xed\xa0\x80\0pw"), 255, &p), SASL_MALFORMED);
    assert_int_equal(sasl_plain_decode(PLAIN("\0tim\0pw\xe2\x82"), 255, &p), SASL_MALFORMED);
    /* Not base64. */
    assert_int_equal(sasl_plain_decode(SLICE_LIT("AHRpbQB0YW5zdGFhZnRhbnN0YWFm="), 255, &p),
                     SASL_BAD_BASE64);
    assert_int_equal(sasl_plain_decode(SLICE_LIT("AHRp bQB0"), 255, &p), SASL_BAD_BASE64);
    assert_int_equal(sasl_plain_decode(SLICE_LIT("A=Rp"), 255, &p), SASL_BAD_BASE64);
    assert_int_equal(sasl_plain_decode(SLICE_LIT("AH=p"), 255, &p), SASL_BAD_BASE64);
    assert_int_equal(sasl_plain_decode(SLICE_LIT("AHRp\r\n"), 255, &p), SASL_BAD_BASE64);
    /* Nothing is left behind after a failure. */
    assert_int_equal(p.authcid.len, 0);
    assert_int_equal(p.passwd.len, 0);
    sasl_plain_free(&p);
    buf_free(&tmp);
}

static void test_plain_limits(void **state)
{
    struct sasl_plain p;
    struct buf tmp = BUF_INIT, raw = BUF_INIT;
    sasl_plain_init(&p);
    char big[300];
    memset(big, 'a', sizeof(big));
    /* Exactly the limit passes, one more fails, for each field. */
    for (size_t field = 0; field < 3; field++) {
        for (size_t extra = 0; extra < 2; extra++) {
            buf_reset(&raw);
            for (size_t i = 0; i < 3; i++) {
                if (i)
                    buf_append_byte(&raw, '\0');
                buf_append(&raw, big, i == field ? 255 + extra : 3);
            }
            assert_int_equal(sasl_plain_decode(b64(raw.data, raw.len, &tmp), 255, &p),
                             extra ? SASL_TOO_LONG : SASL_OK);
        }
    }
    /* A huge response is refused before it is decoded. */
    buf_reset(&raw);
    for (size_t i = 0; i < 4000; i++)
        buf_append_cstr(&raw, "AAAA");
    assert_int_equal(sasl_plain_decode(buf_slice(&raw), 255, &p), SASL_TOO_LONG);
    sasl_plain_free(&p);
    buf_free(&tmp);
    buf_free(&raw);
}

static void test_login(void **state)
{
    struct buf out = BUF_INIT;
    assert_int_equal(sasl_login_decode(SLICE_LIT("dGlt"), 255, &out), SASL_OK);
    assert_string_equal(out.data, "tim");
    assert_int_equal(sasl_login_decode(SLICE_LIT("*"), 255, &out), SASL_CANCEL);
    assert_int_equal(sasl_login_decode(SLICE_LIT(""), 255, &out), SASL_MALFORMED);
    assert_int_equal(sasl_login_decode(SLICE_LIT("AHRpbQ=="), 255, &out), SASL_MALFORMED);
    assert_int_equal(sasl_login_decode(SLICE_LIT("dGlt!"), 255, &out), SASL_BAD_BASE64);
    assert_int_equal(sasl_login_decode(SLICE_LIT("YWFhYQ=="), 3, &out), SASL_TOO_LONG);
    assert_int_equal(sasl_login_decode(SLICE_LIT("YWFh"), 3, &out), SASL_OK);
    assert_int_equal(out.len, 3);
    struct buf enc = BUF_INIT;
    base64_encode("Username:", 9, &enc);
    assert_string_equal(enc.data, SASL_LOGIN_PROMPT_USER);
    buf_reset(&enc);
    base64_encode("Password:", 9, &enc);
    assert_string_equal(enc.data, SASL_LOGIN_PROMPT_PASS);
    buf_free(&enc);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_ok),
        cmocka_unit_test(test_plain_bad),
        cmocka_unit_test(test_plain_limits),
        cmocka_unit_test(test_login),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
