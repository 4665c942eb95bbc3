/*
 * fuzz_smtp_reply.c - the SMTP client's reply parser and EHLO keyword parser
 * on arbitrary server output, fed in pieces whose sizes come from the input.
 */
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_client_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 7) + 1;
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p, 512, 20);
    size_t off = 1;
    while (off < size) {
        size_t n = size - off < step ? size - off : step, used = 0;
        enum smtp_reply_status st = smtp_reply_parse(&p, (const char *)data + off, n, &used);
        if (st == SMTP_REPLY_ERROR)
            break;
        if (used > n)
            __builtin_trap();
        if (st == SMTP_REPLY_DONE) {
            struct smtp_caps caps;
            smtp_caps_parse(&p.reply, &caps);
        }
        off += used;
        if (used == 0 && st != SMTP_REPLY_DONE)
            off += n;
    }
    smtp_reply_parser_free(&p);
    return 0;
}
