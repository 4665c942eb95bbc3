/*
 * net_tls_park.c - the record layer of a parked TLS 1.3 connection
 * (net_tls_park.h): RFC 8446 5.2 (record protection), 5.3 (per-record nonce),
 * 4.6.3 (KeyUpdate), 7.1-7.2 (HKDF-Expand-Label, traffic key and iv), 6 (alerts).
 *
 * Why it is safe to carry on where OpenSSL stopped:
 * - write side: at park time OpenSSL itself sends a KeyUpdate, after which its
 *   write key is the next generation at sequence 0, one it never used; the
 *   generations before are never used again by anyone. OpenSSL's message
 *   callback counts every KeyUpdate it wrote before (answers to the peer's
 *   requests), so we know which generation that is; parking is refused if a
 *   byte is still unsent or a key update is still owed.
 * - read side: the peer's records are counted from its Finished on by
 *   OpenSSL's message callback, from 0 again after each KeyUpdate it read (the
 *   peer parked first, or changed keys); a wrong count fails the AEAD tag of
 *   the next record, and a record that fails its tag closes the connection.
 *   Any other post-handshake message (but a NewSessionTicket to a client)
 *   means parking is never tried.
 * Each sealed record advances the write sequence before anything else can
 * seal; at 2^24 records we change keys ourselves (RFC 8446 5.5).
 *
 * Must never: seal two records under one key and sequence number, give out
 * plaintext of a record whose tag did not verify, accept an unprotected record
 * once parked, or keep a key longer than the connection (cleansed on free).
 */
#include "net/net_tls_park.h"

#include "base/alloc.h"
#include "base/slab.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TYPE_ALERT 21
#define TYPE_HANDSHAKE 22
#define TYPE_APPDATA 23
#define MT_NEW_SESSION_TICKET 4
#define MT_KEY_UPDATE 24
#define TAG_LEN 16
#define IV_LEN 12
/* RFC 8446 5.5: AES-GCM may protect 2^24.5 full records under one key. */
#define WRITE_REKEY_AT (UINT64_C(1) << 24)

enum alert {
    ALERT_CLOSE_NOTIFY = 0,
    ALERT_UNEXPECTED_MESSAGE = 10,
    ALERT_BAD_RECORD_MAC = 20,
    ALERT_RECORD_OVERFLOW = 22,
    ALERT_DECODE_ERROR = 50,
    ALERT_ILLEGAL_PARAMETER = 47,
    ALERT_INTERNAL_ERROR = 80,
};

struct net_tls_park {
    uint16_t suite;
    uint8_t hash_len, key_len;
    uint8_t client_len, server_len; /* secrets as logged, 0: not yet */
    uint8_t exporter_len;
    /* One byte of flags: the state fits a 224-byte slab slot. */
    bool counting : 1; /* the client's Finished was read: counting its records */
    bool tainted : 1;  /* a post-handshake handshake message: never park */
    bool parked : 1;
    bool broken : 1; /* a seal failed: never seal again */
    bool client : 1; /* our side is the TLS client (a front-end's proxy to its back-end) */
    /* Before parking: the KeyUpdates OpenSSL read and wrote (secrets' generations). */
    uint32_t read_gen, write_gen;
    /* Before parking the generation-0 secrets; parked, the current ones. Read:
     * the peer's traffic secret (the client's on a server), write: ours. */
    uint8_t read_secret[48], write_secret[48];
    uint8_t read_key[32], read_iv[IV_LEN], write_key[32], write_iv[IV_LEN];
    uint64_t read_seq, write_seq;
    /* RFC 8446 7.5's exporter_master_secret (48 bytes, exporter_len used), a
     * slab object of its own: only the connections a hand-over is checked on
     * keep it once parked (net_tls_park_drop_exporter). */
    uint8_t *exporter;
};
_Static_assert(sizeof(struct net_tls_park) <= 224, "a parked state fits a 224-byte slab slot");

static const EVP_CIPHER *suite_cipher(uint16_t suite)
{
    switch (suite) {
    case 0x1301:
        return EVP_aes_128_gcm();
    case 0x1302:
        return EVP_aes_256_gcm();
    case 0x1303:
        return EVP_chacha20_poly1305();
    default:
        return NULL;
    }
}

