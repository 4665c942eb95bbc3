/*
 * net_tls_park.h - a parked TLS 1.3 connection: the record protocol of an idle
 * connection carried on without OpenSSL's SSL object (kernel TLS in user space).
 *
 * While the handshake runs, net_tls_park_attach() watches the SSL: the keylog
 * callback gives the application traffic secrets, the message callback counts
 * the client's records. net_tls_park_begin() then sends a KeyUpdate (so the
 * server's write key is a fresh generation at sequence 0), derives the keys,
 * and the caller frees the SSL; net_tls_park_open()/net_tls_park_seal() carry
 * the connection from there on. Only TLS 1.3 with AES-128-GCM, AES-256-GCM or
 * ChaCha20-Poly1305. All cryptography is OpenSSL's (EVP AEAD, HKDF); this file
 * writes only the record framing.
 *
 * Must never: seal two records under one key and sequence number (nonce
 * reuse), park when in doubt about a sequence number or a pending byte, hand
 * the caller a plaintext byte from a record that failed authentication, or
 * accept anything but protected records once parked.
 */
#ifndef WHARF_NET_NET_TLS_PARK_H
#define WHARF_NET_NET_TLS_PARK_H

#include <event2/buffer.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_tls_park;

/* The most plaintext in one record (RFC 8446 5.1) and the most ciphertext (5.2). */
#define NET_TLS_PARK_MAX_PLAIN 16384
#define NET_TLS_PARK_MAX_CIPHER (16384 + 256)

/* Sets the keylog callback of a context whose SSLs may be parked: a server's
 * (net_conn), or a client's (a front-end's connections to its back-ends,
 * net_proxy; a client reads NewSessionTickets, before and after parking, and
 * drops them). */
void net_tls_park_ctx_setup(SSL_CTX *ctx);
/* Watches ssl's handshake (before it starts); the caller owns the result and
 * frees it with net_tls_park_free, after the SSL or instead of it. */
struct net_tls_park *net_tls_park_attach(SSL *ssl);
void net_tls_park_free(struct net_tls_park *p);
/* Stops watching ssl (never to be parked) and frees p. */
void net_tls_park_detach(struct net_tls_park *p, SSL *ssl);

/* Whether ssl can be parked now: TLS 1.3, a suite we carry, both secrets
 * known, no post-handshake message read, nothing pending either way. NULL:
 * yes; else why not, with *never set when it will never be possible. */
const char *net_tls_park_check(struct net_tls_park *p, SSL *ssl, bool *never);
/* Sends the KeyUpdate and takes the record state over: 0 and the caller frees
 * ssl (it must not write with it again); -1: not parked, the connection must be
 * closed (the KeyUpdate may be half sent). */
int net_tls_park_begin(struct net_tls_park *p, SSL *ssl, const char **err);
bool net_tls_park_parked(const struct net_tls_park *p);

enum net_tls_park_result {
    NET_TLS_PARK_OK,    /* go on */
    NET_TLS_PARK_CLOSE, /* close_notify: the peer is done */
    NET_TLS_PARK_ERROR, /* fatal: an alert was put in out, close after sending it */
};

/*
 * Opens the complete records at the head of in (leaving a partial one) while
 * plain holds less than max_plain bytes: application data to plain, a
 * KeyUpdate answered into out when the peer asks for one. On CLOSE or ERROR
 * the caller closes the connection; *err says why.
 */
enum net_tls_park_result net_tls_park_open(struct net_tls_park *p, struct evbuffer *in,
                                           struct evbuffer *plain, size_t max_plain,
                                           struct evbuffer *out, const char **err);
/* Seals len bytes of application data into records of at most 16 KiB on out. */
bool net_tls_park_seal(struct net_tls_park *p, const void *data, size_t len, struct evbuffer *out);
/* Seals a close_notify alert on out. */
void net_tls_park_close_notify(struct net_tls_park *p, struct evbuffer *out);
/* The same straight to socket fd, best effort (never blocking), as SSL_shutdown
 * does before a close: false when it was not sent whole. */
bool net_tls_park_close_notify_now(struct net_tls_park *p, int fd);
/* RFC 5705/8446 7.5 keying material of the parked connection for label, no
 * context: what SSL_export_keying_material gave before parking. */
bool net_tls_park_export(const struct net_tls_park *p, const char *label, uint8_t *out,
                         size_t outlen);
/* Forgets the exporter secret (net_tls_park_export fails from then on): for
 * a parked connection no hand-over will be checked on, whose state then
 * takes a smaller slab slot. */
void net_tls_park_drop_exporter(struct net_tls_park *p);
/* Bytes this state keeps while parked. */
size_t net_tls_park_memory(const struct net_tls_park *p);

/* For the tests and the fuzz target: a parked state from raw secrets (suite
 * 0x1301..0x1303), either side, and one record of any inner type with
 * padding. */
struct net_tls_park *net_tls_park_new_raw(uint16_t suite, const uint8_t *read_secret,
                                          const uint8_t *write_secret, size_t secret_len,
                                          uint64_t read_seq, uint64_t write_seq);
bool net_tls_park_seal_record(struct net_tls_park *p, uint8_t type, const void *data, size_t len,
                              size_t padding, struct evbuffer *out);
uint64_t net_tls_park_write_seq(const struct net_tls_park *p);
uint64_t net_tls_park_read_seq(const struct net_tls_park *p);

#endif
