/*
 * auth_login.h - the login kit every line protocol drives (smtp AUTH, imap
 * LOGIN and AUTHENTICATE, pop3 USER/PASS and AUTH; nntp AUTHINFO, the
 * front-end proxy and ManageSieve next): the SASL PLAIN and LOGIN exchange,
 * the plaintext policy, the asynchronous check at the auth process
 * (auth_client.h), the failure delay and the per-(user, address) connection
 * limit.
 *
 * The protocol keeps its wire syntax and its replies: it names its
 * continuation prefix ("334 " or "+ "), hands over the mechanism and the
 * initial response it parsed, each response line, or the user and password
 * of a plain login command, and answers the one result the kit gives it in
 * done(). Two layers:
 *   - struct auth_sasl: the exchange as a pure state machine (no I/O, no
 *     clock), unit-tested in test_auth_login.c;
 *   - struct auth_login: the glue to one connection (net_conn) and the auth
 *     client.
 *
 * Must never: log or keep a password beyond the check (wiped at once), let
 * a connection read while its credentials are out (it is paused until the
 * protocol resumes it after done), or offer a mechanism over cleartext
 * unless the protocol's configuration allows it.
 */
#ifndef WHARF_AUTH_AUTH_LOGIN_H
#define WHARF_AUTH_AUTH_LOGIN_H

#include "auth/auth_client.h"
#include "auth/sasl.h"
#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>

struct net_conn;

/* A SASL response line may be longer than a command line (RFC 5034, RFC 4959). */
#define AUTH_LOGIN_MAX_RESPONSE 8192

enum auth_login_mech {
    AUTH_MECH_PLAIN = 1 << 0, /* RFC 4616 */
    AUTH_MECH_LOGIN = 1 << 1, /* draft-murchison-sasl-login: SMTP clients still use it */
};

/* ---- the exchange, without I/O ---- */

enum auth_sasl_action {
    AUTH_SASL_UNSUPPORTED, /* not a mechanism on offer: nothing started */
    AUTH_SASL_CHALLENGE,   /* send challenge as a continuation, read one response line */
    AUTH_SASL_CHECK,       /* creds are complete: check them */
    AUTH_SASL_REFUSED,     /* status says why (SASL_CANCEL: the client sent "*") */
};

struct auth_sasl {
    unsigned mechs;   /* enum auth_login_mech bits on offer */
    size_t max_field; /* auth_max_credential_length */
    const char *mech; /* "PLAIN", "LOGIN" while an exchange runs or is checked, else NULL */
    bool want_line;   /* a challenge was sent, a response line comes next */
    struct buf user;  /* LOGIN: the user name, until the password comes */
    bool have_user;
};

struct auth_sasl_out {
    const char *challenge;   /* AUTH_SASL_CHALLENGE: base64 text, "" for an empty one */
    struct sasl_plain creds; /* AUTH_SASL_CHECK: authzid, authcid, passwd */
    enum sasl_status status; /* AUTH_SASL_REFUSED */
};

void auth_sasl_init(struct auth_sasl *x, unsigned mechs, size_t max_field);
/* Forgets an exchange under way (wipes a LOGIN user name). */
void auth_sasl_reset(struct auth_sasl *x);
void auth_sasl_free(struct auth_sasl *x);
void auth_sasl_out_init(struct auth_sasl_out *o);
void auth_sasl_out_free(struct auth_sasl_out *o); /* wipes the password */
/*
 * Starts mechanism mech (any case) with the initial response ir (ir.ptr ==
 * NULL: none; "=" is the empty one of RFC 4954).
 */
enum auth_sasl_action auth_sasl_start(struct auth_sasl *x, struct slice mech, struct slice ir,
                                      struct auth_sasl_out *out);
/* One response line (without CRLF) while want_line. */
enum auth_sasl_action auth_sasl_step(struct auth_sasl *x, struct slice line,
                                     struct auth_sasl_out *out);
/* Appends the name of each mechanism on offer, each after prefix ("AUTH=", " "). */
void auth_sasl_mechanisms(const struct auth_sasl *x, const char *prefix, struct buf *out);

/* ---- the kit on a connection ---- */

