/*
 * net.h - the network layer every protocol worker shares (smtp, imap, pop3,
 * nntp, http): a worker runtime, listeners on inherited fds, connections with
 * libevent bufferevents, a bounded line reader, TLS (implicit and STARTTLS),
 * DEFLATE compression above TLS, per-client-address connection limits, idle
 * timeouts and graceful drain.
 *
 * A protocol describes itself with a struct net_proto and registers it for
 * each of its services; the runtime accepts, counts, times out and closes
 * connections and calls the protocol back. The protocol never touches
 * sockets, SSL objects or the listener.
 *
 * Must never: carry plaintext read before a STARTTLS handshake into the TLS
 * session (net_conn_starttls discards it), or let one connection's slowness
 * block the others (everything here is non-blocking).
 */
#ifndef WHARF_NET_NET_H
#define WHARF_NET_NET_H

#include "base/buf.h"
#include "base/component.h"
#include "ipc/event.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

struct net_worker;
struct net_conn;
struct control;

enum net_tls_mode {
    NET_TLS_NONE,     /* plaintext only */
    NET_TLS_STARTTLS, /* plaintext, may upgrade with net_conn_starttls */
    NET_TLS_IMPLICIT, /* TLS from the first byte (465, 993, 995) */
};

struct net_proto {
    /*
     * A connection was accepted (and, for implicit TLS, its handshake done).
     * Returns the protocol's session object; say the greeting here.
     */
    void *(*open)(struct net_conn *c, void *proto_arg);
    /* Bytes are waiting in net_conn_input(). Read lines or raw bytes from it. */
    void (*readable)(void *session);
    /* A STARTTLS handshake finished (reset the session state now). */
    void (*tls_ready)(void *session);
    /* The read timeout fired: say goodbye (net_conn_close follows by itself). */
    void (*timeout)(void *session);
    /* The worker drains (shutdown or reload): close when idle. May be NULL. */
    void (*drain)(void *session);
    /* The connection is gone (peer closed, error, or net_conn_close). Free session. */
    void (*closed)(void *session);
    /*
     * Everything written so far has left (the output is empty), to go on with
     * output the protocol held back while net_conn_output_blocked(). May be NULL.
     */
    void (*writable)(void *session);
    /*
     * The ALPN protocols (RFC 7301) this protocol speaks over TLS, in its order
     * of preference, in the wire format ("\x02h2\x08http/1.1"); the handshake
     * picks the first one the client offers too (net_conn_alpn). NULL, or no
     * protocol in common: the handshake goes on without ALPN.
     */
    const unsigned char *alpn;
    size_t alpn_len;
};

struct net_service_limits {
    /* Over every worker when wharfd shares its connection table, else per process. */
    unsigned max_conns;            /* 0 = unlimited */
    unsigned max_conns_per_client; /* per client address (IPv6: per /64); 0 = unlimited */
    /*
     * Initial command timeout; net_conn_set_timeout changes it. It counts from
     * the last time the protocol consumed input (a whole command line, a
     * chunk of a literal or of message data), not from the last byte: a
     * client trickling one byte at a time is cut as one that sends nothing.
     */
    int64_t idle_timeout_ms;
    /* Time from accept until net_conn_login, 0 = none (a client that never logs in). */
    int64_t login_timeout_ms;
    /* Reply sent, then close, when a limit refuses a connection (e.g. "421 4.7.0 ...\r\n"). */
    const char *refuse_line;
};

/* ---- worker runtime ---- */

/*
 * The network worker on the component skeleton (ipc/component_loop.h): loads
 * the TLS context (the key is read as root), then the skeleton prepares
 * DATA_DIRECTORY, drops privileges to wharf_user, makes the event loop,
 * opens the control channel, turns SIGTERM/SIGINT into a drain and enters
 * the sandbox. Everything the protocol opens after this runs as the
 * unprivileged, confined user.
 */
struct net_worker *net_worker_new(struct component_ctx *ctx);
struct event_base *net_worker_base(struct net_worker *w);
const struct wharf_config *net_worker_config(struct net_worker *w);
/*
 * Serves the inherited listener named service with proto, with the
 * connection limits of the services table (component_connection_limits) in
 * place of limits' max_conns and max_conns_per_client. Returns false (and
 * logs) when this process was not given that listener (service disabled).
 */
bool net_worker_serve(struct net_worker *w, const char *service, enum net_tls_mode tls,
                      const struct net_proto *proto, void *proto_arg,
                      const struct net_service_limits *limits);
/* The heap's free pages back to the system (glibc's malloc_trim, which
 * otherwise keeps them): after the worker freed much at once (a dropped cache). */
