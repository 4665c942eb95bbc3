/*
 * fuzz_mta_sts.c - libFuzzer target: an MTA-STS policy body (fetched from a
 * web server the recipient domain controls) and a TXT record, through the
 * parsers of mta_sts.h, then every accepted mx pattern matched against a
 * host name taken from the input. Must never crash, read out of bounds or
 * leak; an accepted policy has a mode, an age within the RFC's bound and,
 * unless its mode is none, an mx pattern.
 */
#include "mta/mta_sts.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mta_sts_policy p;
    struct buf err = BUF_INIT;
    if (mta_sts_policy_parse((const char *)data, size, &p, &err)) {
        assert(p.max_age >= 0 && p.max_age <= MTA_STS_MAX_AGE_MAX);
        assert(p.mode == MTA_STS_NONE || p.n_mx > 0);
        for (size_t i = 0; i < p.n_mx; i++) {
            assert(strlen(p.mx[i]) > 0);
            (void)mta_sts_mx_match(&p, p.mx[i]);
        }
        char host[64];
        size_t n = size < sizeof(host) - 1 ? size : sizeof(host) - 1;
        memcpy(host, data, n);
        host[n] = '\0';
        (void)mta_sts_mx_match(&p, host);
    }
    buf_free(&err);
    bool is_sts;
    char id[MTA_STS_ID_MAX + 1];
    if (mta_sts_txt_parse((const char *)data, size, &is_sts, id))
        assert(is_sts && strlen(id) >= 1 && strlen(id) <= MTA_STS_ID_MAX);
    return 0;
}
