/*
 * nntp_session.h - the NNTP reader protocol on one connection (RFC 3977,
 * 4642, 4643), on top of the network layer (net/net.h).
 */
#ifndef WHARF_NNTP_NNTP_SESSION_H
#define WHARF_NNTP_NNTP_SESSION_H

#include "auth/auth_client.h"
#include "net/net.h"
#include "store/store.h"

struct nntp_commit;

/* What every session of one worker process shares. */
struct nntp_server {
    struct net_worker *worker;
    const struct wharf_config *cfg;
    struct store *store;
    struct auth_client *auth;
    struct nntp_commit *commit; /* the group commit of the articles taken */
    const char *host;
};

extern const struct net_proto nntp_proto;

#endif