static bool suite_set(struct net_tls_park *p, uint16_t suite)
{
    if (suite_cipher(suite) == NULL)
        return false;
    p->suite = suite;
    p->hash_len = suite == 0x1302 ? 48 : 32;
    p->key_len = suite == 0x1301 ? 16 : 32;
    return true;
}

/* HKDF-Expand-Label(secret, label, context, outlen) (RFC 8446 7.1) through OpenSSL's HKDF. */
static bool expand_label_ctx(const struct net_tls_park *p, const uint8_t *secret, const char *label,
                             const uint8_t *context, size_t context_len, uint8_t *out,
                             size_t outlen)
{
    static EVP_KDF *kdf;
    if (kdf == NULL && (kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL)
        return false;
    uint8_t info[2 + 1 + 6 + 64 + 1 + 48];
    size_t ll = strlen(label), n = 0;
    if (ll > 64 || context_len > 48)
        return false;
    info[n++] = (uint8_t)(outlen >> 8);
    info[n++] = (uint8_t)outlen;
    info[n++] = (uint8_t)(6 + ll);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, ll);
    n += ll;
    info[n++] = (uint8_t)context_len;
    if (context_len > 0)
        memcpy(info + n, context, context_len);
    n += context_len;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL)
        return false;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                         p->hash_len == 48 ? "SHA384" : "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, p->hash_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_end(),
    };
    bool ok = EVP_KDF_derive(kctx, out, outlen, params) == 1;
    EVP_KDF_CTX_free(kctx);
    return ok;
}

static bool expand_label(const struct net_tls_park *p, const uint8_t *secret, const char *label,
                         uint8_t *out, size_t outlen)
{
    return expand_label_ctx(p, secret, label, NULL, 0, out, outlen);
}

static bool derive(const struct net_tls_park *p, const uint8_t *secret, uint8_t *key, uint8_t *iv)
{
    return expand_label(p, secret, "key", key, p->key_len) &&
           expand_label(p, secret, "iv", iv, IV_LEN);
}

/* The next generation of a traffic secret (RFC 8446 7.2), in place. */
static bool next_secret(const struct net_tls_park *p, uint8_t *secret)
{
    uint8_t next[48];
    if (!expand_label(p, secret, "traffic upd", next, p->hash_len))
        return false;
    memcpy(secret, next, p->hash_len);
    OPENSSL_cleanse(next, sizeof(next));
    return true;
}

