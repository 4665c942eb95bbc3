/*
 * fuzz_tls_park.c - libFuzzer target for the parked TLS 1.3 record parser
 * (net_tls_park_open). The first byte picks the mode: even, the rest is raw
 * wire bytes (headers, lengths, forged records: all must be refused without a
 * plaintext byte out); odd, the rest is a list of records
 * [inner type][padding][length, 2 bytes][bytes] that a peer holding the right
 * keys seals, so the parser's inner rules (content types, padding, alerts,
 * KeyUpdate) are reached past the AEAD. Each mode feeds the wire in uneven
 * pieces and checks that no more plaintext comes out than was sealed as
 * application data (or as type 0, whose data may end in a type byte).
 */
#include "net/net_tls_park.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t cs[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17},
                         ss[32] = {32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18};
    if (size < 1)
        return 0;
    struct net_tls_park *srv = net_tls_park_new_raw(0x1303, cs, ss, sizeof(cs), 0, 0);
    if (srv == NULL)
        __builtin_trap();
    struct evbuffer *wire = evbuffer_new(), *in = evbuffer_new(), *plain = evbuffer_new(),
                    *out = evbuffer_new();
    size_t sealed_app = 0;
    size_t piece = 1 + (data[0] >> 1) * 97;
    if (data[0] & 1) {
        struct net_tls_park *cli = net_tls_park_new_raw(0x1303, ss, cs, sizeof(cs), 0, 0);
        size_t off = 1;
        while (cli && size - off >= 4) {
            uint8_t type = data[off], pad = data[off + 1];
            size_t len = (size_t)data[off + 2] << 8 | data[off + 3];
            off += 4;
            if (len > size - off)
                len = size - off;
            /* type 0 hides the real type in the data's last non-zero byte */
            if (net_tls_park_seal_record(cli, type, data + off, len, pad, wire) &&
                (type == 23 || type == 0))
                sealed_app += len;
            off += len;
        }
        net_tls_park_free(cli);
    } else {
        evbuffer_add(wire, data + 1, size - 1);
        piece = 1 + data[0];
    }
    const char *err = NULL;
    enum net_tls_park_result r = NET_TLS_PARK_OK;
    while (r == NET_TLS_PARK_OK && evbuffer_get_length(wire) > 0) {
        evbuffer_remove_buffer(wire, in, piece);
        r = net_tls_park_open(srv, in, plain, 1 << 20, out, &err);
        if (r != NET_TLS_PARK_OK && err == NULL)
            __builtin_trap();
    }
    /* Raw bytes carry no key: nothing may open. Sealed ones: no more than was sealed. */
    if (!(data[0] & 1) && evbuffer_get_length(plain) != 0)
        __builtin_trap();
    if (evbuffer_get_length(plain) > sealed_app)
        __builtin_trap();
    net_tls_park_free(srv);
    evbuffer_free(wire);
    evbuffer_free(in);
    evbuffer_free(plain);
    evbuffer_free(out);
    return 0;
}
