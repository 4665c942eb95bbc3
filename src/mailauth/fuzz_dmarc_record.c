/*
 * fuzz_dmarc_record.c - libFuzzer target: a DMARC record from DNS
 * (untrusted) parsed, the same bytes taken as a From: domain split into the
 * names of a DNS Tree Walk, and an Authentication-Results strip over them
 * taken as a message header.
 */
#include "mailauth/dmarc.h"
#include "mailauth/mailauth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmarc_record r;
    if (dmarc_record_parse(slice_make(data, size), &r) &&
        (r.pct > 100 || r.p > DMARC_P_REJECT || r.psd > DMARC_PSD_N))
        __builtin_trap();
    char *domain = malloc(size + 1);
    memcpy(domain, data, size);
    domain[size] = '\0';
    const char *names[DMARC_WALK_MAX];
    size_t n = dmarc_walk_names(domain, names);
    if (n < 1 || n > DMARC_WALK_MAX || names[0] != domain)
        __builtin_trap();
    for (size_t i = 1; i < n; i++) /* each a shorter suffix, after a dot */
        if (names[i] <= names[i - 1] || names[i][-1] != '.' || names[i][0] == '\0')
            __builtin_trap();
    free(domain);
    struct buf out = BUF_INIT;
    size_t dropped = mailauth_strip_ours(slice_make(data, size), "mx.test", &out);
    if (out.len > size || (dropped == 0 && out.len != size))
        __builtin_trap();
    buf_free(&out);
    return 0;
}
