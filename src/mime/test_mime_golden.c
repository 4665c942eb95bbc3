/*
 * test_mime_golden.c - ENVELOPE and BODYSTRUCTURE of every NAME.eml in a
 * directory compared byte for byte with NAME.envelope / NAME.bodystructure,
 * which Dovecot 2.3.19 produced (doveadm fetch imap.envelope
 * imap.bodystructure), and the sections in NAME.sections ("SPEC\nLEN\nBYTES\n"
 * per spec) with what Dovecot's IMAP server sent for BODY.PEEK[SPEC]. The messages
 * (tests/fuzz/corpus/mime_dovecot/) were generated with CPython's email package: nested
 * message/rfc822, multipart alternative and mixed, QP and base64, eight charsets, RFC 2231 file
 * names, LF and CRLF line ends. usage: test_mime_golden DIR
 */
#include "mime/mime.h"

#include "base/alloc.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *golden_dir;

static char *file_read(const char *dir, const char *name, const char *ext, size_t *len_r)
{
    struct buf path = BUF_INIT, data = BUF_INIT;
    buf_printf(&path, "%s/%s%s", dir, name, ext);
    FILE *f = fopen(buf_cstr(&path), "rb");
    assert_non_null(f);
    char chunk[4096];
    size_t n;
    buf_init(&data);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&data, chunk, n);
    fclose(f);
    buf_free(&path);
    return buf_steal(&data, len_r);
}

/* What an IMAP server sends for spec: ranges with every bare LF made CRLF
 * (as Dovecot does), a missing part as the empty string. */
static void section_wire(const struct mime_message *m, struct slice spec, struct buf *out)
{
    struct mime_section sec;
    buf_init(&sec.built);
    buf_reset(out);
    switch (mime_section_locate(m, spec, &sec)) {
    case MIME_SECTION_RANGE:
        for (size_t k = 0; k < sec.len; k++) {
            char c = m->data.ptr[sec.start + k];
            if (c == '\n' && (k == 0 || m->data.ptr[sec.start + k - 1] != '\r'))
                buf_append_byte(out, '\r');
            buf_append_byte(out, c);
        }
        break;
    case MIME_SECTION_BUILT:
        buf_append_slice(out, buf_slice(&sec.built));
        break;
    case MIME_SECTION_NONE:
        break;
    case MIME_SECTION_BAD:
        fail_msg("spec %.*s refused", (int)spec.len, spec.ptr);
    }
    buf_free(&sec.built);
}

static size_t check_sections(const struct mime_message *m, const char *s, size_t len)
{
    size_t i = 0, count = 0;
    struct buf got = BUF_INIT;
    buf_init(&got);
    while (i < len) {
        const char *nl = memchr(s + i, '\n', len - i);
        assert_non_null(nl);
        struct slice spec = slice_make(s + i, (size_t)(nl - s) - i);
        char *end;
        size_t n = strtoul(nl + 1, &end, 10);
        assert_true(*end == '\n' && (size_t)(end + 1 - s) + n < len);
        section_wire(m, spec, &got);
        print_message("  [%.*s]\n", (int)spec.len, spec.ptr);
        assert_int_equal(got.len, n);
        assert_memory_equal(got.data, end + 1, n);
        i = (size_t)(end + 1 - s) + n + 1;
        count++;
    }
    buf_free(&got);
    return count;
}

static void test_golden(void **state)
{
    DIR *d = opendir(golden_dir);
    assert_non_null(d);
    struct dirent *e;
    unsigned count = 0;
    size_t nsections = 0;
    struct buf out = BUF_INIT;
    buf_init(&out);
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".eml") != 0)
            continue;
        char *base = xstrndup(e->d_name, nl - 4);
        size_t len, elen, blen;
        char *msg = file_read(golden_dir, base, ".eml", &len);
        char *env = file_read(golden_dir, base, ".envelope", &elen);
        char *bs = file_read(golden_dir, base, ".bodystructure", &blen);
        struct mime_message m;
        mime_parse(&m, slice_make(msg, len), NULL);
        print_message("%s\n", base);
        buf_reset(&out);
        mime_imap_envelope(&out, &m, m.root);
        assert_string_equal(buf_cstr(&out), env);
        buf_reset(&out);
        mime_imap_bodystructure(&out, &m, m.root, true);
        assert_string_equal(buf_cstr(&out), bs);
        size_t slen;
        char *secs = file_read(golden_dir, base, ".sections", &slen);
        nsections += check_sections(&m, secs, slen);
        free(secs);
        mime_message_free(&m);
        free(msg);
        free(env);
        free(bs);
        free(base);
        count++;
    }
    closedir(d);
    buf_free(&out);
    print_message("%u messages, %zu sections\n", count, nsections);
    assert_true(count >= 10 && nsections >= 10 * count);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    golden_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