static void make_nonce(const uint8_t *iv, uint64_t seq, uint8_t *nonce)
{
    memcpy(nonce, iv, IV_LEN);
    for (int i = 0; i < 8; i++)
        nonce[IV_LEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
}

bool net_tls_park_parked(const struct net_tls_park *p)
{
    return p->parked;
}

size_t net_tls_park_memory(const struct net_tls_park *p)
{
    return sizeof(*p) + (p->exporter ? 48 : 0);
}

uint64_t net_tls_park_write_seq(const struct net_tls_park *p)
{
    return p->write_seq;
}

uint64_t net_tls_park_read_seq(const struct net_tls_park *p)
{
    return p->read_seq;
}

void net_tls_park_drop_exporter(struct net_tls_park *p)
{
    if (p->exporter == NULL)
        return;
    OPENSSL_cleanse(p->exporter, 48);
    slab_free(p->exporter);
    p->exporter = NULL;
    p->exporter_len = 0;
}

void net_tls_park_free(struct net_tls_park *p)
{
    if (p == NULL)
        return;
    net_tls_park_drop_exporter(p);
    OPENSSL_cleanse(p, sizeof(*p));
    slab_free(p);
}

/* ---- sealing ---- */

/* One record of inner type type; the write sequence advances whatever happens. */
static bool seal_one(struct net_tls_park *p, EVP_CIPHER_CTX *ctx, uint8_t type, const void *data,
                     size_t len, size_t padding, struct evbuffer *out)
{
    size_t inner = len + 1 + padding;
    if (p->broken || !p->parked || inner > NET_TLS_PARK_MAX_PLAIN + 1 || p->write_seq == UINT64_MAX)
        return false;
    uint64_t seq = p->write_seq++; /* never twice, even if what follows fails */
    size_t clen = inner + TAG_LEN;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)(5 + clen), &v, 1) != 1) {
        p->broken = true;
        return false;
    }
    uint8_t *rec = v.iov_base;
    rec[0] = TYPE_APPDATA;
    rec[1] = 3;
    rec[2] = 3;
    rec[3] = (uint8_t)(clen >> 8);
    rec[4] = (uint8_t)clen;
    uint8_t *body = rec + 5;
    if (len > 0)
        memcpy(body, data, len);
    body[len] = type;
    memset(body + len + 1, 0, padding);
    uint8_t nonce[IV_LEN];
    make_nonce(p->write_iv, seq, nonce);
    int outl = 0, fl = 0;
    bool ok = EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) == 1 &&
              EVP_EncryptUpdate(ctx, NULL, &outl, rec, 5) == 1 &&
              EVP_EncryptUpdate(ctx, body, &outl, body, (int)inner) == 1 && (size_t)outl == inner &&
              EVP_EncryptFinal_ex(ctx, body + outl, &fl) == 1 && fl == 0 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, body + inner) == 1;
    if (!ok) {
        OPENSSL_cleanse(rec, 5 + clen);
        p->broken = true;
        return false;
    }
    v.iov_len = 5 + clen;
    evbuffer_commit_space(out, &v, 1);
    return true;
}

static EVP_CIPHER_CTX *seal_ctx(const struct net_tls_park *p)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx && EVP_EncryptInit_ex(ctx, suite_cipher(p->suite), NULL, p->write_key, NULL) == 1)
        return ctx;
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
}

bool net_tls_park_seal_record(struct net_tls_park *p, uint8_t type, const void *data, size_t len,
                              size_t padding, struct evbuffer *out)
{
    EVP_CIPHER_CTX *ctx = seal_ctx(p);
    bool ok = ctx && seal_one(p, ctx, type, data, len, padding, out);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

/* Our KeyUpdate under the current key, then the next write key at sequence 0. */
static bool send_key_update(struct net_tls_park *p, bool request, struct evbuffer *out)
{
    const uint8_t msg[5] = {MT_KEY_UPDATE, 0, 0, 1, request ? 1 : 0};
    if (!net_tls_park_seal_record(p, TYPE_HANDSHAKE, msg, sizeof(msg), 0, out))
        return false;
    if (!next_secret(p, p->write_secret) ||
        !derive(p, p->write_secret, p->write_key, p->write_iv)) {
        p->broken = true;
        return false;
    }
    p->write_seq = 0;
    return true;
}

bool net_tls_park_seal(struct net_tls_park *p, const void *data, size_t len, struct evbuffer *out)
{
    if (p->write_seq >= WRITE_REKEY_AT && !send_key_update(p, false, out))
        return false;
    EVP_CIPHER_CTX *ctx = seal_ctx(p);
    if (ctx == NULL)
        return false;
    const uint8_t *d = data;
    bool ok = true;
    do {
        size_t n = len < NET_TLS_PARK_MAX_PLAIN ? len : NET_TLS_PARK_MAX_PLAIN;
        ok = seal_one(p, ctx, TYPE_APPDATA, d, n, 0, out);
        d += n;
        len -= n;
    } while (ok && len > 0);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

void net_tls_park_close_notify(struct net_tls_park *p, struct evbuffer *out)
{
    const uint8_t a[2] = {1, ALERT_CLOSE_NOTIFY};
    net_tls_park_seal_record(p, TYPE_ALERT, a, sizeof(a), 0, out);
}

bool net_tls_park_close_notify_now(struct net_tls_park *p, int fd)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL)
        return false;
    net_tls_park_close_notify(p, b);
    size_t n = evbuffer_get_length(b);
    bool ok =
        n > 0 && send(fd, evbuffer_pullup(b, -1), n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)n;
    evbuffer_free(b);
    return ok;
}

