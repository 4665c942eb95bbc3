/*
 * test_mime_parse.c - structure, offsets and line counts of the MIME parser
 * on real-world-shaped messages (CRLF and LF), malformed input, limits, and
 * every truncation of the samples (run under ASan: no read out of bounds).
 */
#include "mime/mime.h"
#include "mime/test_mime_samples.h"

#include "base/alloc.h"
#include "base/config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const struct mime_part *child(const struct mime_part *p, unsigned n)
{
    const struct mime_part *c = p->children;
    while (c != NULL && --n > 0)
        c = c->next;
    assert_non_null(c);
    return c;
}

static void assert_slice(struct slice s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
}

/* The body / MIME header of a part, with LF input written as CRLF back. */
static void assert_body(const struct mime_message *m, const struct mime_part *p, const char *lf)
{
    size_t n;
    char *want = (m->data.len > 0 && memchr(m->data.ptr, '\r', m->data.len)) ? sample_crlf(lf, &n)
                                                                             : xstrdup(lf);
    assert_slice(mime_part_body(m, p), want);
    free(want);
}

static void assert_header(const struct mime_message *m, const struct mime_part *p, const char *lf)
{
    size_t n;
    char *want = (m->data.len > 0 && memchr(m->data.ptr, '\r', m->data.len)) ? sample_crlf(lf, &n)
                                                                             : xstrdup(lf);
    assert_slice(mime_part_header(m, p), want);
    free(want);
}

static void check_sample_a(const char *data, size_t len)
{
    struct mime_message m;
    mime_parse(&m, slice_make(data, len), NULL);
    const struct mime_part *r = m.root;
    assert_int_equal(m.flags, 0);
    assert_int_equal(m.nparts, 5);
    assert_int_equal(r->kind, MIME_MULTIPART);
    assert_int_equal(r->nchildren, 2);
    assert_int_equal(r->hdr_start, 0);
    assert_int_equal(r->body_start + r->body_len, len);
    assert_int_equal(r->field_count, 11);

    const struct mime_part *alt = child(r, 1), *plain = child(alt, 1), *html = child(alt, 2);
    const struct mime_part *pdf = child(r, 2);
    assert_int_equal(alt->kind, MIME_MULTIPART);
    assert_slice(alt->subtype, "alternative");
    assert_header(&m, alt, "Content-Type: multipart/alternative;\n boundary=\"=_inner_2\"\n\n");
    assert_header(&m, plain,
                  "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
                  "Content-Transfer-Encoding: quoted-printable\n\n");
    assert_body(&m, plain, "Bonjour =C3=A0 tous,\nvoici l'ordre du jour.=20\nAlice\n");
    assert_int_equal(plain->body_lines, 3);
    assert_int_equal(mime_part_body_size_crlf(plain), 56);
    assert_body(&m, html, "<html><body><p>Bonjour</p></body></html>\n");
    assert_int_equal(html->body_lines, 1);
    assert_int_equal(mime_part_body_size_crlf(html), 42);
    /* the multipart/alternative body runs to the outer boundary, epilogue included */
    assert_int_equal(alt->body_start, plain->hdr_start - strlen("--=_inner_2\n") -
                                          (data[plain->hdr_start - 2] == '\r' ? 1 : 0));
    assert_body(&m, pdf, "JVBERi0xLjQK");
    assert_int_equal(pdf->body_lines, 0);
    assert_slice(pdf->type, "application");
    assert_slice(pdf->subtype, "pdf");
    mime_message_free(&m);
}

static void test_sample_a_crlf(void **state)
{
    size_t n;
    char *s = sample_crlf(SAMPLE_A, &n);
    check_sample_a(s, n);
    free(s);
}

static void test_sample_a_lf(void **state)
{
    check_sample_a(SAMPLE_A, strlen(SAMPLE_A));
    struct mime_message m;
    mime_parse(&m, slice_from_cstr(SAMPLE_A), NULL);
    /* sizes for IMAP count each bare LF as CRLF: the same as the CRLF form */
    size_t n;
    char *s = sample_crlf(SAMPLE_A, &n);
    assert_int_equal(mime_part_body_size_crlf(m.root) + mime_part_hdr_size_crlf(m.root), n);
    assert_int_equal(m.root->hdr_bare_lf + m.root->body_bare_lf, n - strlen(SAMPLE_A));
    free(s);
    mime_message_free(&m);
}

