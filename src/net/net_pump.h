/*
 * net_pump.h - a TLS connection driven without a bufferevent (net_pump.c).
 *
 * Once a session is spliced (a front-end relaying bytes between its client
 * and a back-end), both of its TLS connections leave their
 * bufferevent_openssl for a pump: the SSL and the socket, OpenSSL's
 * read-ahead, one read per wake-up (SSL_has_pending says whether OpenSSL
 * holds more records), SSL_write as soon as bytes are queued, and the write
 * event armed only while a write would block. A proxied command's round trip
 * costs one read and one write each way and no epoll_ctl; a
 * bufferevent_openssl reads a record in two reads (header, body) and arms and
 * disarms its write event around each write.
 *
 * The owner keeps the SSL and the socket (the pump frees neither) and gives
 * the pump its event callback, in which it calls net_pump_run under its own
 * guard against being freed (the pump never calls back outside net_pump_run).
 * Used by net_conn.c (the client's side) and net_proxy.c (the back-end's).
 */
#ifndef WHARF_NET_NET_PUMP_H
#define WHARF_NET_NET_PUMP_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct net_pump;

struct net_pump_ops {
    /* Plaintext arrived in in (the owner takes what it wants; the rest stays). */
    void (*readable)(void *arg, struct evbuffer *in);
    /* out was blocked (the write event armed) and is now empty. */
    void (*drained)(void *arg);
    /* The peer ended (clean: its close_notify) or a read or write failed:
     * the pump has stopped; the owner ends the session. */
    void (*gone)(void *arg, bool clean);
};

/* The pump's events on fd (not armed): cb(fd, what, arg) is the owner's. */
struct net_pump *net_pump_new(struct event_base *base, evutil_socket_t fd, SSL *ssl,
                              event_callback_fn cb, void *arg);
/* Its events and buffers; the SSL and the socket stay the owner's. */
void net_pump_free(struct net_pump *u);
/* The owner's callback from the loop's next turn (what = EV_READ). */
void net_pump_kick(struct net_pump *u);
/* Takes over the SSL (read-ahead on) from whatever drove it before and starts reading. */
void net_pump_start(struct net_pump *u);
bool net_pump_started(const struct net_pump *u);
SSL *net_pump_ssl(const struct net_pump *u);
/* From the owner's callback: writes what is queued, reads what came. */
void net_pump_run(struct net_pump *u, short what, const struct net_pump_ops *ops, void *arg);
/* Plaintext read and not yet taken, and plaintext queued to send. */
struct evbuffer *net_pump_input(struct net_pump *u);
struct evbuffer *net_pump_output(struct net_pump *u);
/* Sends what net_pump_output holds as far as the socket takes it; a failure
 * is reported by gone from the loop, never from here. */
void net_pump_flush(struct net_pump *u);
/* Bytes queued to send (those of a write to retry included). */
size_t net_pump_pending(const struct net_pump *u);
/* Reading on or off (the peer's output is blocked: back-pressure). On again,
 * records OpenSSL already holds are read from the loop. */
void net_pump_read(struct net_pump *u, bool on);
bool net_pump_reading(const struct net_pump *u);
/* Nothing read or written from now on (the session ends). */
void net_pump_stop(struct net_pump *u);
/* Nothing pending anywhere: nothing queued, nothing read and untaken, no
 * record held by OpenSSL, no write to retry (parking may take the SSL). */
bool net_pump_quiet(const struct net_pump *u);

#endif