/* ---- opening ---- */

static enum net_tls_park_result fail(struct net_tls_park *p, struct evbuffer *out, uint8_t alert,
                                     const char *why, const char **err)
{
    const uint8_t a[2] = {2, alert};
    net_tls_park_seal_record(p, TYPE_ALERT, a, sizeof(a), 0, out);
    *err = why;
    return NET_TLS_PARK_ERROR;
}

/* The handshake messages of one record: only whole KeyUpdates, the last one ending it. */
static enum net_tls_park_result handshake(struct net_tls_park *p, const uint8_t *m, size_t n,
                                          struct evbuffer *out, const char **err)
{
    size_t off = 0;
    while (off < n) {
        if (n - off < 4)
            return fail(p, out, ALERT_UNEXPECTED_MESSAGE, "fragmented handshake message", err);
        size_t ml = (size_t)m[off + 1] << 16 | (size_t)m[off + 2] << 8 | m[off + 3];
        if (m[off] == MT_NEW_SESSION_TICKET && p->client) {
            /* A server may send tickets at any time (RFC 8446 4.6.1); we resume nothing. */
            if (n - off - 4 < ml)
                return fail(p, out, ALERT_UNEXPECTED_MESSAGE, "fragmented handshake message", err);
            off += 4 + ml;
            continue;
        }
        if (m[off] != MT_KEY_UPDATE)
            return fail(p, out, ALERT_UNEXPECTED_MESSAGE, "handshake message after parking", err);
        if (ml != 1 || n - off - 4 < ml)
            return fail(p, out, ALERT_DECODE_ERROR, "malformed KeyUpdate", err);
        uint8_t req = m[off + 4];
        if (req > 1)
            return fail(p, out, ALERT_ILLEGAL_PARAMETER, "bad KeyUpdate request", err);
        off += 5;
        if (off != n) /* RFC 8446 5.1: a key change ends its record */
            return fail(p, out, ALERT_UNEXPECTED_MESSAGE, "data after KeyUpdate in its record",
                        err);
        if (!next_secret(p, p->read_secret) || !derive(p, p->read_secret, p->read_key, p->read_iv))
            return fail(p, out, ALERT_INTERNAL_ERROR, "key derivation failed", err);
        p->read_seq = 0;
        if (req == 1 && !send_key_update(p, false, out)) {
            *err = "cannot answer KeyUpdate";
            return NET_TLS_PARK_ERROR;
        }
    }
    return NET_TLS_PARK_OK;
}

