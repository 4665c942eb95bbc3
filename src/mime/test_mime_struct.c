/*
 * test_mime_struct.c - the serialized parse (mime_struct.c): what it holds
 * for a real message (protocol-neutral values, offsets), that the IMAP forms
 * rendered from a decoded blob are Dovecot's, and that the decoder refuses
 * every cut, extended, retagged or damaged blob (older stores kept IMAP text
 * in the same column) without reading outside it.
 */
#include "mime/mime.h"
#include "mime/test_mime_samples.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void encode(const char *data, size_t len, struct buf *blob)
{
    struct mime_message m;
    mime_parse(&m, slice_make(data, len), NULL);
    buf_init(blob);
    mime_struct_encode(blob, &m);
    mime_message_free(&m);
}

/* st renders as Dovecot's ENVELOPE and BODYSTRUCTURE. */
static void check_render(const struct mime_struct *st, const char *env, const char *bs)
{
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_imap_struct_envelope(&out, st, 0);
    assert_string_equal(buf_cstr(&out), env);
    buf_reset(&out);
    mime_imap_struct_bodystructure(&out, st, 0, true);
    assert_string_equal(buf_cstr(&out), bs);
    buf_free(&out);
}

/* SAMPLE_A in CRLF form (the caller frees it) and its blob. */
static char *sample_a_blob(struct buf *blob, size_t *n_r)
{
    char *s = sample_crlf(SAMPLE_A, n_r);
    encode(s, *n_r, blob);
    return s;
}

static bool slice_is(struct slice s, const char *want)
{
    return s.ptr != NULL && slice_eq(s, slice_from_cstr(want));
}

static void test_sample_a_fields(void **state)
{
    (void)state;
    size_t n;
    struct buf blob;
    char *s = sample_a_blob(&blob, &n);
    struct mime_struct st;
    assert_true(mime_struct_decode(buf_slice(&blob), &st));
    assert_int_equal(st.nparts, 5);
    const struct mime_struct_part *root = &st.parts[0];
    assert_int_equal(root->kind, MIME_MULTIPART);
    assert_int_equal(root->nchildren, 2);
    assert_int_equal(root->hdr_start, 0);
    assert_int_equal(root->body_start, root->hdr_len);
    assert_int_equal(root->body_start + root->body_len, n);
    /* the envelope as the message says it: raw, encoded-words kept */
    const struct mime_struct_envelope *e = root->env;
    assert_non_null(e);
    assert_true(slice_is(e->date, "Tue, 12 Mar 2024 10:15:00 +0100"));
    assert_true(slice_is(e->subject, "=?UTF-8?Q?R=C3=A9union_du_lundi?= =?UTF-8?Q?_=E2=80=94_"
                                     "ordre?=\r\n du jour"));
    assert_true(slice_is(e->message_id, "<20240312091500.12345@example.org>"));
    assert_int_equal(e->naddr[MIME_ADDR_FROM], 1);
    assert_true(slice_is(e->addr[MIME_ADDR_FROM][0].mailbox, "alice"));
    assert_true(slice_is(e->addr[MIME_ADDR_FROM][0].host, "example.org"));
    assert_int_equal(e->naddr[MIME_ADDR_SENDER], 0); /* no default here: IMAP's rule */
    assert_int_equal(e->naddr[MIME_ADDR_TO], 2);
    assert_int_equal(e->naddr[MIME_ADDR_CC], 4); /* group start, two, group end */
    assert_null(e->addr[MIME_ADDR_CC][0].host.ptr);
    assert_true(slice_is(e->in_reply_to, "<prev@example.net>"));
    assert_int_equal(e->naddr[MIME_ADDR_BCC], 0);
    /* the first child: multipart/alternative holding text/plain and text/html */
    size_t alt = root->first_child;
    assert_int_equal(alt, 1);
    assert_true(slice_is(st.parts[alt].subtype, "alternative"));
    size_t plain = st.parts[alt].first_child;
    assert_int_equal(st.parts[plain].parent, alt);
    assert_true(slice_is(st.parts[plain].encoding, "quoted-printable"));
    assert_int_equal(st.parts[plain].nparams, 2);
    assert_true(slice_is(st.parts[plain].params[0].name, "charset"));
    assert_null(st.parts[plain].env);
    assert_null(st.parts[plain].id.ptr);
    /* the attachment: RFC 2231 parameters kept encoded, the rest unfolded */
    size_t pdf = st.parts[alt].next;
    assert_int_equal(pdf, 4);
    assert_int_equal(st.parts[pdf].next, MIME_STRUCT_NONE);
    assert_true(slice_is(st.parts[pdf].disposition, "attachment"));
    assert_true(slice_is(st.parts[pdf].id, "<att1@example.org>"));
    assert_true(slice_is(st.parts[pdf].description, "=?ISO-8859-1?Q?R=E9union?="));
    bool found = false;
    for (size_t i = 0; i < st.parts[pdf].ndisp_params; i++)
        if (slice_is(st.parts[pdf].disp_params[i].name, "filename*"))
            found = slice_is(st.parts[pdf].disp_params[i].value,
                             "UTF-8''R%C3%A9union%20du%20lundi.pdf");
    assert_true(found);
    /* the bytes of a part are where the offsets say */
    struct slice body = slice_make(s + st.parts[plain].body_start, st.parts[plain].body_len);
    assert_true(body.len > 8 && memcmp(body.ptr, "Bonjour ", 8) == 0);
    /* and IMAP renders what Dovecot says */
    check_render(&st, A_ENVELOPE, A_BODYSTRUCTURE);
    mime_struct_free(&st);
    buf_free(&blob);
    free(s);
}

