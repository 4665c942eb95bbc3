/*
 * fuzz_sasl_plain.c - libFuzzer target for SASL PLAIN and LOGIN decoding.
 *
 * The input is one response line as a client would send it (base64 text);
 * the first byte also picks a small field limit so the limit checks are hit.
 */
#include "auth/sasl.h"
#include "base/base64.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t limit = size ? (size_t)data[0] + 1 : 255;
    struct slice line = {(const char *)data, size};
    struct sasl_plain p;
    sasl_plain_init(&p);
    if (sasl_plain_decode(line, limit, &p) == SASL_OK) {
        if (p.authcid.len == 0 || p.passwd.len == 0 || p.authcid.len > limit ||
            p.passwd.len > limit || p.authzid.len > limit ||
            memchr(p.authcid.data, '\0', p.authcid.len) != NULL)
            __builtin_trap();
    }
    sasl_plain_free(&p);
    struct buf out = BUF_INIT;
    if (sasl_login_decode(line, limit, &out) == SASL_OK && (out.len == 0 || out.len > limit))
        __builtin_trap();
    /* Whatever decodes, re-encoded and decoded again, gives the same bytes. */
    struct buf raw = BUF_INIT, enc = BUF_INIT, again = BUF_INIT;
    if (base64_decode(line, size, &raw) == BASE64_OK) {
        base64_encode(raw.data, raw.len, &enc);
        if (base64_decode(buf_slice(&enc), raw.len, &again) != BASE64_OK || again.len != raw.len ||
            memcmp(again.data, raw.data, raw.len) != 0)
            __builtin_trap();
    }
    buf_free(&raw);
    buf_free(&enc);
    buf_free(&again);
    buf_free(&out);
    return 0;
}
