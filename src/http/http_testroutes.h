/*
 * http_testroutes.h - routes that exist only with test_hooks = yes: the
 * integration tests drive the route API (authentication, deferred and
 * streamed answers, bodies) through them.
 *
 * Must never: be registered in production (the worker checks test_hooks).
 */
#ifndef WHARF_HTTP_HTTP_TESTROUTES_H
#define WHARF_HTTP_HTTP_TESTROUTES_H

struct http_server;

void http_testroutes_init(struct http_server *srv);

#endif
