/*
 * net_internal.h - what the files of src/net share and protocols never see.
 */
#ifndef WHARF_NET_NET_INTERNAL_H
#define WHARF_NET_NET_INTERNAL_H

#include "base/conntab.h"
#include "net/net.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

struct net_service;

/* Builds the server TLS context (generating a self-signed pair if none is configured). */
SSL_CTX *net_tls_ctx_new(const struct wharf_config *cfg, struct buf *err);

/* The ALPN choice of the worker's TLS context (SSL_CTX_set_alpn_select_cb): the protocol's. */
int net_conn_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                         const unsigned char *in, unsigned int inlen, void *arg);

/* len bytes of the TLS keying-material exporter (RFC 5705, no context) for label,
 * parked or not (the proxy's channel binding); false when c is not TLS. */
bool net_conn_export(struct net_conn *c, const char *label, uint8_t *out, size_t len);
/* The front-ends' client TLS context (frontend_tls_ca_file), made as root; NULL when
 * this server is no front-end. */
SSL_CTX *net_worker_proxy_tls(struct net_worker *w);
/* The head of the worker's list of proxies (net_proxy.c links them). */
struct net_proxy **net_worker_proxies(struct net_worker *w);
/* Parks the worker's proxies to back-ends quiet for idle_ms (net_proxy.c): how many. */
size_t net_proxy_park_sweep(struct net_worker *w, int64_t now, int64_t idle_ms);
/* A connection parked outside the sweep (net_conn_park_soon): counted for
 * the sweep's malloc_trim. */
void net_worker_note_parked(struct net_worker *w);
/* How many of the worker's proxies are parked, and of those asleep (no bufferevent). */
size_t net_proxy_parked(struct net_worker *w, size_t *asleep_r);
/* How many are spliced on the pump (net_proxy.c), and of those not reading
 * the back-end because their client's output is blocked. */
size_t net_proxy_pumped(struct net_worker *w, size_t *held_r);
/* The front-end's resolver for home servers named by host name (dns_resolver),
 * made on first use; NULL with the reason in err. */
struct dns_resolver *net_worker_proxy_dns(struct net_worker *w, struct buf *err);

/* libevent's allocations through the slab's hooks (net_slab.c): set once per
 * network worker, before its event loop. Between net_slab_enter and
 * net_slab_leave (nested), what libevent allocates lives in the slab
 * (base/slab.h): a connection's events, a parked connection's bufferevent. */
void net_slab_install(void);
void net_slab_enter(void);
void net_slab_leave(void);
/* The read event a parked connection sleeps on (net_conn, net_proxy): *ev
 * (EV_READ | EV_PERSIST on fd, made in the slab on first use) added with what
 * is left of timeout_ms counted from since_ms (CLOCK_MONOTONIC; 0: no timeout). */
/* libevent's record of socket number fd in base made in the slab, if it has
 * none yet: before the first event on a new socket (net_slab.c says why). */
void net_slab_fd_record(struct event_base *base, evutil_socket_t fd);
void net_slab_sleep_arm(struct event **ev, struct event_base *base, evutil_socket_t fd,
                        event_callback_fn cb, void *arg, int64_t timeout_ms, int64_t since_ms);

/* The worker side of a connection's life. */
struct net_conn *net_conn_new(struct net_worker *w, struct net_service *svc, int fd,
                              const struct sockaddr *sa, socklen_t salen,
                              const struct conntab_hold *hold);
void net_conn_drain(struct net_conn *c);
/* Bytes zlib holds for c's DEFLATE stage; 0 when c is not compressed. */
size_t net_conn_compress_memory(const struct net_conn *c);
void net_conn_abort(struct net_conn *c);
/* Parks c's TLS (net_tls_park.h) if it is TLS 1.3 and has been quiet for idle_ms
 * with nothing pending (true: parked now); closes it if the hand-over fails half way. */
bool net_conn_park_maybe(struct net_conn *c, int64_t now, int64_t idle_ms);
bool net_conn_tls_parked(const struct net_conn *c);
/* Spliced (net_proxy_splice): c's TLS leaves its bufferevent for the pump
 * (net_pump.h) once the bufferevent's output is sent; a TLS connection not
 * compressed, not parked, and without a read timeout (the guard keeps its
 * command timeout) only. net_conn_pumped: it has. */
void net_conn_pump(struct net_conn *c);
bool net_conn_pumped(const struct net_conn *c);
/* Parked and asleep: no bufferevent, one read event on the socket. */
bool net_conn_tls_asleep(const struct net_conn *c);

/* Called by net_conn when a connection is freed. */
void net_worker_conn_gone(struct net_worker *w, struct net_service *svc, const char *addr,
                          const struct conntab_hold *hold);
SSL_CTX *net_worker_tls(struct net_worker *w);
const struct net_proto *net_service_proto(const struct net_service *svc, void **arg_r);
const char *net_service_name(const struct net_service *svc);
enum net_tls_mode net_service_tls(const struct net_service *svc);
int64_t net_service_idle_ms(const struct net_service *svc);
int64_t net_service_login_ms(const struct net_service *svc);
/* Eviction (net_worker.c picks, net_conn.c evicts). */
bool net_conn_evictable(const struct net_conn *c, int64_t *progress_r);
struct net_service *net_conn_svc(const struct net_conn *c);
void net_conn_evict(struct net_conn *c, const char *newcomer);
uint64_t net_conn_login_key(const struct net_conn *c);
/* Per-(user, address) counts after login: admit (false: over max) and give back. */
bool net_worker_login_admit(struct net_worker *w, uint64_t key, unsigned max, int *cell_r);
void net_worker_login_gone(struct net_worker *w, int cell);
/* The worker's list of live connections: add returns the handle remove takes. */
void *net_worker_link_add(struct net_worker *w, struct net_conn *c);
void net_worker_link_remove(struct net_worker *w, void *handle);
/* Textual IP of a peer ("192.0.2.1", v4-mapped v6 shown as v4), "local" otherwise. */
void net_addr_format(const struct sockaddr *sa, char *out, size_t len);

#endif