void net_worker_trim(struct net_worker *w);
/* Extra figures for `wharf status` (connections is always added). */
void net_worker_set_status(struct net_worker *w, void (*fn)(void *arg, json_t *obj), void *arg);
/*
 * Event bus (ipc/event.h): the callback for the events this worker
 * subscribed to (one callback per worker), the subscriptions themselves
 * (control_subscribe), and publishing (relayed by wharfd to the other
 * processes subscribed to the event).
 */
void net_worker_on_event(struct net_worker *w, void (*fn)(void *arg, const struct ipc_event *ev),
                         void *arg);
void net_worker_subscribe(struct net_worker *w, enum ipc_event_type type, enum ipc_subscribe_op op,
                          const char *owner);
void net_worker_publish(struct net_worker *w, const struct ipc_event *ev);
/* The control channel to wharfd (ipc/control.h: control_status_all). */
struct control *net_worker_control(struct net_worker *w);
/* True once a shutdown was asked for. */
bool net_worker_draining(const struct net_worker *w);
/* Runs the loop until drained, then closes what is left; returns the exit code. */
int net_worker_run(struct net_worker *w);
/* Frees the worker and its event base (free the protocol's own events first). */
void net_worker_free(struct net_worker *w);
/* Live connection count of this process. */
size_t net_worker_connections(const struct net_worker *w);

/* ---- connections ---- */

const char *net_conn_addr(const struct net_conn *c); /* "192.0.2.1" */
/* The address of the TCP peer itself: a front-end's after a hand-over, when
 * net_conn_addr says the client's. */
const char *net_conn_peer_addr(const struct net_conn *c);
/* After a trusted front-end's hand-over (net_proxy.h): addr (textual IP) is
 * the client from now on for logs and per-(user, address) limits. False when
 * addr is no IP address. */
bool net_conn_set_client(struct net_conn *c, const char *addr);
const char *net_conn_host(const struct net_conn *c);    /* "unknown" (no reverse DNS yet) */
const char *net_conn_service(const struct net_conn *c); /* "smtp", "submission", ... */
const struct sockaddr *net_conn_sockaddr(const struct net_conn *c);
struct net_worker *net_conn_worker(struct net_conn *c);
bool net_conn_is_tls(const struct net_conn *c);
bool net_conn_can_starttls(const struct net_conn *c); /* STARTTLS service, not yet TLS */
/* "TLSv1.3", "TLS_AES_256_GCM_SHA384", bits; NULL/0 when not TLS. */
const char *net_conn_tls_version(const struct net_conn *c);
const char *net_conn_tls_cipher(const struct net_conn *c);
int net_conn_tls_bits(const struct net_conn *c);
/* The ALPN protocol the TLS handshake agreed on ("h2"), "" when none. */
const char *net_conn_alpn(const struct net_conn *c);

/* Bytes received and not consumed yet. Consume with evbuffer_drain/remove. */
struct evbuffer *net_conn_input(struct net_conn *c);

enum net_line_result {
    NET_LINE_OK,        /* a line is in line_r, without its CRLF or LF */
    NET_LINE_NEED_MORE, /* no complete line yet */
    NET_LINE_TOO_LONG,  /* longer than max: it is being skipped up to its end */
};
/*
 * Takes one line (ended by LF, an optional CR before it removed) of at most
 * max bytes. A longer line is reported once and then discarded up to its LF.
 */
enum net_line_result net_conn_read_line(struct net_conn *c, size_t max, struct buf *line_r);

void net_conn_write(struct net_conn *c, const void *data, size_t len);
/*
 * From now on a write to this plain connection while the client waits (no
 * output queued, no input unread) goes to the socket at once, in the loop's
 * current turn, instead of on its next one. Only for a protocol without a
 * writable callback: a write that leaves at once raises none.
 */
void net_conn_write_through(struct net_conn *c);
/* Moves every byte of src to the output (the proxy's splice: no copy without DEFLATE). */
void net_conn_write_buffer(struct net_conn *c, struct evbuffer *src);
/* The peer is not reading: output is above the high-water mark (reading is paused meanwhile). */
bool net_conn_output_blocked(const struct net_conn *c);
/* Bytes written and not yet handed to the kernel (what a slow reader makes us hold). */
size_t net_conn_output_length(struct net_conn *c);
/*
 * The protocol expects c to stay quiet for long (a push stream, set up): its
 * TLS is parked (net_tls_park.h) as soon as what was written is sent, not
 * after tls_park_idle. A worker taking thousands of such connections a second
 * then holds the handshake state of the few in flight, not of every one
 * still waiting for tls_park_idle. No effect when parking is off or not
 * possible for c.
 */
