/*
 * net_proxy.h - the front-end proxy kit (doc/frontend.md): a client session
 * signed in on a front-end is handed over to the account's home server (the
 * back-end) over TLS, then spliced byte for byte in both directions on the
 * worker's event loop. IMAP and POP3 both use it; each protocol only words
 * its hand-over line and its replies.
 *
 * The hand-over proves, without the user's password, that a configured
 * front-end authenticated this account for this client address:
 *   mac = HMAC-SHA256(frontend_secret, "wharf-proxy v1\0" proto "\0" account
 *                     "\0" client-address "\0" exporter)
 * where exporter is 32 bytes of the TLS keying-material exporter (RFC 5705,
 * label "EXPORTER-wharf-proxy") of the very connection that carries it: the
 * secret never travels, and a hand-over seen (or relayed by a man in the
 * middle) is worth nothing on any other connection. A back-end accepts it
 * only over TLS, only from frontend_networks, only with the secret.
 *
 * Must never: let the client choose the back-end (the caller passes the
 * directory's home server of the authenticated account); accept a hand-over
 * in plaintext, from outside frontend_networks or without a secret of at
 * least 32 characters; hold a thread or large buffers per spliced session
 * (IDLE through the proxy costs two bufferevents and, once quiet for
 * tls_park_idle, two parked TLS states instead of two SSLs).
 */
#ifndef WHARF_NET_NET_PROXY_H
#define WHARF_NET_NET_PROXY_H

#include "base/buf.h"
#include "base/config.h"
#include "net/net.h"

#include <stdbool.h>

#define NET_PROXY_MIN_SECRET 32
#define NET_PROXY_MAC_HEX 64
/* Longest home-server value: an IP address or a DNS name. */
#define NET_PROXY_MAX_HOST 253

struct net_proxy;
struct evbuffer;

struct net_proxy_ops {
    /* Before the splice: one line from the back-end, without its CRLF. */
    void (*line)(void *arg, const char *line);
    /* Before the splice: the back-end cannot be reached, its certificate is
     * wrong, it timed out (frontend_connect_timeout) or it closed. The caller
     * answers its temporary error and frees the proxy (also from here). */
    void (*failed)(void *arg, const char *why);
    /* Optional: the back-end is connected, over TLS with its certificate checked
     * (HTTP, which has no greeting, sends its request from here), or
     * net_proxy_connect_local's socket is (splice now). */
    void (*connected)(void *arg);
    /* Optional: before the splice, every byte the back-end sent, instead of
     * lines (HTTP's responses); the callee drains what it used. */
    void (*data)(void *arg, struct evbuffer *in);
    /* Optional: before the splice, what net_proxy_write queued has all gone to
     * the socket (http's request bodies: the client is read again). */
    void (*drained)(void *arg);
};

/* The home-server value names this server: empty, or one of home_server_names. */
bool net_proxy_home_is_here(const struct wharf_config *cfg, const char *home);
/* A session of an account with this home server is proxied from here:
 * it is homed elsewhere and this server is a front-end (role = frontend, or a
 * frontend_secret to hand over with). */
bool net_proxy_wanted(const struct wharf_config *cfg, const char *home);
/* The front-end options (role, frontend_secret, frontend_source_address): 0, or
 * -1 with the reason in err (the imap and pop3 components' check_config). */
int net_proxy_check_config(const struct wharf_config *cfg, struct buf *err);
/* An account name a hand-over line can carry as one word (POP3, SMTP): not
 * empty, no space or control character. */
bool net_proxy_one_word(const char *account);
/* role = frontend: no mailbox is ever opened here. */
bool net_proxy_is_frontend(const struct wharf_config *cfg);

/*
 * Connects to host (the home server: an IP address, or a host name looked up
 * through the DNS kit on the worker's loop, A then AAAA, the first address)
 * on port over TLS, for client's session. NULL with the reason in why when it
 * cannot even start (neither an address nor a host name, no TLS context, no
 * secret); else the ops follow, always from the event loop.
 */
