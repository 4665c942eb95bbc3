/*
 * fuzz_mime.c - libFuzzer target: parse arbitrary bytes as a message, build
 * ENVELOPE and BODYSTRUCTURE, locate sections and decode every part.
 *
 * Checks invariants besides crashes: every part's ranges lie inside the
 * input and nest inside their parent. Must never write to the input.
 */
#include "mime/mime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_part(const struct mime_message *msg, const struct mime_part *p, struct buf *tmp)
{
    if (p->hdr_start + p->hdr_len != p->body_start || p->body_start + p->body_len > msg->data.len)
        abort();
    if (p->parent != NULL &&
        (p->hdr_start < p->parent->body_start ||
         p->body_start + p->body_len > p->parent->body_start + p->parent->body_len))
        abort();
    const struct mime_field *cte = mime_part_field(msg, p, "Content-Transfer-Encoding");
    buf_reset(tmp);
    mime_decode_cte(mime_field_value(msg, cte), mime_part_body(msg, p), tmp);
    for (size_t i = 0; i < p->field_count; i++) {
        buf_reset(tmp);
        mime_decode_words(mime_field_value(msg, &msg->fields[p->field_first + i]), tmp);
    }
    for (const struct mime_part *c = p->children; c != NULL; c = c->next)
        check_part(msg, c, tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const specs[] = {
        "",
        "TEXT",
        "HEADER",
        "1",
        "1.MIME",
        "2",
        "1.1",
        "1.2.HEADER",
        "2.TEXT",
        "3.1.MIME",
        "HEADER.FIELDS (From Subject)",
        "1.HEADER.FIELDS.NOT (To)",
        "2.1.1.2",
    };
    struct mime_message msg;
    struct mime_limits lim;
    mime_limits_default(&lim);
    lim.max_depth = 8; /* keep the output small */
    lim.max_parts = 200;
    mime_parse(&msg, slice_make(data, size), &lim);
    struct buf out = BUF_INIT, tmp = BUF_INIT;
    buf_init(&out);
    buf_init(&tmp);
    mime_imap_envelope(&out, &msg, msg.root);
    mime_imap_bodystructure(&out, &msg, msg.root, true);
    mime_imap_bodystructure(&out, &msg, msg.root, false);
    check_part(&msg, msg.root, &tmp);
    struct mime_section sec;
    buf_init(&sec.built);
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        enum mime_section_result r = mime_section_locate(&msg, slice_from_cstr(specs[i]), &sec);
        if (r == MIME_SECTION_RANGE && sec.start + sec.len > size)
            abort();
    }
    /* the input's first line, used as a section spec */
    const uint8_t *nl = memchr(data, '\n', size);
    mime_section_locate(&msg, slice_make(data, nl ? (size_t)(nl - data) : size), &sec);
    buf_free(&sec.built);
    buf_free(&out);
    buf_free(&tmp);
    mime_message_free(&msg);
    return 0;
}
