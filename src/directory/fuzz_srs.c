/*
 * fuzz_srs.c - libFuzzer target: arbitrary bytes as an SRS address to
 * check (srs_reverse) and as a sender to rewrite (srs_forward). A rewritten
 * sender must check back to itself; a valid address must reverse to
 * something shorter than itself. Must never write to the input.
 */
#include "base/alloc.h"
#include "directory/srs.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct srs s = {"fuzz secret", 11, "srs.test", 21};
    const time_t now = 1577836860;
    char *in = xstrndup((const char *)data, size); /* stops at a NUL */
    struct buf out = BUF_INIT, back = BUF_INIT;
    if (srs_reverse(&s, in, now, &out) == SRS_OK && out.len >= strlen(in))
        abort();
    if (srs_forward(&s, in, now, &out)) {
        if (out.len > SRS_ADDRESS_MAX)
            abort();
        enum srs_status st = srs_reverse(&s, out.data, now, &back);
        if (st != SRS_OK && st != SRS_MALFORMED) /* malformed: a sender with an empty field */
            abort();
    }
    buf_free(&out);
    buf_free(&back);
    free(in);
    return 0;
}
