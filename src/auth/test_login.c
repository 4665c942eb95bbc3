/*
 * test_login.c - unit tests for the SASL exchange of the login kit
 * (auth_login.h, struct auth_sasl): PLAIN with and without an initial
 * response, LOGIN's two prompts, cancel, malformed responses, mechanisms
 * not on offer, and the mechanism list the protocols advertise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_login.h"
#include "base/base64.h"

static struct slice b64(const void *raw, size_t len, struct buf *tmp)
{
    buf_reset(tmp);
    base64_encode(raw, len, tmp);
    return buf_slice(tmp);
}

#define B64(lit) b64(lit, sizeof(lit) - 1, &f->tmp)

/* The exchange, its output and a scratch buffer; each test picks the mechanisms. */
struct fix {
    struct auth_sasl x;
    struct auth_sasl_out o;
    struct buf tmp;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    auth_sasl_out_init(&f->o);
    buf_init(&f->tmp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    auth_sasl_out_free(&f->o);
    auth_sasl_free(&f->x);
    buf_free(&f->tmp);
    free(f);
    return 0;
}

static void expect_creds(struct auth_sasl_out *o, const char *zid, const char *cid, const char *pw)
{
    assert_string_equal(buf_cstr(&o->creds.authzid), zid);
    assert_string_equal(buf_cstr(&o->creds.authcid), cid);
    assert_string_equal(buf_cstr(&o->creds.passwd), pw);
}

static void test_plain_initial_response(void **state)
{
    struct fix *f = *state;
    auth_sasl_init(&f->x, AUTH_MECH_PLAIN, 255);
    assert_int_equal(auth_sasl_start(&f->x, SLICE_LIT("plain"), B64("\0tim\0secret"), &f->o),
                     AUTH_SASL_CHECK);
    assert_string_equal(f->x.mech, "PLAIN");
    expect_creds(&f->o, "", "tim", "secret");
    assert_false(f->x.want_line);
}

static void test_plain_challenge(void **state)
{
    struct fix *f = *state;
    auth_sasl_init(&f->x, AUTH_MECH_PLAIN, 255);
    assert_int_equal(auth_sasl_start(&f->x, SLICE_LIT("PLAIN"), SLICE_NULL, &f->o),
                     AUTH_SASL_CHALLENGE);
    assert_string_equal(f->o.challenge, "");
    assert_true(f->x.want_line);
    assert_int_equal(auth_sasl_step(&f->x, B64("zid\0tim\0pw"), &f->o), AUTH_SASL_CHECK);
    expect_creds(&f->o, "zid", "tim", "pw");
    /* a line nobody asked for */
    assert_int_equal(auth_sasl_step(&f->x, B64("\0a\0b"), &f->o), AUTH_SASL_REFUSED);
}

static void test_login_two_prompts(void **state)
{
    struct fix *f = *state;
    auth_sasl_init(&f->x, AUTH_MECH_PLAIN | AUTH_MECH_LOGIN, 255);
    assert_int_equal(auth_sasl_start(&f->x, SLICE_LIT("LOGIN"), SLICE_NULL, &f->o),
                     AUTH_SASL_CHALLENGE);
    assert_string_equal(f->o.challenge, SASL_LOGIN_PROMPT_USER);
    assert_int_equal(auth_sasl_step(&f->x, B64("tim"), &f->o), AUTH_SASL_CHALLENGE);
    assert_string_equal(f->o.challenge, SASL_LOGIN_PROMPT_PASS);
    assert_int_equal(auth_sasl_step(&f->x, B64("secret"), &f->o), AUTH_SASL_CHECK);
    assert_string_equal(f->x.mech, "LOGIN");
    expect_creds(&f->o, "", "tim", "secret");
    assert_false(f->x.have_user);
    auth_sasl_out_free(&f->o);

    /* the user name as initial response (RFC 4954 allows it) */
    auth_sasl_out_init(&f->o);
    assert_int_equal(auth_sasl_start(&f->x, SLICE_LIT("login"), B64("ann"), &f->o),
                     AUTH_SASL_CHALLENGE);
    assert_string_equal(f->o.challenge, SASL_LOGIN_PROMPT_PASS);
    assert_int_equal(auth_sasl_step(&f->x, B64("pw"), &f->o), AUTH_SASL_CHECK);
    assert_string_equal(buf_cstr(&f->o.creds.authcid), "ann");
}

static void test_refusals(void **state)
{
    struct fix *f = *state;
    auth_sasl_init(&f->x, AUTH_MECH_PLAIN, 8);
    /* LOGIN is not on offer here, nor CRAM-MD5 anywhere */
    assert_int_equal(auth_sasl_start(&f->x, SLICE_LIT("LOGIN"), SLICE_NULL, &f->o),
                     AUTH_SASL_UNSUPPORTED);
    assert_int_equal(auth_sasl_start(&f->x, SLICE_LIT("CRAM-MD5"), SLICE_NULL, &f->o),
                     AUTH_SASL_UNSUPPORTED);
    assert_int_equal(auth_sasl_start(&f->x, SLICE_LIT("PLAIN"), SLICE_NULL, &f->o),
                     AUTH_SASL_CHALLENGE);
    assert_int_equal(auth_sasl_step(&f->x, SLICE_LIT("*"), &f->o), AUTH_SASL_REFUSED);
    assert_int_equal(f->o.status, SASL_CANCEL);
    assert_false(f->x.want_line);
    assert_int_equal(auth_sasl_start(&f->x, SLICE_LIT("PLAIN"), SLICE_LIT("!!!!"), &f->o),
                     AUTH_SASL_REFUSED);
    assert_int_equal(f->o.status, SASL_BAD_BASE64);
    /* a field over max_field is refused, not truncated */
    assert_int_equal(auth_sasl_start(&f->x, SLICE_LIT("PLAIN"), B64("\0tim\0longpassword"), &f->o),
                     AUTH_SASL_REFUSED);
    assert_int_equal(f->o.status, SASL_TOO_LONG);
    auth_sasl_free(&f->x);

    auth_sasl_init(&f->x, AUTH_MECH_LOGIN, 255);
    assert_int_equal(auth_sasl_start(&f->x, SLICE_LIT("LOGIN"), SLICE_NULL, &f->o),
                     AUTH_SASL_CHALLENGE);
    assert_int_equal(auth_sasl_step(&f->x, B64("tim"), &f->o), AUTH_SASL_CHALLENGE);
    assert_int_equal(auth_sasl_step(&f->x, SLICE_LIT("*"), &f->o), AUTH_SASL_REFUSED);
    assert_int_equal(f->o.status, SASL_CANCEL);
    assert_false(f->x.have_user); /* the user name is forgotten */
}

static void test_mechanism_list(void **state)
{
    (void)state;
    struct auth_sasl x;
    struct buf b = BUF_INIT;
    auth_sasl_init(&x, AUTH_MECH_PLAIN | AUTH_MECH_LOGIN, 255);
    auth_sasl_mechanisms(&x, " ", &b);
    assert_string_equal(buf_cstr(&b), " PLAIN LOGIN");
    buf_reset(&b);
    auth_sasl_free(&x);
    auth_sasl_init(&x, AUTH_MECH_PLAIN, 255);
    auth_sasl_mechanisms(&x, " AUTH=", &b);
    assert_string_equal(buf_cstr(&b), " AUTH=PLAIN");
    buf_free(&b);
    auth_sasl_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_initial_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_challenge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_two_prompts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test(test_mechanism_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