enum net_tls_park_result net_tls_park_open(struct net_tls_park *p, struct evbuffer *in,
                                           struct evbuffer *plain, size_t max_plain,
                                           struct evbuffer *out, const char **err)
{
    static uint8_t body[NET_TLS_PARK_MAX_CIPHER];
    *err = NULL;
    if (!p->parked) {
        *err = "not parked";
        return NET_TLS_PARK_ERROR;
    }
    EVP_CIPHER_CTX *ctx = NULL;
    enum net_tls_park_result r = NET_TLS_PARK_OK;
    while (evbuffer_get_length(plain) < max_plain && evbuffer_get_length(in) >= 5) {
        uint8_t hdr[5];
        evbuffer_copyout(in, hdr, 5);
        size_t clen = (size_t)hdr[3] << 8 | hdr[4];
        if (hdr[0] != TYPE_APPDATA) {
            r = fail(p, out, ALERT_UNEXPECTED_MESSAGE, "unprotected record", err);
            break;
        }
        if (clen > NET_TLS_PARK_MAX_CIPHER) {
            r = fail(p, out, ALERT_RECORD_OVERFLOW, "record too long", err);
            break;
        }
        if (clen < TAG_LEN + 1) {
            r = fail(p, out, ALERT_DECODE_ERROR, "record too short", err);
            break;
        }
        if (evbuffer_get_length(in) < 5 + clen)
            break;
        if (ctx == NULL) {
            ctx = EVP_CIPHER_CTX_new();
            if (ctx == NULL ||
                EVP_DecryptInit_ex(ctx, suite_cipher(p->suite), NULL, NULL, NULL) != 1) {
                r = fail(p, out, ALERT_INTERNAL_ERROR, "cipher unavailable", err);
                break;
            }
        }
        evbuffer_drain(in, 5);
        evbuffer_remove(in, body, clen);
        size_t inner = clen - TAG_LEN;
        uint8_t nonce[IV_LEN];
        make_nonce(p->read_iv, p->read_seq, nonce);
        int outl = 0, fl = 0;
        bool ok = EVP_DecryptInit_ex(ctx, NULL, NULL, p->read_key, nonce) == 1 &&
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, body + inner) == 1 &&
                  EVP_DecryptUpdate(ctx, NULL, &outl, hdr, 5) == 1 &&
                  EVP_DecryptUpdate(ctx, body, &outl, body, (int)inner) == 1 &&
                  (size_t)outl == inner && EVP_DecryptFinal_ex(ctx, body + outl, &fl) == 1;
        if (!ok) {
            OPENSSL_cleanse(body, clen);
            r = fail(p, out, ALERT_BAD_RECORD_MAC, "record failed authentication", err);
            break;
        }
        if (p->read_seq == UINT64_MAX) {
            r = fail(p, out, ALERT_INTERNAL_ERROR, "read sequence exhausted", err);
            break;
        }
        p->read_seq++;
        size_t n = inner;
        while (n > 0 && body[n - 1] == 0) /* padding (RFC 8446 5.4) */
            n--;
        if (n == 0) {
            r = fail(p, out, ALERT_UNEXPECTED_MESSAGE, "record without a content type", err);
            break;
        }
        uint8_t type = body[--n];
        if (n > NET_TLS_PARK_MAX_PLAIN) {
            r = fail(p, out, ALERT_RECORD_OVERFLOW, "plaintext too long", err);
            break;
        }
        if (type == TYPE_APPDATA) {
            evbuffer_add(plain, body, n);
        } else if (type == TYPE_ALERT) {
            if (n != 2) {
                r = fail(p, out, ALERT_DECODE_ERROR, "malformed alert", err);
                break;
            }
            *err = body[1] == ALERT_CLOSE_NOTIFY ? "close_notify" : "alert received";
            r = NET_TLS_PARK_CLOSE;
            break;
        } else if (type == TYPE_HANDSHAKE) {
            if ((r = handshake(p, body, n, out, err)) != NET_TLS_PARK_OK)
                break;
        } else {
            r = fail(p, out, ALERT_UNEXPECTED_MESSAGE, "unexpected record type", err);
            break;
        }
    }
    OPENSSL_cleanse(body, sizeof(body));
    EVP_CIPHER_CTX_free(ctx);
    return r;
}

/* ---- watching OpenSSL, and taking over ---- */