static void test_sample_b_rfc822(void **state)
{
    size_t n;
    char *s = sample_crlf(SAMPLE_B, &n);
    struct mime_message m;
    mime_parse(&m, slice_make(s, n), NULL);
    assert_int_equal(m.flags, 0);
    const struct mime_part *fwd = child(m.root, 2);
    assert_int_equal(fwd->kind, MIME_MESSAGE);
    assert_int_equal(fwd->nchildren, 1);
    const struct mime_part *inner = fwd->children;
    /* the encapsulated message is exactly the message/rfc822 body */
    assert_int_equal(inner->hdr_start, fwd->body_start);
    assert_int_equal(inner->body_start + inner->body_len, fwd->body_start + fwd->body_len);
    assert_int_equal(mime_part_body_size_crlf(fwd), 338);
    assert_int_equal(fwd->body_lines, 17);
    assert_int_equal(inner->kind, MIME_MULTIPART);
    assert_int_equal(inner->depth, 2);
    assert_body(&m, child(inner, 1), "Lunch at noon?");
    assert_body(&m, child(inner, 2), "<b>Lunch</b> at noon?");
    const struct mime_field *f = mime_part_field(&m, inner, "subject");
    assert_non_null(f);
    assert_slice(mime_field_value(&m, f), " Lunch?");
    assert_slice(mime_field_name(&m, f), "Subject");
    free(s);
    mime_message_free(&m);
}

static void test_sample_d_truncated(void **state)
{
    size_t n;
    char *s = sample_crlf(SAMPLE_D, &n);
    struct mime_message m;
    mime_parse(&m, slice_make(s, n), NULL);
    assert_true(m.flags & MIME_MSG_UNTERMINATED);
    assert_int_equal(m.root->nchildren, 3);
    const struct mime_part *rel = child(m.root, 2);
    assert_int_equal(rel->nchildren, 1); /* closed by the outer boundary */
    assert_body(&m, child(rel, 1), "<p>never closed");
    assert_body(&m, child(m.root, 3), "iVBORw0KGgo=\n");
    free(s);
    mime_message_free(&m);
}

static void test_empty_and_headerless(void **state)
{
    struct mime_message m;
    mime_parse(&m, SLICE_NULL, NULL);
    assert_int_equal(m.nparts, 1);
    assert_int_equal(m.root->hdr_len + m.root->body_len, 0);
    mime_message_free(&m);

    mime_parse(&m, SLICE_LIT("\r\nbody only\r\n"), NULL);
    assert_int_equal(m.root->hdr_len, 2);
    assert_int_equal(m.root->body_len, 11);
    assert_int_equal(m.root->body_lines, 1);
    mime_message_free(&m);

    /* header without the empty line: no body */
    mime_parse(&m, SLICE_LIT("Subject: x\r\nFrom: y"), NULL);
    assert_int_equal(m.root->hdr_len, 19);
    assert_int_equal(m.root->body_len, 0);
    assert_int_equal(m.root->field_count, 2);
    mime_message_free(&m);
}

static void test_folding_and_garbage_lines(void **state)
{
    static const char msg[] = "Subject: a\r\n\tb\r\nnot a header\r\n: empty name\r\n"
                              "X-Bin: \x01\xff\x00z\r\n\r\nbody";
    struct mime_message m;
    mime_parse(&m, slice_make(msg, sizeof(msg) - 1), NULL);
    assert_int_equal(m.root->field_count, 2);
    assert_slice(mime_field_value(&m, mime_part_field(&m, m.root, "SUBJECT")), " a\r\n\tb");
    struct slice v = mime_field_value(&m, mime_part_field(&m, m.root, "x-bin"));
    assert_int_equal(v.len, 5);
    assert_slice(mime_part_body(&m, m.root), "body");
    mime_message_free(&m);
}