static void test_samples_render_as_dovecot(void **state)
{
    (void)state;
    const char *const samples[][3] = {{SAMPLE_B, B_ENVELOPE, B_BODYSTRUCTURE},
                                      {SAMPLE_D, D_ENVELOPE, D_BODYSTRUCTURE}};
    for (size_t i = 0; i < 2; i++) {
        struct buf blob;
        encode(samples[i][0], strlen(samples[i][0]), &blob);
        struct mime_struct st;
        assert_true(mime_struct_decode(buf_slice(&blob), &st));
        check_render(&st, samples[i][1], samples[i][2]);
        mime_struct_free(&st);
        buf_free(&blob);
    }
}

/* Every prefix and every one-byte extension is refused; byte damage never
 * reads outside the blob (ASan watches) and what is accepted renders. */
static void test_decoder_is_strict(void **state)
{
    (void)state;
    size_t n;
    struct buf blob;
    char *s = sample_a_blob(&blob, &n);
    struct mime_struct st;
    for (size_t len = 0; len < blob.len; len++) {
        char *cut = xmalloc(len ? len : 1); /* exact size: ASan sees any overread */
        memcpy(cut, blob.data, len);
        assert_false(mime_struct_decode(slice_make(cut, len), &st));
        assert_int_equal(st.nparts, 0);
        free(cut);
    }
    struct buf longer = BUF_INIT;
    buf_init(&longer);
    buf_append_slice(&longer, buf_slice(&blob));
    buf_append_byte(&longer, 0);
    assert_false(mime_struct_decode(buf_slice(&longer), &st));
    buf_free(&longer);
    struct buf out = BUF_INIT;
    buf_init(&out);
    for (size_t i = 0; i < blob.len; i++) {
        static const unsigned char flips[] = {0x01, 0x80, 0xff};
        for (size_t f = 0; f < sizeof(flips); f++) {
            char *bad = xmalloc(blob.len);
            memcpy(bad, blob.data, blob.len);
            bad[i] = (char)(bad[i] ^ flips[f]);
            if (mime_struct_decode(slice_make(bad, blob.len), &st)) {
                buf_reset(&out);
                mime_imap_struct_envelope(&out, &st, 0);
                mime_imap_struct_bodystructure(&out, &st, 0, true);
                mime_struct_free(&st);
            }
            free(bad);
        }
    }
    buf_free(&out);
    buf_free(&blob);
    free(s);
}

static void test_older_text_and_other_versions_refused(void **state)
{
    (void)state;
    struct mime_struct st;
    /* what stores before this format kept in the column */
    assert_false(
        mime_struct_decode(SLICE_LIT("(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)"), &st));
    assert_false(mime_struct_decode(SLICE_LIT("(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"), &st));
    assert_false(mime_struct_decode(SLICE_NULL, &st));
    struct buf blob;
    encode("Subject: x\r\n\r\nbody\r\n", 19, &blob);
    assert_true(mime_struct_decode(buf_slice(&blob), &st));
    mime_struct_free(&st);
    blob.data[3]++; /* the version byte */
    assert_false(mime_struct_decode(buf_slice(&blob), &st));
    buf_free(&blob);
}

