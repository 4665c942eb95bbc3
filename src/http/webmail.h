/*
 * webmail.h - the webmail's server side (doc/webmail.md): its files under
 * /webmail/ (webmail_static.c) and its sign-in, a session cookie with a
 * CSRF token (webmail_session.c). The browser app itself is in
 * src/http/webmail/ and talks to the server through JMAP only.
 *
 * Must never: hold a password past the sign-in request, keep a session
 * token anywhere but in the browser's HttpOnly cookie and as a hash at the
 * auth process, or accept the cookie on a state-changing request without
 * the CSRF token and a same-origin Origin.
 */
#ifndef WHARF_HTTP_WEBMAIL_H
#define WHARF_HTTP_WEBMAIL_H

#include "http/http_route.h"

#include <stdbool.h>

#define WEBMAIL_COOKIE "wharf_session"
#define WEBMAIL_CSRF_HEADER "X-Wharf-CSRF"

/* Reads the app's files into memory: at worker start, before the sandbox closes the folder. */
void webmail_load(const struct wharf_config *cfg);
/* Registers /webmail/... (http_routes.c). */
void webmail_routes_init(struct http_server *srv);
void webmail_routes_free(void);
/* The sign-in routes (webmail_session.c), from webmail_routes_init. */
void webmail_session_routes_init(struct http_server *srv);

enum webmail_cookie_verdict {
    WEBMAIL_COOKIE_NONE,    /* no session cookie: not the webmail */
    WEBMAIL_COOKIE_OK,      /* *token_r is the session token to check at the auth process */
    WEBMAIL_COOKIE_REFUSED, /* a state-changing request without the CSRF token or Origin */
};

/*
 * The session token of req's cookie, for the connection's authentication
 * (http_conn.c): a method other than GET and HEAD must also carry the
 * session's CSRF token in X-Wharf-CSRF and an Origin of this host. The
 * token points into req (valid while it lives).
 */
enum webmail_cookie_verdict webmail_cookie_token(const struct http_request *req,
                                                 struct slice *token_r);
/* req comes from the webmail app (a session cookie or X-Wharf-CSRF): a 401 offers no challenge. */
bool webmail_request(const struct http_request *req);
/* The CSRF token of a session token (64 hex digits and a NUL into out). */
void webmail_csrf(struct slice token, char out[65]);

#endif
