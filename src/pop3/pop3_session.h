/*
 * pop3_session.h - the POP3 protocol on one connection (RFC 1939, 2449,
 * 2595, 5034), on top of the network layer (net/net.h).
 */
#ifndef WHARF_POP3_POP3_SESSION_H
#define WHARF_POP3_POP3_SESSION_H

#include "auth/auth_client.h"
#include "directory/directory_client.h"
#include "net/net.h"
#include "store/store.h"

/* What every session of one worker process shares. */
struct pop3_server {
    struct net_worker *worker;
    const struct wharf_config *cfg;
    struct store *store;
    struct auth_client *auth;
    struct directory_client *dir; /* home servers, on a front-end (pop3_proxy.c) */
    char *greeting_host;
};

extern const struct net_proto pop3_proto;

#endif
