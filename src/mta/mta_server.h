/*
 * mta_server.h - DATA/run/deliver.sock: `wharf deliver` hands its message to
 * the running mta, whose batch stores it together with concurrent ones.
 *
 * One connection carries IPC_DELIVER_REQUEST frames (lda.h) one at a time;
 * each gets one IPC_DELIVER_REPLY after the store commit. A malformed or
 * oversized frame ends the connection. The socket lives in DATA/run (wharf,
 * 0750): only root and the wharf group can inject mail this way, as with
 * Postfix's local pickup. Never delivers anything itself: the batch does.
 */
#ifndef WHARF_MTA_SERVER_H
#define WHARF_MTA_SERVER_H

#include "base/config.h"
#include "mta/mta_batch.h"

struct mta_server;

/* Binds the socket (replacing a stale one). NULL with err on failure. */
struct mta_server *mta_server_start(struct event_base *base, const struct wharf_config *cfg,
                                    struct mta_batch *batch, struct buf *err);
/* Stops accepting new connections (shutdown). */
void mta_server_stop_accepting(struct mta_server *srv);
size_t mta_server_connections(const struct mta_server *srv);
void mta_server_free(struct mta_server *srv);

#endif
