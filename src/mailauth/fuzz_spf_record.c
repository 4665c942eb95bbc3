/*
 * fuzz_spf_record.c - libFuzzer target: an SPF record from DNS (untrusted)
 * parsed and evaluated, its macros expanded, against a zone where every
 * name answers with the same record (so includes and redirects recurse
 * until the lookup limit stops them).
 */
#include "mailauth/spf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4000)
        return 0;
    spf_record_valid(slice_make(data, size));
    struct spf_input in = {.helo = "helo.example", .sender = "a-b@x.example", .receiver = "mx"};
    spf_ip_parse(size % 2 ? "192.0.2.1" : "2001:db8::1", &in.ip);
    struct authdns d;
    authdns_init(&d);
    struct spf_outcome out;
    unsigned char rd[4096 + 16];
    for (int round = 0; round < 400; round++) {
        spf_check(&in, &d, &out);
        if (out.done)
            break;
        for (size_t i = 0; i < d.n; i++) {
            if (d.a[i].status != AUTHDNS_WANTED)
                continue;
            if (d.a[i].type == AUTHDNS_TXT) {
                size_t len = 0;
                for (size_t k = 0; k < size; k += 255) {
                    size_t c = size - k < 255 ? size - k : 255;
                    rd[len++] = (unsigned char)c;
                    memcpy(rd + len, data + k, c);
                    len += c;
                }
                authdns_add(&d, i, rd, len);
            } else if (d.a[i].type == AUTHDNS_A) {
                authdns_add(&d, i, "\xc0\x00\x02\x02", 4);
            } else if (d.a[i].type == AUTHDNS_MX) {
                authdns_add(&d, i, data, size < 300 ? size : 300); /* raw bytes as rdata */
            }
            authdns_set(&d, i, AUTHDNS_OK);
        }
    }
    authdns_free(&d);
    return 0;
}