void net_conn_park_soon(struct net_conn *c);
void net_conn_printf(struct net_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One protocol reply line: fmt formatted, then CRLF (the shape of SMTP, POP3, IMAP). */
void net_conn_vreply(struct net_conn *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Command timeout from now on (0: none); see net_service_limits.idle_timeout_ms. */
void net_conn_set_timeout(struct net_conn *c, int64_t ms);

/*
 * The client logged in as user. From now on the connection is no longer
 * "pre-login": the login timeout stops and it is never evicted to admit a new
 * client. Counts the connection per (family, user, client address) over every
 * worker (family: "imap" for 143 and 993 together, "pop3", "smtp") and refuses
 * (returns false, nothing changed) when max_per_user_addr connections of that
 * user from that address are logged in already (0: no limit). The count is
 * given back when the connection closes.
 */
bool net_conn_login(struct net_conn *c, const char *family, const char *user,
                    unsigned max_per_user_addr);

/*
 * Stops reading (while an asynchronous step runs: an auth check, a spool
 * sync); resume calls readable() again if bytes are already waiting.
 */
void net_conn_pause(struct net_conn *c);
void net_conn_resume(struct net_conn *c);

/*
 * Upgrades to TLS after the caller has written its "ready" reply: waits
 * until that reply is sent, DISCARDS every byte received so far, then
 * handshakes; tls_ready() follows, or the connection closes on failure.
 * Returns false when TLS is not configured.
 */
bool net_conn_starttls(struct net_conn *c);

/*
 * Starts DEFLATE compression (RFC 1951 raw deflate, as IMAP COMPRESS, RFC
 * 4978, and NNTP COMPRESS, RFC 8054, want) in both directions, above TLS.
 * Call it after writing the command's "OK": what was written before goes out
 * as it is, everything after is compressed, and flushed once the loop has
 * finished each batch of output (a client never waits for bytes held in
 * zlib). Bytes received from now on, including any already buffered behind
 * the command, are inflated before the protocol reads them, under the same
 * limits as plain text; a corrupt stream closes the connection (logged).
 * Returns false when already compressing or a STARTTLS is pending.
 */
bool net_conn_start_compress(struct net_conn *c);
bool net_conn_is_compressed(const struct net_conn *c);

/* Closes after pending output is sent (flush) or at once. closed() follows, later. */
void net_conn_close(struct net_conn *c, bool flush);

/*
 * The server TLS context of the configured certificate (a self-signed pair in
 * DATA/tls when none is configured), for a process that accepts TLS outside
 * the worker runtime: the routing engine on 691. Call it as root (the key is
 * root's). NULL with err. Free with SSL_CTX_free.
 */
struct ssl_ctx_st;
struct ssl_ctx_st *net_tls_server_ctx_new(const struct wharf_config *cfg, struct buf *err);

/* ---- addresses ---- */

/* True when addr (textual IP) is inside one of the networks ("10.0.0.0/8", "[::1]/128"). */
bool net_addr_in_networks(const char *addr, const char *const *networks, size_t n);
/* 0 when every entry of mynetworks, exempt_networks and frontend_networks is a network;
 * else -1 with the first one that is not in err (a component's check_config). */
int net_addr_check_networks(const struct wharf_config *cfg, struct buf *err);
/* True when addr is in mynetworks, exempt_networks or frontend_networks: never held to
 * per-address limits. */
bool net_addr_exempt(const struct wharf_config *cfg, const char *addr);
/* True when addr is in frontend_networks: one of our front-ends (whether it is trusted for a
 * hand-over is net_proxy_handover_check's to say). */
bool net_addr_frontend(const struct wharf_config *cfg, const char *addr);
/*
 * The local address an outgoing connection comes from (frontend_source_address,
 * mta_source_address: on a multi-homed server, the one its peers expect): binds socket fd,
 * of address family family, to the first of addrs[0..n) (textual IP addresses) of that
 * family. 1: bound; 0: none of that family (the system chooses); -1 with the reason in why
 * (an entry that is not an IP address, or the bind failed).
 */
int net_addr_bind_source(int fd, int family, const char *const *addrs, size_t n, struct buf *why);
/* An outgoing connection's socket (TCP, non-blocking, close-on-exec) of family: bound as
 * net_addr_bind_source says when addrs name any (mta_source_address,
 * nntp_feed_source_address), else -1 for libevent to make its own. -1 also on failure,
 * with why set and nothing left open: tell the two apart by why->len. */
int net_addr_source_socket(int family, const char *const *addrs, size_t n, struct buf *why);
/* A source address option (mta_source_address, nntp_feed_source_address): IP addresses, at
 * most one of each family. False with "OPTION: ..." in err. */
bool net_addr_source_list_check(const struct strlist *l, const char *option, struct buf *err);

#endif
