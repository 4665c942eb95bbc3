/*
 * nntp_pull.h - NEWNEWS pulls from the news servers of nntp_pull_from, run
 * inside the nntpfeed process (nntp_feed.c) on its loop and store.
 * Must never: store an article whose Path names this server, or one twice.
 */
#ifndef WHARF_NNTP_NNTP_PULL_H
#define WHARF_NNTP_NNTP_PULL_H

#include "base/buf.h"
#include "base/config.h"
#include "store/store.h"

#include <event2/event.h>
#include <jansson.h>

struct nntp_puller;
struct nntp_dialer;

/* The entries of nntp_pull_from are well formed and name each peer once. */
int nntp_pull_check_config(const struct wharf_config *cfg, struct buf *err);
/* Starts a pull of every peer now, then every nntp_pull_interval, connecting through
 * dialer (its loop, TLS and DNS, the feeds' too); changed(arg, mailbox) for each public
 * folder an article was stored in. */
struct nntp_puller *nntp_pull_new(const struct wharf_config *cfg, struct store *st,
                                  struct nntp_dialer *dialer,
                                  void (*changed)(void *arg, const char *mailbox), void *arg);
/* Each peer's state and figures, under "pulls" in obj. */
void nntp_pull_status(const struct nntp_puller *pl, json_t *obj);
void nntp_pull_free(struct nntp_puller *pl);

#endif