/* Hand-made blobs: a tree a renderer could not walk is refused. */
static void test_bad_trees_refused(void **state)
{
    (void)state;
    /* tag, 2 parts; root leaf (flags: env) with its envelope; a child of the leaf */
#define TAG "\0WS\1"
#define OFFS "\0\0\0\0\0\0"
#define PART_REST "\0\0" /* type, subtype */ "\0" /* params */ "\0" /* disp */ "\0\0\0\0\0\0"
#define ENV                                                                                        \
    "\0\0\0\0"                                                                                     \
    "\0\0\0\0\0\0"
    static const char leaf_with_child[] = TAG "\2"
                                              "\0\2" OFFS PART_REST ENV "\0\0\1" OFFS PART_REST;
    struct mime_struct st;
    assert_false(mime_struct_decode(slice_make(leaf_with_child, sizeof(leaf_with_child) - 1), &st));
    /* the same with a multipart root is a tree */
    static const char multi[] = TAG "\2"
                                    "\1\2" OFFS PART_REST ENV "\0\0\1" OFFS PART_REST;
    assert_true(mime_struct_decode(slice_make(multi, sizeof(multi) - 1), &st));
    assert_int_equal(st.parts[0].first_child, 1);
    mime_struct_free(&st);
    /* a part under a multipart claiming an envelope */
    static const char stray_env[] = TAG "\2"
                                        "\1\2" OFFS PART_REST ENV "\0\2\1" OFFS PART_REST ENV;
    assert_false(mime_struct_decode(slice_make(stray_env, sizeof(stray_env) - 1), &st));
    /* a parent index pointing forward */
    static const char forward[] = TAG "\2"
                                      "\1\2" OFFS PART_REST ENV "\0\0\2" OFFS PART_REST;
    assert_false(mime_struct_decode(slice_make(forward, sizeof(forward) - 1), &st));
    /* a message/rfc822 part with two children */
    static const char two[] =
        TAG "\3"
            "\2\2" OFFS PART_REST ENV "\0\2\1" OFFS PART_REST ENV "\0\2\2" OFFS PART_REST ENV;
    assert_false(mime_struct_decode(slice_make(two, sizeof(two) - 1), &st));
    /* more bare LFs than bytes */
    static const char lfs[] = TAG "\1"
                                  "\0\2"
                                  "\0\0\0\1\0\0" PART_REST ENV;
    assert_false(mime_struct_decode(slice_make(lfs, sizeof(lfs) - 1), &st));
}

/* A blob of n message/rfc822 parts, each the child of the one before. */
static void chain(struct buf *b, size_t n)
{
    static const char part[] = OFFS PART_REST ENV;
    buf_init(b);
    buf_append(b, "\0WS\1", 4);
    buf_append_byte(b, (char)(0x80 | (n & 0x7f)));
    buf_append_byte(b, (char)(n >> 7));
    for (size_t i = 0; i < n; i++) {
        buf_append_byte(b, MIME_MESSAGE);
        buf_append_byte(b, 2);
        if (i > 0)
            buf_append_byte(b, 1);
        buf_append(b, part, sizeof(part) - 1);
    }
}

/* Deeper than MIME_STRUCT_MAX_DEPTH is refused; the deepest allowed renders. */
static void test_depth_bounded(void **state)
{
    (void)state;
    struct buf b;
    struct mime_struct st;
    chain(&b, MIME_STRUCT_MAX_DEPTH + 2);
    assert_false(mime_struct_decode(buf_slice(&b), &st));
    buf_free(&b);
    size_t n = MIME_STRUCT_MAX_DEPTH + 1;
    chain(&b, n);
    assert_true(mime_struct_decode(buf_slice(&b), &st));
    assert_int_equal(st.parts[n - 1].depth, MIME_STRUCT_MAX_DEPTH);
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_imap_struct_bodystructure(&out, &st, 0, true);
    assert_true(out.len > 0);
    buf_free(&out);
    mime_struct_free(&st);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_a_fields),
        cmocka_unit_test(test_samples_render_as_dovecot),
        cmocka_unit_test(test_decoder_is_strict),
        cmocka_unit_test(test_older_text_and_other_versions_refused),
        cmocka_unit_test(test_bad_trees_refused),
        cmocka_unit_test(test_depth_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