struct net_proxy *net_proxy_connect(struct net_conn *client, const char *host, unsigned port,
                                    const struct net_proxy_ops *ops, void *arg, struct buf *why);
/*
 * The same splice to a local component's unix socket (path under DATA/run),
 * in clear: the bytes are the client's own (smtp's X-WHARF-LINKSTATE hands
 * the routing process a bridgehead's connection, which carries its own TLS
 * inside). ops->connected, then the caller splices; failed as above. NULL
 * with why when it cannot even start.
 */
struct net_proxy *net_proxy_connect_local(struct net_conn *client, const char *path,
                                          const struct net_proxy_ops *ops, void *arg,
                                          struct buf *why);
/*
 * The same for a connection that belongs to no client session (http's pool
 * of connections to the home servers, which carry one request after another
 * for many clients): only ops, never a splice.
 */
struct net_proxy *net_proxy_open(struct net_worker *w, const char *host, unsigned port,
                                 const struct net_proxy_ops *ops, void *arg, struct buf *why);
/* The arg the ops get from now on (a pooled connection's owner, known after the open). */
void net_proxy_set_arg(struct net_proxy *p, void *arg);
/* What the back-end sent and nobody read yet. */
struct evbuffer *net_proxy_input(struct net_proxy *p);
/* A pooled connection becomes the session of client (a WebSocket after its 101): call
 * before net_proxy_splice. The ops are not called any more. */
void net_proxy_attach(struct net_proxy *p, struct net_conn *client);
/* Bytes to the back-end, before the splice. */
void net_proxy_write(struct net_proxy *p, const void *data, size_t len);
/* What net_proxy_write queued and the socket has not taken yet. */
size_t net_proxy_output_length(struct net_proxy *p);
/*
 * Before the splice: stop reading the back-end (a response body passed on to
 * a client that reads slower than the back-end sends), and read again; resume
 * hands what was already received to ops->data again, from the event loop.
 */
void net_proxy_pause(struct net_proxy *p);
void net_proxy_resume(struct net_proxy *p);
/* The read timeout from now on (ms; 0: none): an idle pooled connection expires with it, a
 * push stream waits without one. */
void net_proxy_set_timeout(struct net_proxy *p, int64_t ms);
/* Writes one line (CRLF added) to the back-end, before the splice. */
void net_proxy_send_line(struct net_proxy *p, const char *line);
/* The hand-over MAC of this connection for (proto, account, client address),
 * as 64 hex digits. False when the secret is missing or the exporter fails. */
bool net_proxy_handover_mac(struct net_proxy *p, const char *proto, const char *account,
                            const char *client_addr, char out[NET_PROXY_MAC_HEX + 1]);
/*
 * From now on bytes flow both ways untouched: the protocol's readable and
 * writable callbacks call net_proxy_client_readable/_writable and nothing
 * else. When the back-end goes away the client is closed after what the
 * back-end sent; gone_line (CRLF included, or NULL) is written first when
 * the back-end vanished without a clean TLS close (a crash, a reset).
 */
void net_proxy_splice(struct net_proxy *p, const char *gone_line);
void net_proxy_client_readable(struct net_proxy *p);
void net_proxy_client_writable(struct net_proxy *p);
/* The back-end's "address:port", for logs. */
const char *net_proxy_peer(const struct net_proxy *p);
/* In failed(): whether the read timeout (net_proxy_set_timeout) ended it. */
bool net_proxy_timed_out(const struct net_proxy *p);
/* Closes the back-end side; call it from the session's closed() and after failed(). */
void net_proxy_free(struct net_proxy *p);

/*
 * On a back-end: checks a hand-over line's fields on connection c (see the
 * top of this file). On success the connection shows client_addr from now on
 * (logs, per-(user, address) limits) and true is returned; else false with
 * the reason (for the log, never for the client) in why.
 */
bool net_proxy_handover_check(struct net_conn *c, const char *proto, const char *account,
                              const char *client_addr, const char *mac_hex, struct buf *why);

#endif
