/*
 * test_mime_address.c - RFC 5322 address lists in the IMAP ENVELOPE shape.
 *
 * The cases are RFC 5322 appendix A examples plus obsolete and broken forms.
 * Expected strings marked "as Dovecot" are byte for byte what Dovecot 2.3.19
 * gives for the same To: field. Three deliberate differences: Dovecot turns
 * "john . doe @ example . com" into MISSING_MAILBOX garbage (we read the
 * obsolete local part and domain), makes empty list elements (", ,") into
 * MISSING_MAILBOX addresses (RFC 5322 obs-addr-list says to ignore them),
 * and stops after a first group followed by another one without a comma.
 */
#include "mime/mime.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct addr_case {
    const char *field, *want;
};

static const struct addr_case cases[] = {
    {"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
     "((\"Pete\" NIL \"pete\" \"silly.test\"))"}, /* as Dovecot */
    {"A Group(Some people)\n     :Chris Jones <c@(Chris's host.)public.example>,\n         "
     "joe@example.org,\n  John <jdoe@one.test> (my dear friend); (the end of the group)",
     "((NIL NIL \"A Group\" NIL)(\"Chris Jones\" NIL \"c\" \"public.example\")(NIL NIL \"joe\" "
     "\"example.org\")(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL))"}, /* as Dovecot */
    {"\"Mary Smith: Personal Account\" <smith@home.example>",
     "((\"Mary Smith: Personal Account\" NIL \"smith\" \"home.example\"))"}, /* as Dovecot */
    {"Mary Smith <@node.test,@x.test:mary@example.net>",
     "((\"Mary Smith\" \"@node.test,@x.test\" \"mary\" \"example.net\"))"}, /* as Dovecot */
    {"Joe Q. Public <john.q.public@example.com>, Who? <one@y.test>",
     "((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")(\"Who?\" NIL \"one\" "
     "\"y.test\"))"}, /* as Dovecot */
    {"<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
     "((NIL NIL \"boss\" \"nil.test\")({16}\r\nGiant; \"Big\" Box NIL \"sysservices\" "
     "\"example.net\"))"}, /* as Dovecot */
    {"John Doe <jdoe@machine(comment).  example>",
     "((\"John Doe\" NIL \"jdoe\" \"machine.example\"))"}, /* as Dovecot */
    {"Undisclosed recipients:;",
     "((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL NIL))"}, /* as Dovecot */
    {"john . doe @ example . com",
     "((NIL NIL \"john . doe\" \"example.com\"))"},                   /* Dovecot differs, see top */
    {"a@b, , ,c@d,", "((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\"))"}, /* Dovecot differs, see top */
    {"\"\" <x@y>", "((NIL NIL \"x\" \"y\"))"},                        /* as Dovecot */
    {"J\xc3"
     "\xb6"
     "rg <j@x.test>",
     "(({5}\r\nJ\xc3"
     "\xb6"
     "rg NIL \"j\" \"x.test\"))"}, /* as Dovecot */
    {"g1: a@b; g2: ; c@d",
     "((NIL NIL \"g1\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL)(NIL NIL \"g2\" NIL)(NIL NIL NIL "
     "NIL)(NIL NIL \"c\" \"d\"))"}, /* Dovecot differs, see top */
};

static void test_envelope_addresses(void **state)
{
    struct buf msg = BUF_INIT, out = BUF_INIT, want = BUF_INIT;
    buf_init(&msg);
    buf_init(&out);
    buf_init(&want);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&msg);
        buf_reset(&out);
        buf_reset(&want);
        buf_printf(&msg, "To: %s\r\n\r\nx\r\n", cases[i].field);
        buf_printf(&want, "(NIL NIL NIL NIL NIL %s NIL NIL NIL NIL)", cases[i].want);
        struct mime_message m;
        mime_parse(&m, buf_slice(&msg), NULL);
        mime_imap_envelope(&out, &m, m.root);
        print_message("To: %s\n", cases[i].field);
        assert_string_equal(buf_cstr(&out), buf_cstr(&want));
        mime_message_free(&m);
    }
    buf_free(&msg);
    buf_free(&out);
    buf_free(&want);
}

static void test_sender_defaults(void **state)
{
    static const char msg[] = "From: a@b\r\nReply-To: \r\nSender: ,\r\nSubject:\r\n\r\n";
    struct mime_message m;
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_parse(&m, SLICE_LIT(msg), NULL);
    mime_imap_envelope(&out, &m, m.root);
    /* empty Sender / Reply-To fall back to From (RFC 3501 7.4.2; Dovecot makes
     * the "," an address MISSING_MAILBOX); an empty Subject is "" */
    assert_string_equal(buf_cstr(&out), "(NIL \"\" ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) "
                                        "((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)");
    buf_free(&out);
    mime_message_free(&m);
}

static void test_parse_slices(void **state)
{
    struct mime_address_list l;
    mime_address_parse(SLICE_LIT("G: \"x y\" <u@h>;"), &l);
    assert_int_equal(l.n, 3);
    assert_null(l.v[0].host.ptr);
    assert_int_equal(l.v[0].mailbox.len, 1);
    assert_int_equal(l.v[1].name.len, 3);
    assert_memory_equal(l.v[1].name.ptr, "x y", 3);
    assert_null(l.v[1].adl.ptr);
    assert_null(l.v[2].name.ptr);
    assert_null(l.v[2].mailbox.ptr);
    mime_address_list_free(&l);

    /* unterminated group, quote and comment still give balanced groups */
    mime_address_parse(SLICE_LIT("G: a@b, \"unterminated (x"), &l);
    assert_int_equal(l.n, 4);
    assert_null(l.v[3].mailbox.ptr);
    mime_address_list_free(&l);
    mime_address_parse(SLICE_LIT("(((("), &l);
    assert_int_equal(l.n, 0);
    mime_address_list_free(&l);
    mime_address_parse(SLICE_NULL, &l);
    assert_int_equal(l.n, 0);
    mime_address_list_free(&l);
}

static void test_bounded(void **state)
{
    struct buf raw = BUF_INIT;
    buf_init(&raw);
    buf_append_cstr(&raw, "G: ");
    for (int i = 0; i < 3000; i++)
        buf_printf(&raw, "u%d@h, ", i);
    buf_append_cstr(&raw, ";");
    struct mime_address_list l;
    mime_address_parse(buf_slice(&raw), &l);
    /* the limit, plus the group end marker that keeps the list balanced */
    assert_int_equal(l.n, MIME_MAX_ADDRESSES + 1);
    assert_null(l.v[l.n - 1].mailbox.ptr);
    mime_address_list_free(&l);
    buf_free(&raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_addresses),
        cmocka_unit_test(test_sender_defaults),
        cmocka_unit_test(test_parse_slices),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