enum auth_login_status {
    AUTH_LOGIN_OK,             /* account is the canonical account name */
    AUTH_LOGIN_FAILED,         /* wrong credentials (after failure_delay_ms) */
    AUTH_LOGIN_RATELIMIT,      /* the auth process refuses: too many failures */
    AUTH_LOGIN_TEMPFAIL,       /* the auth process cannot answer now */
    AUTH_LOGIN_USER_ADDR_FULL, /* right credentials, but max_per_user_addr are logged in */
    AUTH_LOGIN_CANCELLED,      /* the client cancelled the exchange ("*") */
    AUTH_LOGIN_MALFORMED,      /* a response the mechanism refuses: sasl says why */
};

struct auth_login_result {
    enum auth_login_status status;
    const char *account;   /* OK and USER_ADDR_FULL */
    const char *mechanism; /* "PLAIN" or "LOGIN" */
    enum sasl_status sasl; /* MALFORMED */
    const char *session;   /* OK after auth_login_session: the new session token */
};

/* What the protocol does after a call. */
enum auth_login_step {
    AUTH_LOGIN_UNSUPPORTED, /* not a mechanism on offer: nothing started, answer so */
    AUTH_LOGIN_CHALLENGED,  /* a continuation was sent: feed the next line to auth_login_line */
    AUTH_LOGIN_CHECKING,    /* out at the auth process; the connection is paused; done follows */
    AUTH_LOGIN_DONE,        /* done() has run already, before the call returned */
};

typedef void (*auth_login_done_fn)(void *arg, const struct auth_login_result *r);

struct auth_login_params {
    const char *service;        /* "smtp", "imap", "pop3": the request's and the limit's name */
    const char *continuation;   /* what a challenge follows on the wire: "334 ", "+ " */
    unsigned mechs;             /* enum auth_login_mech bits */
    bool plaintext;             /* logins allowed without TLS (smtp_auth_plaintext, ...) */
    size_t max_credential;      /* auth_max_credential_length */
    unsigned max_per_user_addr; /* net_conn_login's limit; 0: none */
    int64_t failure_delay_ms;   /* extra delay before a FAILED reaches done(); 0: none */
    struct event_base *base;    /* for that delay */
};

struct auth_login;

/* One per session. The connection stays paused after done() until the protocol resumes it. */
struct auth_login *auth_login_new(struct auth_client *client, struct net_conn *c,
                                  const struct auth_login_params *p, auth_login_done_fn done,
                                  void *arg);
/* Cancels a check in flight (done is never called then). NULL is ignored. May be
 * called from done(): the kit goes when done() returns. */
void auth_login_free(struct auth_login *l);

/* Logins may be offered now: under TLS, or plaintext allowed by configuration. */
bool auth_login_allowed(const struct auth_login *l);
/* The mechanisms on offer, each after prefix ("AUTH=" for IMAP, " " for SMTP's EHLO). */
void auth_login_mechanisms(const struct auth_login *l, const char *prefix, struct buf *out);
/* mech (any case) is on offer. */
bool auth_login_offers(const struct auth_login *l, struct slice mech);
/* The mechanism of the exchange under way or last checked ("PLAIN" before any). */
const char *auth_login_mechanism(const struct auth_login *l);

/* A SASL exchange: mech and initial response (ir.ptr == NULL: none) as the command gave them. */
enum auth_login_step auth_login_begin(struct auth_login *l, struct slice mech, struct slice ir);
/* The client's next response line, after AUTH_LOGIN_CHALLENGED. */
enum auth_login_step auth_login_line(struct auth_login *l, struct slice line);
/* Drops the exchange under way (its response line was too long, the session ends). */
void auth_login_abort(struct auth_login *l);
/*
 * A login command's user name and password (IMAP LOGIN, POP3 USER/PASS),
 * checked as mechanism PLAIN. A field too long or holding a NUL fails at once.
 */
enum auth_login_step auth_login_password(struct auth_login *l, struct slice user,
                                         struct slice pass);
/*
 * An app password (HTTP Bearer, `wharf token add`), checked as mechanism
 * BEARER: the auth process finds the account from the token itself.
 */
enum auth_login_step auth_login_token(struct auth_login *l, struct slice token);
/*
 * The webmail's sign-in and sign-out: auth_login_password that also has
 * the auth process make a session token (result.session, "whs_..."), and
 * auth_login_token that also revokes the session token it checks.
 */
enum auth_login_step auth_login_session(struct auth_login *l, struct slice user, struct slice pass);
enum auth_login_step auth_login_end_session(struct auth_login *l, struct slice token);

#endif
