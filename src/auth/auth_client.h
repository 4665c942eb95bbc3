/*
 * auth_client.h - how workers check credentials: by asking the auth process.
 *
 * Workers (smtp, imap, pop3, http) never read password hashes. They send one
 * IPC_AUTH_REQUEST frame per attempt over DATA_DIRECTORY/run/auth.sock and get
 * one IPC_AUTH_REPLY back. The auth process applies the delays and the rate
 * limits per client address and per account, and logs failures in a shape
 * fail2ban matches; a worker just relays the verdict. The reply never says
 * whether the account exists.
 */
#ifndef WHARF_AUTH_AUTH_CLIENT_H
#define WHARF_AUTH_AUTH_CLIENT_H

#include "base/config.h"

#include <event2/event.h>

enum auth_result {
    AUTH_OK,
    AUTH_FAILED,    /* wrong credentials (or no such account: same answer) */
    AUTH_TEMPFAIL,  /* auth process unreachable or store trouble: answer 4xx */
    AUTH_RATELIMIT, /* too many failures from this client or for this account */
};

struct auth_client;

struct auth_request {
    const char *service;   /* "smtp", "imap", "pop3", "http" */
    const char *mechanism; /* "PLAIN", "LOGIN" (for SCRAM see auth_scram_* later) */
    const char *authzid;   /* may be "" */
    const char *username;
    const char *password;
    const char *client_addr; /* textual IP of the client */
    bool secure;             /* true when the session is under TLS */
    bool session;            /* PLAIN: make a session token on success (webmail sign-in) */
    bool end_session;        /* BEARER: revoke this session token on success (sign-out) */
};

/*
 * Result callback: account is the canonical account name on AUTH_OK, else
 * NULL; session the token made for a request with session set (else NULL).
 * It is always called exactly once, possibly after a deliberate delay.
 */
typedef void (*auth_client_cb)(void *arg, enum auth_result result, const char *account,
                               const char *session);

/* Connects lazily, reconnects after errors. Never returns NULL. */
struct auth_client *auth_client_new(struct event_base *base, const struct wharf_config *cfg);
void auth_client_free(struct auth_client *c);

/*
 * Starts one check. Returns a handle that auth_client_cancel can use when the
 * session ends first (then cb is never called).
 */
void *auth_client_check(struct auth_client *c, const struct auth_request *req, auth_client_cb cb,
                        void *arg);
void auth_client_cancel(struct auth_client *c, void *handle);

#endif
