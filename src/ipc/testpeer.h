/*
 * testpeer.h - a scripted peer on a real unix socket, for the unit tests of
 * IPC clients (the auth and directory clients, ipc/client.h): a temporary
 * data directory with run/, a configuration pointing at it, an event loop,
 * and a listener that hands every whole frame to the test.
 * Test support only: never linked into a program.
 */
#ifndef WHARF_IPC_TESTPEER_H
#define WHARF_IPC_TESTPEER_H

#include "base/config.h"
#include "ipc/frame.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>

#define TESTPEER_MAX_CONNS 8

struct testpeer;

/* One whole frame from a client; the payload is valid during the call only. */
typedef void (*testpeer_frame_fn)(void *arg, struct bufferevent *bev, const struct ipc_frame *f);

struct testpeer {
    char dir[64];
    struct wharf_config cfg;
    struct event_base *base;
    struct evconnlistener *l;
    char *sock;
    struct bufferevent *conns[TESTPEER_MAX_CONNS];
    size_t n_conns;
    unsigned accepted, frames;
    testpeer_frame_fn on_frame;
    void (*on_drop)(void *arg, struct bufferevent *bev); /* optional */
    void *arg;
};

/* The directory, the configuration ("data_directory = DIR" then config) and the loop. */
void testpeer_setup(struct testpeer *p, const char *config);
/* Listens on DIR/run/name. */
void testpeer_listen(struct testpeer *p, const char *name, testpeer_frame_fn fn, void *arg);
/* Sends one frame on bev. */
void testpeer_send(struct bufferevent *bev, uint16_t type, const void *payload, size_t len);
/* Closes one connection (on_drop is called first). */
void testpeer_drop(struct testpeer *p, struct bufferevent *bev);
/* Runs the loop in 10 ms steps until done(ctx) or 5 s have passed; returns done(ctx). */
bool testpeer_run_until(struct testpeer *p, bool (*done)(void *ctx), void *ctx);
/* Runs the loop for ms milliseconds (to let what should not come show up). */
void testpeer_run_for(struct testpeer *p, int ms);
/* Frees everything and removes the directory. */
void testpeer_teardown(struct testpeer *p);

#endif
