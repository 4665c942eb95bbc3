/*
 * fuzz_ldap_syncmsg.c - libFuzzer target: arbitrary bytes as each of RFC
 * 4533's values (syncStateValue, syncInfoValue, syncDoneValue) the LDAP
 * driver decodes. What a decoder accepts must point inside the input, a
 * syncIdSet's UUIDs must all be readable, and a cookie taken from the input
 * must come back out of the request encoder and its own decoding of the
 * OCTET STRING unchanged. Must never write to the input.
 */
#include "directory/ldap_syncmsg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *data, size_t size, struct lsync_bytes b)
{
    if (b.p != NULL && (b.p < data || b.p + b.n > data + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lsync_state_value st;
    if (lsync_parse_state(data, size, &st) == 0) {
        inside(data, size, st.cookie);
        if (st.state > LSYNC_DELETE)
            abort();
    }
    struct lsync_info info;
    if (lsync_parse_info(data, size, &info) == 0) {
        inside(data, size, info.cookie);
        if (info.n_uuids > 0 && (info.uuids < data || info.uuids + info.uuids_len > data + size ||
                                 info.n_uuids * (2 + LSYNC_UUID_LEN) != info.uuids_len))
            abort();
        unsigned char u[LSYNC_UUID_LEN];
        for (size_t i = 0; i < info.n_uuids; i++)
            lsync_uuid_at(&info, i, u);
    }
    struct lsync_bytes cookie;
    bool deletes;
    if (lsync_parse_done(data, size, &cookie, &deletes) == 0)
        inside(data, size, cookie);
    /* The request with the input as its cookie: 30 L 0a 01 03 04 L' cookie. */
    struct buf req = BUF_INIT;
    lsync_request(&req, 3, data, size);
    const unsigned char *r = (const unsigned char *)req.data;
    size_t hdr = r[1] & 0x80 ? 2 + (r[1] & 0x7f) : 2;
    if (req.len < hdr + 5 || r[0] != 0x30 || memcmp(r + hdr, "\x0a\x01\x03\x04", 4) != 0)
        abort();
    size_t chdr = r[hdr + 4] & 0x80 ? 2 + (r[hdr + 4] & 0x7f) : 2;
    if (req.len != hdr + 3 + chdr + size || memcmp(r + hdr + 3 + chdr, data, size) != 0)
        abort();
    buf_free(&req);
    return 0;
}
