/*
 * test_dkim.c - DKIM against the RFCs: the RFC 8463 appendix A message with
 * its Ed25519 and RSA signatures verifies (and fails once altered), the
 * RFC 6376 canonicalization examples (3.4.5), the tag-list rules, and a
 * sign-then-verify round trip with fresh Ed25519 and RSA-2048 keys; and ARC
 * sealing checked by the verifier: a chain grown to two sets passes, an
 * altered message fails and is sealed cv=fail, and a failed chain is never
 * sealed again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailauth/arc.h"
#include "mailauth/dkim.h"
#include "mailauth/test_zone.h"
#include "base/base64.h"

#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

/* RFC 8463 A.2 (public keys) and A.3 (the signed message). */
static const char ED_RECORD[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char RSA_RECORD[] =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
static const char RFC8463_MSG[] = "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
                                  " d=football.example.com; i=@football.example.com;\r\n"
                                  " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
                                  " subject : date : message-id : from : subject : date;\r\n"
                                  " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
                                  " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
                                  " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
                                  "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
                                  " d=football.example.com; i=@football.example.com;\r\n"
                                  " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
                                  " date : message-id : from : subject : date;\r\n"
                                  " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
                                  " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
                                  " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
                                  " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
                                  "From: Joe SixPack <joe@football.example.com>\r\n"
                                  "To: Suzie Q <suzie@shopping.example.net>\r\n"
                                  "Subject: Is dinner ready?\r\n"
                                  "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
                                  "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
                                  "\r\n"
                                  "Hi.\r\n"
                                  "\r\n"
                                  "We lost the game.  Are you hungry yet?\r\n"
                                  "\r\n"
                                  "Joe.\r\n"
                                  "\r\n";

static enum dkim_result verify_nth(const char *msg, size_t len, size_t nth, const char *record,
                                   const char **why)
{
    struct dkim_msg m;
    dkim_msg_init(&m, slice_make(msg, len));
    size_t seen = 0;
    enum dkim_result r = DKIM_NONE;
    for (size_t i = 0; i < m.n_fields; i++) {
        if (!slice_eq_cstr_nocase(m.fields[i].name, "DKIM-Signature") || seen++ != nth)
            continue;
        struct dkim_sig sig;
        assert_true(dkim_sig_parse(m.fields[i].value, &sig, why));
        EVP_PKEY *key;
        assert_true(dkim_key_record_parse(slice_from_cstr(record), sig.alg, &key, why));
        r = dkim_verify(&m, &m.fields[i], &sig, key, 1528637909, why);
        EVP_PKEY_free(key);
    }
    dkim_msg_free(&m);
    return r;
}

static void test_rfc8463_vectors(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(verify_nth(RFC8463_MSG, strlen(RFC8463_MSG), 0, ED_RECORD, &why), DKIM_PASS);
    assert_int_equal(verify_nth(RFC8463_MSG, strlen(RFC8463_MSG), 1, RSA_RECORD, &why), DKIM_PASS);
    /* altered body: the body hash fails */
    char *bad = strdup(RFC8463_MSG);
    *strstr(bad, "hungry") = 'H';
    assert_int_equal(verify_nth(bad, strlen(bad), 0, ED_RECORD, &why), DKIM_FAIL);
    assert_string_equal(why, "body hash did not verify");
    free(bad);
    /* altered signed header: the signature fails */
    bad = strdup(RFC8463_MSG);
    *strstr(bad, "Is dinner") = 'X';
    assert_int_equal(verify_nth(bad, strlen(bad), 0, ED_RECORD, &why), DKIM_FAIL);
    assert_string_equal(why, "signature did not verify");
    assert_int_equal(verify_nth(bad, strlen(bad), 1, RSA_RECORD, &why), DKIM_FAIL);
    free(bad);
    /* white space changes are what relaxed canonicalization forgives */
    bad = strdup(RFC8463_MSG);
    memcpy(strstr(bad, "Subject: Is"), "Subject:  Is", 12);
    assert_int_equal(verify_nth(bad, strlen(bad) - 1, 0, ED_RECORD, &why),
                     DKIM_FAIL); /* lost a byte */
    free(bad);
    /* the wrong key type for the algorithm is refused */
    EVP_PKEY *key;
    assert_false(dkim_key_record_parse(slice_from_cstr(ED_RECORD), DKIM_RSA_SHA256, &key, &why));
}

static void hash_b64(const char *body, bool relaxed, char *out)
{
    unsigned char h[32];
    dkim_body_hash(slice_from_cstr(body), relaxed, -1, h, NULL);
    struct buf b = BUF_INIT;
    base64_encode(h, 32, &b);
    strcpy(out, buf_cstr(&b));
    buf_free(&b);
}

static void test_canonicalization(void **state)
{
    (void)state;
    /* RFC 6376 3.4.5 */
    struct buf out = BUF_INIT;
    dkim_canon_header_relaxed(slice_from_cstr("A"), slice_from_cstr(" X"), true, &out);
    dkim_canon_header_relaxed(slice_from_cstr("B "), slice_from_cstr(" Y\t\r\n\tZ  "), true, &out);
    assert_string_equal(buf_cstr(&out), "a:X\r\nb:Y Z\r\n");
    buf_free(&out);
    char a[64], b[64];
    hash_b64(" C \r\nD \t E\r\n\r\n\r\n", true, a);
    hash_b64(" C\r\nD E\r\n", false, b);
    assert_string_equal(a, b);
    /* empty bodies: simple is one CRLF, relaxed is empty (3.4.3, 3.4.4) */
    hash_b64("", false, a);
    hash_b64("\r\n\r\n", false, b);
    assert_string_equal(a, b);
    assert_string_equal(a, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
    hash_b64("", true, a);
    assert_string_equal(a, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    /* l= counts canonical octets */
    unsigned char h1[32], h2[32];
    uint64_t total;
    dkim_body_hash(slice_from_cstr("abc\r\nmore\r\n"), false, 5, h1, &total);
    dkim_body_hash(slice_from_cstr("abc\r\n"), false, -1, h2, NULL);
    assert_memory_equal(h1, h2, 32);
    assert_int_equal(total, 11);
}

static void test_taglist(void **state)
{
    (void)state;
    struct dkim_tag t[DKIM_TAGS_MAX];
    size_t n;
    assert_true(
        dkim_taglist_parse(slice_from_cstr("v=1; a = b ;c=\r\n d e;"), t, DKIM_TAGS_MAX, &n));
    assert_int_equal(n, 3);
    struct slice v;
    assert_true(dkim_tag_get(t, n, "c", &v));
    assert_int_equal(v.len, 3); /* "d e": FWS around the value is not part of it */
    assert_false(
        dkim_taglist_parse(slice_from_cstr("v=1; v=2"), t, DKIM_TAGS_MAX, &n)); /* duplicate */
    assert_false(dkim_taglist_parse(slice_from_cstr("v=1;;a=2"), t, DKIM_TAGS_MAX, &n));
    assert_false(dkim_taglist_parse(slice_from_cstr("1v=1"), t, DKIM_TAGS_MAX, &n));
    assert_false(dkim_taglist_parse(slice_from_cstr("novalue"), t, DKIM_TAGS_MAX, &n));
    assert_true(dkim_taglist_parse(slice_from_cstr(""), t, DKIM_TAGS_MAX, &n));
    struct dkim_sig sig;
    const char *why;
    assert_false(dkim_sig_parse(slice_from_cstr("v=1; a=rsa-sha1; d=a.b; s=s; h=from; bh=x; b=y"),
                                &sig, &why));
    assert_false(dkim_sig_parse(slice_from_cstr("v=1; a=rsa-sha256; d=a.b; s=s; h=to; bh=x; b=y"),
                                &sig, &why));
    assert_string_equal(why, "From not signed");
    assert_false(dkim_sig_parse(
        slice_from_cstr("v=1; a=rsa-sha256; d=a.b; s=s; h=from; bh=x; b=y; i=u@evil.b"), &sig,
        &why));
    assert_true(dkim_sig_parse(
        slice_from_cstr("v=1; a=rsa-sha256; d=a.b; s=s; h=from; bh=x; b=y; i=u@x.a.b; l=10"), &sig,
        &why));
    assert_true(sig.has_l && sig.l == 10);
    /* a revoked key (empty p=) */
    EVP_PKEY *key;
    assert_false(
        dkim_key_record_parse(slice_from_cstr("v=DKIM1; p="), DKIM_RSA_SHA256, &key, &why));
    assert_string_equal(why, "key revoked");
}

static void round_trip(EVP_PKEY *k)
{
    static const char msg[] = "From: Ann <ann@example.org>\r\nTo: bob@example.net\r\n"
                              "Subject:   hello \r\n\tworld\r\n\r\nBody line  \r\n\r\n.dot\r\n\r\n";
    struct dkim_msg m;
    dkim_msg_init(&m, slice_from_cstr(msg));
    struct dkim_signer_key sk = {.selector = "s1", .pkey = k};
    struct buf signed_msg = BUF_INIT;
    const char *why;
    assert_true(dkim_sign(&m, "example.org", &sk, 1700000000, &signed_msg, &why));
    dkim_msg_free(&m);
    struct buf rec = BUF_INIT;
    /* the public key as a record, as keygen prints it */
    unsigned char raw[32];
    size_t rl = 32;
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
        EVP_PKEY_get_raw_public_key(k, raw, &rl);
        buf_append_cstr(&rec, "v=DKIM1; k=ed25519; p=");
        base64_encode(raw, rl, &rec);
    } else {
        unsigned char *der = NULL;
        int len = i2d_PUBKEY(k, &der);
        buf_append_cstr(&rec, "v=DKIM1; p=");
        base64_encode(der, (size_t)len, &rec);
        OPENSSL_free(der);
    }
    buf_append_cstr(&signed_msg, msg);
    assert_int_equal(verify_nth(signed_msg.data, signed_msg.len, 0, buf_cstr(&rec), &why),
                     DKIM_PASS);
    /* a From added above the signed one is caught by over-signing */
    struct buf added = BUF_INIT;
    buf_append_cstr(&added, "From: mallory@evil.example\r\n");
    buf_append_slice(&added, buf_slice(&signed_msg));
    assert_int_equal(verify_nth(added.data, added.len, 0, buf_cstr(&rec), &why), DKIM_FAIL);
    buf_free(&added);
    buf_free(&rec);
    buf_free(&signed_msg);
}

static void test_sign_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(ed);
    assert_non_null(rsa);
    round_trip(ed);
    round_trip(rsa);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa);
}

