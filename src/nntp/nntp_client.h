/*
 * nntp_client.h - what the two client sides of the nntpfeed process share:
 * the outbound feeds (nntp_feed.c) and the NEWNEWS pulls (nntp_pull.c).
 * The check of a list of peer entries (nntp_peer_spec), the connection to a
 * peer (plain or implicit TLS, encryption only) and a command line written.
 * Must never: block on the network.
 */
#ifndef WHARF_NNTP_NNTP_CLIENT_H
#define WHARF_NNTP_NNTP_CLIENT_H

#include "base/buf.h"
#include "base/config.h"

#include <event2/bufferevent.h>
#include <stdbool.h>
#include <stdint.h>

struct ssl_ctx_st;

/* Every entry of l (the option called option) is a peer spec, and none names a peer twice. */
int nntp_peer_list_check(const struct strlist *l, const char *option, struct buf *err);

/* Starts a connection to addr ("ADDRESS:PORT"), TLS from the start when tls, with
 * the callbacks and timeout_ms for reads and writes. NULL with err when it cannot
 * even start (the callbacks are then never called). */
struct bufferevent *nntp_peer_connect(struct event_base *base, struct ssl_ctx_st *tls_ctx,
                                      const char *addr, bool tls, int64_t timeout_ms,
                                      bufferevent_data_cb readcb, bufferevent_event_cb eventcb,
                                      void *arg, struct buf *err);

/* Queues one command line (CRLF added). */
void nntp_peer_send(struct bufferevent *bev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