static int park_index(void)
{
    static int idx = -1;
    if (idx < 0)
        idx = SSL_get_ex_new_index(0, "net_tls_park", NULL, NULL, NULL);
    return idx;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "LABEL <client random hex> <secret hex>" into secret; its length, 0 if malformed. */
static uint8_t keylog_secret(const char *line, size_t skip, uint8_t *secret)
{
    const char *sp = strchr(line + skip, ' ');
    if (sp == NULL)
        return 0;
    const char *hex = sp + 1;
    size_t hl = strlen(hex);
    if (hl != 64 && hl != 96)
        return 0;
    for (size_t i = 0; i < hl / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        secret[i] = (uint8_t)(hi << 4 | lo);
    }
    return (uint8_t)(hl / 2);
}

static void keylog_cb(const SSL *ssl, const char *line)
{
    struct net_tls_park *p = SSL_get_ex_data(ssl, park_index());
    static const char cl[] = "CLIENT_TRAFFIC_SECRET_0 ", sv[] = "SERVER_TRAFFIC_SECRET_0 ",
                      ex[] = "EXPORTER_SECRET ";
    if (p == NULL || p->parked)
        return;
    bool server = SSL_is_server(ssl);
    if (strncmp(line, cl, sizeof(cl) - 1) == 0)
        p->client_len =
            keylog_secret(line, sizeof(cl) - 1, server ? p->read_secret : p->write_secret);
    else if (strncmp(line, sv, sizeof(sv) - 1) == 0)
        p->server_len =
            keylog_secret(line, sizeof(sv) - 1, server ? p->write_secret : p->read_secret);
    else if (strncmp(line, ex, sizeof(ex) - 1) == 0) {
        if (p->exporter == NULL)
            p->exporter = slab_malloc(48);
        p->exporter_len = keylog_secret(line, sizeof(ex) - 1, p->exporter);
    }
}

/*
 * Counts the peer's records after its Finished and the KeyUpdates either way
 * (each starts the next generation of that direction's secret at sequence 0:
 * the peer's own, as when it parked first, and OpenSSL's answers); any other
 * later handshake message taints, but for a NewSessionTicket a client reads
 * (it changes no key).
 */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    struct net_tls_park *p = arg;
    const uint8_t *m = buf;
    (void)version;
    if (p->parked)
        return;
    if (write_p) {
        if (content_type == SSL3_RT_HANDSHAKE && len >= 1 && m[0] == SSL3_MT_KEY_UPDATE)
            p->write_gen++;
        return;
    }
    if (content_type == SSL3_RT_HEADER) {
        if (p->counting)
            p->read_seq++;
    } else if (content_type == SSL3_RT_HANDSHAKE && len >= 1) {
        if (p->counting && m[0] == SSL3_MT_KEY_UPDATE) {
            p->read_gen++; /* its record was the last under the old key */
            p->read_seq = 0;
        } else if (p->counting && !(m[0] == SSL3_MT_NEWSESSION_TICKET && !SSL_is_server(ssl))) {
            p->tainted = true;
        } else if (m[0] == SSL3_MT_FINISHED) {
            p->counting = true;
        }
    } else if (content_type == SSL3_RT_CHANGE_CIPHER_SPEC && p->counting) {
        p->tainted = true;
    }
}

void net_tls_park_ctx_setup(SSL_CTX *ctx)
{
    SSL_CTX_set_keylog_callback(ctx, keylog_cb);
}

struct net_tls_park *net_tls_park_attach(SSL *ssl)
{
    /* Kept for as long as the connection: packed in the slab (base/slab.h). */
    struct net_tls_park *p = slab_calloc(1, sizeof(*p));
    SSL_set_ex_data(ssl, park_index(), p);
    SSL_set_msg_callback(ssl, msg_cb);
    SSL_set_msg_callback_arg(ssl, p);
    return p;
}

void net_tls_park_detach(struct net_tls_park *p, SSL *ssl)
{
    SSL_set_msg_callback(ssl, NULL);
    SSL_set_msg_callback_arg(ssl, NULL);
    SSL_set_ex_data(ssl, park_index(), NULL);
    net_tls_park_free(p);
}

const char *net_tls_park_check(struct net_tls_park *p, SSL *ssl, bool *never)
{
    *never = true;
    if (p->parked)
        return "already parked";
    if (!SSL_is_init_finished(ssl)) {
        *never = false;
        return "handshake under way";
    }
    if (SSL_version(ssl) != TLS1_3_VERSION)
        return "not TLS 1.3";
    const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
    uint16_t suite = ci ? SSL_CIPHER_get_protocol_id(ci) : 0;
    if (suite_cipher(suite) == NULL)
        return "cipher suite not carried";
    uint8_t hl = suite == 0x1302 ? 48 : 32;
    if (p->client_len != hl || p->server_len != hl)
        return "traffic secrets unknown";
    if (!p->counting || p->tainted)
        return "post-handshake message seen";
    *never = false;
    if (!SSL_is_init_finished(ssl) || SSL_get_shutdown(ssl) != 0 ||
        SSL_get_key_update_type(ssl) != SSL_KEY_UPDATE_NONE)
        return "handshake or shutdown under way";
    /* SSL_want says what the last call waited for: SSL_READING only means that
     * a read found the socket empty, as it does on every quiet connection once
     * the peer's KeyUpdate was read (the peer parked first), so it is no
     * reason to wait; a byte OpenSSL holds is SSL_has_pending's, a write it
     * owes is SSL_WRITING. */
    if (SSL_has_pending(ssl) || (SSL_want(ssl) != SSL_NOTHING && SSL_want(ssl) != SSL_READING))
        return "pending data";
    BIO *wb = SSL_get_wbio(ssl);
    if (wb == NULL || BIO_wpending(wb) != 0)
        return "pending output";
    return NULL;
}