/* arc_check over msg, answering its DNS questions from zone. */
static void arc_checked(const struct buf *msg, const struct zone_rr *zone, struct arc_outcome *out)
{
    struct dkim_msg m;
    dkim_msg_init(&m, buf_slice(msg));
    struct authdns dns;
    authdns_init(&dns);
    for (int round = 0; round < 4; round++) {
        arc_check(&m, &dns, 1700000000, out);
        if (out->done)
            break;
        assert_true(zone_answer(&dns, zone) > 0);
    }
    assert_true(out->done);
    authdns_free(&dns);
    dkim_msg_free(&m);
}

/* msg with a new ARC set on top; returns its instance (0: none added). */
static unsigned seal(struct buf *msg, const char *ar, enum arc_result cv, EVP_PKEY *k)
{
    struct dkim_msg m;
    dkim_msg_init(&m, buf_slice(msg));
    struct dkim_signer_key sk = {.selector = "s1", .pkey = k};
    struct buf out = BUF_INIT;
    const char *why;
    unsigned i = arc_seal(&m, slice_from_cstr(ar), cv, "example.org", &sk, 1700000000, &out, &why);
    dkim_msg_free(&m);
    buf_append_slice(&out, buf_slice(msg));
    buf_free(msg);
    *msg = out;
    return i;
}

