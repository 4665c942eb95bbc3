/*
 * fuzz_dmarc_record.c - libFuzzer target: a DMARC record from DNS
 * (untrusted) parsed, and an Authentication-Results strip over the same
 * bytes taken as a message header.
 */
#include "mailauth/dmarc.h"
#include "mailauth/mailauth.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmarc_record r;
    if (dmarc_record_parse(slice_make(data, size), &r) && (r.pct > 100 || r.p > DMARC_P_REJECT))
        __builtin_trap();
    struct buf out = BUF_INIT;
    size_t dropped = mailauth_strip_ours(slice_make(data, size), "mx.test", &out);
    if (out.len > size || (dropped == 0 && out.len != size))
        __builtin_trap();
    buf_free(&out);
    return 0;
}
