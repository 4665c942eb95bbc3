/*
 * fuzz_milter.c - the milter reply framing and decoder on arbitrary bytes
 * from a filter, fed in pieces whose sizes come from the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp/milter_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 13) + 1;
    struct buf in;
    buf_init(&in);
    for (size_t off = 1; off < size;) {
        size_t n = size - off < step ? size - off : step;
        buf_append(&in, data + off, n);
        off += n;
        for (;;) {
            char cmd = 0;
            struct slice d;
            size_t used = 0;
            enum milter_take t = milter_take(buf_slice(&in), &cmd, &d, &used);
            if (t == MILTER_TAKE_BAD)
                goto out;
            if (t == MILTER_TAKE_MORE)
                break;
            if (used > in.len || d.ptr + d.len > in.data + in.len)
                __builtin_trap();
            struct milter_reply r;
            if (milter_reply_parse(cmd, d, &r)) {
                /* what a parsed reply promises */
                if (r.name.len && memchr(r.name.ptr, ':', r.name.len))
                    __builtin_trap();
                if (r.cmd == MILTER_R_REPLYCODE && r.text.ptr[0] != '4' && r.text.ptr[0] != '5')
                    __builtin_trap();
            }
            buf_consume(&in, used);
        }
    }
out:
    buf_free(&in);
    return 0;
}