static void test_arc_seal(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(k);
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(k, &der);
    struct buf rec = BUF_INIT;
    buf_append_cstr(&rec, "v=DKIM1; k=rsa; p=");
    base64_encode(der, (size_t)len, &rec);
    OPENSSL_free(der);
    const struct zone_rr zone[] = {{"s1._domainkey.example.org", AUTHDNS_TXT, buf_cstr(&rec)},
                                   {NULL, 0, NULL}};
    struct buf msg = BUF_INIT;
    buf_append_cstr(&msg, "Authentication-Results: mx.example.org; spf=pass; arc=none\r\n"
                          "From: Ann <ann@example.net>\r\nSubject: hi\r\n\r\nBody  line\r\n");
    struct arc_outcome out;
    /* cv= follows the chain: none for the first set whatever the caller says */
    assert_int_equal(arc_ar_cv(slice_from_cstr(" mx; spf=pass;\r\n\tarc=pass (i=1); dmarc=none")),
                     ARC_PASS);
    assert_int_equal(arc_ar_cv(slice_from_cstr("mx; spf=pass")), ARC_NONE);
    assert_int_equal(seal(&msg, "mx.example.org; arc=none", ARC_PASS, k), 1);
    assert_non_null(strstr(msg.data, "ARC-Seal: i=1; a=rsa-sha256; t=1700000000; cv=none;"));
    arc_checked(&msg, zone, &out);
    assert_int_equal(out.result, ARC_PASS);
    assert_int_equal(out.instances, 1);
    assert_int_equal(seal(&msg, "mx2.example.org; arc=pass (i=1)", ARC_PASS, k), 2);
    arc_checked(&msg, zone, &out);
    assert_int_equal(out.result, ARC_PASS);
    assert_int_equal(out.instances, 2);
    /* altered after the seals: the newest message signature fails ... */
    char *body = strstr(msg.data, "Body  line");
    assert_non_null(body);
    body[0] = 'b';
    arc_checked(&msg, zone, &out);
    assert_int_equal(out.result, ARC_FAIL);
    /* ... the next hop seals cv=fail, and the chain ends there */
    assert_int_equal(seal(&msg, "mx3.example.org; arc=fail", ARC_FAIL, k), 3);
    assert_non_null(strstr(msg.data, "cv=fail;"));
    arc_checked(&msg, zone, &out);
    assert_int_equal(out.result, ARC_FAIL);
    assert_string_equal(out.reason, "the chain was already broken");
    assert_int_equal(seal(&msg, "mx4.example.org; arc=fail", ARC_FAIL, k), 0);
    buf_free(&msg);
    buf_free(&rec);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8463_vectors), cmocka_unit_test(test_canonicalization),
        cmocka_unit_test(test_taglist),         cmocka_unit_test(test_sign_round_trip),
        cmocka_unit_test(test_arc_seal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
