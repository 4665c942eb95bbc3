/*
 * fuzz_dkim_sig.c - libFuzzer target: the DKIM tag-list parser, the
 * DKIM-Signature field parser and the key record parser on arbitrary bytes
 * (all untrusted: the first two come in the message, the last from DNS),
 * and the ARC set collection over the same bytes taken as a message; then
 * the sealer (its collection of an existing chain and its instance
 * numbers) and the arc= reader of an Authentication-Results value.
 */
#include "mailauth/arc.h"
#include "mailauth/dkim.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice in = slice_make(data, size);
    const char *lo = (const char *)data, *hi = lo + size;
    struct dkim_sig sig;
    const char *why;
    if (dkim_sig_parse(in, &sig, &why)) {
        for (size_t i = 0; i < sig.n_h; i++)
            if (sig.h[i].ptr < lo || sig.h[i].ptr + sig.h[i].len > hi)
                __builtin_trap();
        if (sig.d.len == 0 || sig.s.len == 0)
            __builtin_trap();
    }
    EVP_PKEY *key = NULL;
    if (dkim_key_record_parse(in, DKIM_ED25519_SHA256, &key, &why))
        EVP_PKEY_free(key);
    if (dkim_key_record_parse(in, DKIM_RSA_SHA256, &key, &why))
        EVP_PKEY_free(key);
    /* the header splitter and body canonicalization on the same bytes */
    struct dkim_msg m;
    dkim_msg_init(&m, in);
    unsigned char h[32];
    dkim_body_hash(m.body, true, 7, h, NULL);
    dkim_body_hash(m.body, false, -1, h, NULL);
    /* ARC sets found in the same bytes, with no DNS answer ever given */
    struct authdns dns;
    authdns_init(&dns);
    struct arc_outcome arc;
    arc_check(&m, &dns, 0, &arc);
    authdns_free(&dns);
    static EVP_PKEY *seal_key;
    if (seal_key == NULL)
        seal_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    struct dkim_signer_key k = {.selector = "s", .pkey = seal_key};
    struct buf out = BUF_INIT;
    unsigned i = arc_seal(&m, in, arc_ar_cv(in), "example.org", &k, 0, &out, &why);
    if (i > ARC_MAX_INSTANCES || (i == 0) != (out.len == 0))
        __builtin_trap();
    buf_free(&out);
    dkim_msg_free(&m);
    return 0;
}
