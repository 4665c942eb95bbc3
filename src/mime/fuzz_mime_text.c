/*
 * fuzz_mime_text.c - libFuzzer target: arbitrary bytes as HTML rendered to
 * text (mime_html_text), and as a message whose search text is built
 * (mime_body_text). Rendering never grows its input (each byte yields at
 * most one, an entity fewer) and never starts with a space. Must never
 * write to the input.
 */
#include "mime/mime.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice in = slice_make(data, size);
    struct buf out = BUF_INIT;
    mime_html_text(in, &out);
    if (out.len > size || (out.len > 0 && out.data[0] == ' '))
        abort();
    buf_reset(&out);
    struct mime_message msg;
    mime_parse(&msg, in, NULL);
    mime_body_text(&msg, &out);
    mime_message_free(&msg);
    buf_free(&out);
    return 0;
}