static void test_boundary_rules(void **state)
{
    /* preamble, prefix match with trailing junk, close delimiter, epilogue, and a
     * boundary right after the header (empty preamble) */
    static const char msg[] = "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
                              "--b\n\nA\n--b   trailing\n\nB\n\n--b--\nepilogue\n--b\nnot a part\n";
    struct mime_message m;
    mime_parse(&m, SLICE_LIT(msg), NULL);
    assert_int_equal(m.root->nchildren, 2);
    assert_slice(mime_part_body(&m, child(m.root, 1)), "A");
    assert_slice(mime_part_body(&m, child(m.root, 2)), "B\n");
    assert_int_equal(child(m.root, 2)->body_lines, 1);
    assert_int_equal(child(m.root, 2)->body_bare_lf, 1);
    assert_int_equal(m.root->body_start + m.root->body_len, strlen(msg));
    mime_message_free(&m);

    /* boundary line inside a part header ends that header */
    mime_parse(&m, SLICE_LIT("Content-Type: multipart/mixed; boundary=q\n\n--q\nX: 1\n--q\n\nz"),
               NULL);
    assert_int_equal(m.root->nchildren, 2);
    assert_int_equal(child(m.root, 1)->body_len, 0);
    assert_int_equal(child(m.root, 1)->field_count, 1);
    /* the line break before the boundary is the boundary's, even in a header */
    assert_slice(mime_part_header(&m, child(m.root, 1)), "X: 1");
    assert_int_equal(child(m.root, 1)->hdr_bare_lf, 0);
    assert_true(m.flags & MIME_MSG_UNTERMINATED);
    mime_message_free(&m);

    /* a part with an empty body: RFC 2046 body-part := MIME-part-headers
     * [CRLF *OCTET], so the empty line's CRLF is the boundary's and the
     * MIME header ends after the last field (as Dovecot's BODY[1.MIME]);
     * an empty message/rfc822 gets an empty header at the same place */
    mime_parse(&m,
               SLICE_LIT("Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
                         "Content-Type: text/plain\r\n\r\n--q\r\nContent-Type: message/rfc822\r\n"
                         "\r\n--q--\r\n"),
               NULL);
    const struct mime_part *empty = child(m.root, 1), *rfc = child(m.root, 2);
    assert_slice(mime_part_header(&m, empty), "Content-Type: text/plain\r\n");
    assert_int_equal(empty->body_len, 0);
    assert_int_equal(empty->body_start, empty->hdr_start + empty->hdr_len);
    assert_slice(mime_part_header(&m, rfc), "Content-Type: message/rfc822\r\n");
    assert_int_equal(rfc->body_len, 0);
    assert_int_equal(rfc->children->hdr_start, rfc->body_start);
    assert_int_equal(rfc->children->hdr_len + rfc->children->body_len, 0);
    mime_message_free(&m);
}

static void test_no_boundary_and_digest(void **state)
{
    struct mime_message m;
    mime_parse(&m, SLICE_LIT("Content-Type: multipart/mixed\n\n--x\n\nhi\n"), NULL);
    assert_true(m.flags & MIME_MSG_NO_BOUNDARY);
    assert_int_equal(m.root->kind, MIME_MULTIPART);
    assert_int_equal(m.root->nchildren, 0);
    mime_message_free(&m);

    mime_parse(
        &m,
        SLICE_LIT("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: in\n\nx\n--d--\n"),
        NULL);
    const struct mime_part *c = child(m.root, 1);
    assert_int_equal(c->kind, MIME_MESSAGE);
    assert_slice(c->type, "message");
    assert_int_equal(c->children->field_count, 1);
    mime_message_free(&m);
}

static void test_depth_limit(void **state)
{
    /* 100 nested multiparts, then 100 nested message/rfc822 */
    struct buf b = BUF_INIT;
    buf_init(&b);
    for (int i = 0; i < 100; i++)
        buf_printf(&b, "Content-Type: multipart/mixed; boundary=x%dx\n\n--x%dx\n", i, i);
    for (int i = 0; i < 100; i++)
        buf_append_cstr(&b, "Content-Type: message/rfc822\n\n");
    buf_append_cstr(&b, "\nleaf\n");
    struct mime_limits lim;
    mime_limits_default(&lim);
    lim.max_depth = 10;
    struct mime_message m;
    mime_parse(&m, buf_slice(&b), &lim);
    assert_true(m.flags & MIME_MSG_DEPTH_LIMIT);
    unsigned depth = 0;
    for (const struct mime_part *p = m.root; p != NULL; p = p->children)
        depth = p->depth;
    assert_int_equal(depth, 10);
    assert_int_equal(m.nparts, 11);
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_imap_bodystructure(&out, &m, m.root, true);
    assert_true(out.len < 2000);
    buf_free(&out);
    mime_message_free(&m);
    buf_free(&b);
}