int net_tls_park_begin(struct net_tls_park *p, SSL *ssl, const char **err)
{
    bool never;
    if ((*err = net_tls_park_check(p, ssl, &never)) != NULL)
        return -1;
    const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
    if (!suite_set(p, SSL_CIPHER_get_protocol_id(ci))) {
        *err = "cipher suite not carried";
        return -1;
    }
    /* OpenSSL's last record: a KeyUpdate, so that its write key retires with it. */
    uint32_t sent = p->write_gen;
    if (SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1 || SSL_do_handshake(ssl) != 1 ||
        SSL_get_key_update_type(ssl) != SSL_KEY_UPDATE_NONE ||
        BIO_wpending(SSL_get_wbio(ssl)) != 0 || p->tainted || p->write_gen != sent + 1) {
        *err = "KeyUpdate not sent";
        return -1;
    }
    /* The secrets of the generations OpenSSL reached (the keylog gave generation 0). */
    bool ok = true;
    for (uint32_t i = 0; ok && i < p->read_gen; i++)
        ok = next_secret(p, p->read_secret);
    for (uint32_t i = 0; ok && i < p->write_gen; i++)
        ok = next_secret(p, p->write_secret);
    if (!ok || !derive(p, p->read_secret, p->read_key, p->read_iv) ||
        !derive(p, p->write_secret, p->write_key, p->write_iv)) {
        *err = "key derivation failed";
        return -1;
    }
    p->write_seq = 0;
    p->client = !SSL_is_server(ssl);
    p->parked = true;
    SSL_set_msg_callback(ssl, NULL);
    SSL_set_ex_data(ssl, park_index(), NULL);
    return 0;
}

bool net_tls_park_export(const struct net_tls_park *p, const char *label, uint8_t *out,
                         size_t outlen)
{
    /* RFC 8446 7.5 without a context, as SSL_export_keying_material(..., use_context 0):
     * HKDF-Expand-Label(Derive-Secret(exporter_master_secret, label, ""), "exporter",
     * Hash(""), outlen). */
    if (!p->parked || p->exporter == NULL || p->exporter_len != p->hash_len || outlen > 255)
        return false;
    const EVP_MD *md = p->hash_len == 48 ? EVP_sha384() : EVP_sha256();
    uint8_t empty[48], secret[48];
    unsigned int hl = 0;
    if (EVP_Digest("", 0, empty, &hl, md, NULL) != 1 || hl != p->hash_len)
        return false;
    bool ok = expand_label_ctx(p, p->exporter, label, empty, hl, secret, hl) &&
              expand_label_ctx(p, secret, "exporter", empty, hl, out, outlen);
    OPENSSL_cleanse(secret, sizeof(secret));
    return ok;
}

struct net_tls_park *net_tls_park_new_raw(uint16_t suite, const uint8_t *read_secret,
                                          const uint8_t *write_secret, size_t secret_len,
                                          uint64_t read_seq, uint64_t write_seq)
{
    struct net_tls_park *p = slab_calloc(1, sizeof(*p));
    if (!suite_set(p, suite) || secret_len != p->hash_len) {
        slab_free(p);
        return NULL;
    }
    memcpy(p->read_secret, read_secret, secret_len);
    memcpy(p->write_secret, write_secret, secret_len);
    p->client_len = p->server_len = (uint8_t)secret_len;
    if (!derive(p, p->read_secret, p->read_key, p->read_iv) ||
        !derive(p, p->write_secret, p->write_key, p->write_iv)) {
        net_tls_park_free(p);
        return NULL;
    }
    p->read_seq = read_seq;
    p->write_seq = write_seq;
    p->parked = true;
    return p;
}
