/*
 * fuzz_mime_address.c - libFuzzer target: arbitrary bytes as an address list
 * field value, parsed, written as IMAP strings and RFC 2047-decoded; also
 * as Content-Type parameters in both modes. Must never write to the input.
 */
#include "mime/mime.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice in = slice_make(data, size);
    struct mime_address_list list;
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_address_parse(in, &list);
    int depth = 0;
    for (size_t i = 0; i < list.n; i++) {
        const struct mime_address *a = &list.v[i];
        if (a->host.ptr == NULL && a->mailbox.ptr != NULL)
            depth++;
        else if (a->host.ptr == NULL && a->mailbox.ptr == NULL && --depth < 0)
            abort(); /* a group end without its start */
        mime_imap_nstring(&out, a->name);
        mime_imap_nstring(&out, a->adl);
        mime_imap_nstring(&out, a->mailbox);
        mime_imap_nstring(&out, a->host);
    }
    if (depth != 0)
        abort();
    mime_address_list_free(&list);
    mime_decode_words(in, &out);
    struct mime_params params;
    struct slice v;
    mime_params_parse(in, MIME_PARAMS_DECODE, &v, &params);
    mime_params_free(&params);
    mime_params_parse(in, MIME_PARAMS_JOIN, &v, &params);
    mime_params_free(&params);
    buf_free(&out);
    return 0;
}
