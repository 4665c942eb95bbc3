/*
 * dkim.h - DomainKeys Identified Mail (RFC 6376) with RSA-SHA256 and
 * Ed25519-SHA256 (RFC 8463): the tag-list parser, header and body
 * canonicalization, signing, and verification of one signature against a
 * key record the caller looked up in DNS.
 *
 * Everything here works on a complete message in memory (CRLF line ends, the
 * way the spool holds it) and makes one pass over its body per signature; it
 * never does I/O (keys come in as EVP_PKEY, key records as text), never
 * allocates in proportion to anything but the header count, and must never
 * report a pass that the cryptography did not prove. Signing and verifying
 * both go through OpenSSL's EVP interface.
 */
#ifndef WHARF_MAILAUTH_DKIM_H
#define WHARF_MAILAUTH_DKIM_H

#include "base/buf.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tags in one tag list (RFC 6376 3.2): a signature has about a dozen; more
 * than this is refused rather than guessed at. */
#define DKIM_TAGS_MAX 32
/* Header fields named in one h= (the signer's choice; 64 covers every real
 * signer with room for over-signing). */
#define DKIM_H_MAX 64
/* Signatures checked per message: a message with more is not worth the CPU
 * (each costs a DNS lookup and a public-key operation). */
#define DKIM_VERIFY_MAX 8

struct dkim_tag {
    struct slice name, value; /* value with surrounding white space trimmed */
};

/*
 * Parses a tag list "t=v; t2=v2;" (RFC 6376 3.2): names are ALPHA *(ALNUM/_),
 * values any VALCHAR and folding white space; a duplicate name, an empty name
 * or more than max tags is an error. The slices point into in.
 */
bool dkim_taglist_parse(struct slice in, struct dkim_tag *tags, size_t max, size_t *n_r);
/* The value of tag name, or false. */
bool dkim_tag_get(const struct dkim_tag *tags, size_t n, const char *name, struct slice *v_r);

enum dkim_alg {
    DKIM_RSA_SHA256,
    DKIM_ED25519_SHA256,
};

/* One DKIM-Signature header field, parsed. Slices point into the field. */
struct dkim_sig {
    enum dkim_alg alg;
    bool hdr_relaxed, body_relaxed;
    struct slice d, s, i, bh_b64, b_b64;
    struct slice h[DKIM_H_MAX];
    size_t n_h;
    bool has_l;
    uint64_t l;
    int64_t t, x; /* -1 when absent */
};

/*
 * Parses a DKIM-Signature field value. False with a short reason in why (for
 * Authentication-Results) when a required tag is missing or malformed, the
 * version or algorithm is unknown, h= lacks From, or i= is not in d=.
 */
bool dkim_sig_parse(struct slice value, struct dkim_sig *sig_r, const char **why_r);

/* An ARC-Message-Signature (RFC 8617 4.1.2): the same tags as DKIM without
 * v=, with i= its instance (1..50). */
bool dkim_ams_parse(struct slice value, struct dkim_sig *sig, unsigned *instance_r,
                    const char **why_r);

/* A key record (RFC 6376 3.6.1) turned into a public key; false with why. */
bool dkim_key_record_parse(struct slice txt, enum dkim_alg alg, EVP_PKEY **key_r,
                           const char **why_r);

/* The header of a message, field by field (top-level only). */
struct dkim_field {
    struct slice name;  /* without trailing white space */
    struct slice value; /* after the colon, folding kept, final CRLF excluded */
};

struct dkim_msg {
    struct slice data;
    struct dkim_field *fields;
    size_t n_fields;
    struct slice body; /* after the empty line; empty when there is none */
};

/* Splits data into header fields and body (no copy); free with dkim_msg_free. */
void dkim_msg_init(struct dkim_msg *m, struct slice data);
void dkim_msg_free(struct dkim_msg *m);

/* Relaxed header canonicalization (RFC 6376 3.4.2) of one field, appended
 * as "name:value" with CRLF when crlf. */
void dkim_canon_header_relaxed(struct slice name, struct slice value, bool crlf, struct buf *out);

/*
 * The SHA-256 of the canonicalized body (3.4.3 simple, 3.4.4 relaxed), of at
 * most limit octets of it when limit >= 0; *len_r is the canonical body's
 * full length (to tell whether l= left content unsigned).
 */
void dkim_body_hash(struct slice body, bool relaxed, int64_t limit, unsigned char out[32],
                    uint64_t *len_r);

/* ---- signing ---- */

struct dkim_signer_key {
    const char *selector;
    EVP_PKEY *pkey; /* RSA (>= 1024 bits) or Ed25519 */
};

/* Header fields signed when present, with From signed once more than it
 * occurs (over-signing: no From can be added later). */
extern const char *const dkim_signed_headers[];

/*
 * Appends one DKIM-Signature field (name, value, folded, final CRLF) for
 * domain d with key k over message m, relaxed/relaxed, timestamp now.
 * False with why on a key OpenSSL refuses.
 */
bool dkim_sign(const struct dkim_msg *m, const char *d, const struct dkim_signer_key *k,
               int64_t now, struct buf *out, const char **why_r);

/* An ARC-Message-Signature (RFC 8617 4.1.2) of instance i (1..50) over m,
 * as dkim_sign makes a DKIM-Signature (the same fields, and the
 * DKIM-Signature fields present). */
bool dkim_ams_sign(const struct dkim_msg *m, const char *d, const struct dkim_signer_key *k,
                   unsigned instance, int64_t now, struct buf *out, const char **why_r);

/* The algorithm key k signs with; false for a key DKIM cannot use. */
bool dkim_signer_alg(const struct dkim_signer_key *k, enum dkim_alg *alg_r);

/*
 * The last step of every signature (DKIM, ARC-Message-Signature, ARC-Seal):
 * field is the whole field as sent up to an empty "b=" (name, colon, value,
 * folded); its relaxed form is appended to data (the canonical bytes the
 * signature covers), data is signed with k, and field with the folded
 * base64 signature and CRLF is appended to out. False when OpenSSL refuses.
 */
bool dkim_sign_field(const struct dkim_signer_key *k, enum dkim_alg alg, struct slice field,
                     struct buf *data, struct buf *out);

/* ---- verification ---- */

enum dkim_result {
    DKIM_NONE,
    DKIM_PASS,
    DKIM_FAIL,      /* the signature or body hash does not match */
    DKIM_POLICY,    /* valid but not acceptable (l= leaves content unsigned, expired) */
    DKIM_NEUTRAL,   /* unparsable signature or unusable key */
    DKIM_TEMPERROR, /* the key could not be fetched now */
    DKIM_PERMERROR, /* the key record is missing or malformed */
};

const char *dkim_result_name(enum dkim_result r);

/*
 * Verifies signature field sig_field (an element of m->fields, parsed into
 * sig) with key. Returns PASS, FAIL (why says body hash or signature) or
 * POLICY (an l= shorter than the body, or x= past now).
 */
enum dkim_result dkim_verify(const struct dkim_msg *m, const struct dkim_field *sig_field,
                             const struct dkim_sig *sig, EVP_PKEY *key, int64_t now,
                             const char **why_r);

/* Appends value with the b= tag's value removed (what a signature covers). */
void dkim_strip_b(struct slice value, struct buf *out);

/* True when b64 is alg's signature by key over data (the canonical header
 * bytes a signature covers). */
bool dkim_verify_data(enum dkim_alg alg, struct slice b64, struct buf *data, EVP_PKEY *key);

#endif