static void test_parts_and_fields_limit(void **state)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    buf_append_cstr(&b, "Content-Type: multipart/mixed; boundary=p\n\n");
    for (int i = 0; i < 10000; i++)
        buf_append_cstr(&b, "--p\nX-A: 1\nX-B: 2\n\nbody\n");
    buf_append_cstr(&b, "--p--\n");
    struct mime_limits lim = {.max_depth = 8, .max_parts = 100, .max_fields = 150};
    struct mime_message m;
    mime_parse(&m, buf_slice(&b), &lim);
    assert_true(m.flags & MIME_MSG_PARTS_LIMIT);
    assert_true(m.flags & MIME_MSG_FIELDS_LIMIT);
    assert_int_equal(m.nparts, 100);
    assert_int_equal(m.nfields, 150);
    assert_int_equal(m.root->body_start + m.root->body_len, b.len);
    /* the rest of the message is body of the multipart, like an epilogue */
    const struct mime_part *last = m.root->last_child;
    assert_slice(mime_part_body(&m, last), "body");
    mime_message_free(&m);
    buf_free(&b);
}

static void test_nul_and_8bit(void **state)
{
    static const char msg[] = "Subject: \x00\x80\xff\r\nContent-Type: text/plain\x00; charset=x\r\n"
                              "\r\n\x00\x00\r\n\xfe";
    struct mime_message m;
    mime_parse(&m, slice_make(msg, sizeof(msg) - 1), NULL);
    assert_int_equal(m.root->body_len, 5);
    assert_int_equal(m.root->body_lines, 1);
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_imap_envelope(&out, &m, m.root);
    assert_null(memchr(out.data, '\0', out.len));
    buf_free(&out);
    mime_message_free(&m);
}

/* Every prefix of the samples, each in a buffer of exactly that size. */
static void test_every_truncation(void **state)
{
    const char *samples[] = {SAMPLE_A, SAMPLE_B, SAMPLE_D};
    struct buf out = BUF_INIT;
    struct mime_section sec;
    buf_init(&out);
    buf_init(&sec.built);
    for (size_t k = 0; k < 3; k++) {
        size_t n;
        char *full = sample_crlf(samples[k], &n);
        for (size_t len = 0; len <= n; len++) {
            char *s = xmalloc(len + 1);
            memcpy(s, full, len);
            struct mime_message m;
            mime_parse(&m, slice_make(s, len), NULL);
            buf_reset(&out);
            mime_imap_envelope(&out, &m, m.root);
            mime_imap_bodystructure(&out, &m, m.root, true);
            const char *specs[] = {"1", "2.1", "1.2.MIME", "2.HEADER", "TEXT"};
            for (size_t j = 0; j < 5; j++)
                if (mime_section_locate(&m, slice_from_cstr(specs[j]), &sec) == MIME_SECTION_RANGE)
                    assert_true(sec.start + sec.len <= len);
            assert_int_equal(m.root->body_start + m.root->body_len, len);
            mime_message_free(&m);
            free(s);
        }
        free(full);
    }
    buf_free(&sec.built);
    buf_free(&out);
}

static void test_limits_from_config(void **state)
{
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    struct mime_limits lim, def;
    buf_init(&err);
    config_init(&cfg);
    mime_limits_from_config(&lim, &cfg);
    mime_limits_default(&def);
    /* the option defaults and the constants say the same */
    assert_int_equal(lim.max_depth, def.max_depth);
    assert_int_equal(lim.max_parts, def.max_parts);
    assert_int_equal(lim.max_fields, def.max_fields);
    assert_int_equal(config_load_string(&cfg, "test", "mime_max_depth = 3\n", &err), 0);
    mime_limits_from_config(&lim, &cfg);
    assert_int_equal(lim.max_depth, 3);
    assert_int_not_equal(config_load_string(&cfg, "test", "mime_max_depth = 1\n", &err), 0);
    config_free(&cfg);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_a_crlf),
        cmocka_unit_test(test_sample_a_lf),
        cmocka_unit_test(test_sample_b_rfc822),
        cmocka_unit_test(test_sample_d_truncated),
        cmocka_unit_test(test_empty_and_headerless),
        cmocka_unit_test(test_folding_and_garbage_lines),
        cmocka_unit_test(test_boundary_rules),
        cmocka_unit_test(test_no_boundary_and_digest),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_parts_and_fields_limit),
        cmocka_unit_test(test_nul_and_8bit),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_limits_from_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
