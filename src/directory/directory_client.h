/*
 * directory_client.h - how network workers ask the directory: recipients,
 * aliases, quotas and home servers, without ever opening its database.
 *
 * A worker (smtp, imap, pop3, and the http/nntp workers and the front-end
 * proxy to come) has one client on its event loop. Each lookup sends one
 * IPC_DIRECTORY_LOOKUP over DATA_DIRECTORY/run/directory.sock to the
 * directory process (directory_server.c) and ends in exactly one callback,
 * always from the event loop, never from inside directory_client_lookup:
 *   - from the worker's cache when it holds an answer younger than
 *     directory_client_cache_ttl ("no such user" answers:
 *     directory_client_negative_ttl); at most directory_client_cache_entries
 *     answers are kept, the oldest goes first;
 *   - else from the directory process's answer;
 *   - or TEMPFAIL when the directory process cannot be reached, goes away,
 *     does not answer within directory_client_timeout, or when
 *     directory_client_queue_max lookups are already outstanding (the
 *     caller answers 4xx: nothing is refused for good on a temporary fault).
 * Temporary failures are never cached. The event loop never waits on the
 * directory's disk, nor later on its LDAP server.
 */
#ifndef WHARF_DIRECTORY_DIRECTORY_CLIENT_H
#define WHARF_DIRECTORY_DIRECTORY_CLIENT_H

#include "base/config.h"
#include "directory/directory_proto.h"

#include <event2/event.h>
#include <jansson.h>

struct directory_client;

/* a is valid during the call only. */
typedef void (*directory_client_cb)(void *arg, const struct directory_answer *a);

/* Connects lazily, reconnects after errors. Never returns NULL. */
struct directory_client *directory_client_new(struct event_base *base,
                                              const struct wharf_config *cfg);
/* The same on another socket of the directory process, relative to DATA: the
 * auth process asks LOGIN queries on run/directory-auth.sock. */
struct directory_client *directory_client_new_at(struct event_base *base,
                                                 const struct wharf_config *cfg,
                                                 const char *socket);
void directory_client_free(struct directory_client *c);

/* Starts one lookup; returns a handle for directory_client_cancel (then cb is never called). */
void *directory_client_lookup(struct directory_client *c, enum directory_query q, const char *key,
                              directory_client_cb cb, void *arg);
void directory_client_cancel(struct directory_client *c, void *handle);

/*
 * For a caller that cannot wait (the store's quota on IMAP APPEND): copies
 * the cached answer into *a (free it with directory_answer_free) without
 * waiting. Returns 1 when it is fresh, 0 when it is older than its TTL
 * (expired answers stay until a fresh one replaces them or they are evicted;
 * temporary failures never replace them), -1 when there is none. Unless
 * fresh, it also starts a lookup that refreshes the cache, so that the
 * next peek finds it.
 */
int directory_client_peek(struct directory_client *c, enum directory_query q, const char *key,
                          struct directory_answer *a);

/* Live figures for a worker's status: directory_outstanding, directory_cached,
 * directory_cache_hits and directory_cache_misses. */
void directory_client_status(const struct directory_client *c, json_t *obj);

#endif
