/*
 * sasl.h - decoding SASL PLAIN (RFC 4616) and LOGIN responses, shared by
 * the protocol workers (smtp AUTH, imap AUTHENTICATE, pop3 AUTH).
 *
 * The worker's line parser hands over one complete response line (without
 * CRLF); these functions decode it whole, with limits, and never guess: a
 * response that is not strict base64 or not exactly authzid NUL authcid NUL
 * passwd is refused. They keep no state between calls, so the exchange's
 * state (which LOGIN prompt comes next) stays in the worker's session. The
 * decoded password must never be logged; sasl_plain_free wipes it.
 */
#ifndef WHARF_AUTH_SASL_H
#define WHARF_AUTH_SASL_H

#include "base/buf.h"

#include <stddef.h>

#define SASL_LOGIN_PROMPT_USER "VXNlcm5hbWU6" /* base64("Username:") */
#define SASL_LOGIN_PROMPT_PASS "UGFzc3dvcmQ6" /* base64("Password:") */

enum sasl_status {
    SASL_OK,
    SASL_CANCEL,     /* the client sent "*": answer 501 (SMTP) / BAD (IMAP) */
    SASL_BAD_BASE64, /* not strict base64 */
    SASL_MALFORMED,  /* wrong number of NULs, an empty authcid or passwd, bad UTF-8 */
    SASL_TOO_LONG,   /* a field longer than the limit (auth_max_credential_length) */
};

struct sasl_plain {
    struct buf authzid; /* "" when absent */
    struct buf authcid; /* the user name */
    struct buf passwd;
};

void sasl_plain_init(struct sasl_plain *p);
/* Frees and wipes the password. */
void sasl_plain_free(struct sasl_plain *p);

/*
 * Decodes a PLAIN response as sent on the wire: base64 text, "=" for an
 * empty initial response (RFC 4954), "*" to cancel. Each field at most
 * max_field octets. out must be initialized; it is overwritten.
 */
enum sasl_status sasl_plain_decode(struct slice line, size_t max_field, struct sasl_plain *out);

/*
 * Decodes one LOGIN response (the user name or the password), base64 text
 * or "*", into out (reset first): non-empty, no NUL, valid UTF-8.
 */
enum sasl_status sasl_login_decode(struct slice line, size_t max_field, struct buf *out);

/* Human-readable reason, for the worker's reply text. */
const char *sasl_status_text(enum sasl_status s);

#endif
