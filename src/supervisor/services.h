/*
 * services.h - the services table: every port any Wharf component uses.
 *
 * This table is the one source of truth for what wharfd binds and for what
 * `wharf ports` prints. No component opens a port that is not named here.
 * Inbound rows take their address:port from their config option (<name>_listen)
 * and their limits from <name>_max_connections and <name>_max_connections_per_ip;
 * outbound rows describe connections Wharf makes, so an admin knows what to
 * allow out.
 */
#ifndef WHARF_SUPERVISOR_SERVICES_H
#define WHARF_SUPERVISOR_SERVICES_H

#include "base/component.h"
#include "base/buf.h"
#include "base/config.h"

#include <stdint.h>

enum service_tls {
    SERVICE_TLS_PLAIN,    /* no TLS on this port (HTTP redirect) */
    SERVICE_TLS_STARTTLS, /* plaintext greeting, upgrade with STARTTLS/STLS */
    SERVICE_TLS_IMPLICIT, /* TLS from the first byte */
};

enum service_direction {
    SERVICE_INBOUND,
    SERVICE_OUTBOUND,
};

struct service_def {
    const char *name;                      /* "smtp", "submission", ... */
    const struct component_def *component; /* who serves it */
    const char *protocol;                  /* "SMTP", "IMAP", ... */
    uint16_t port;                         /* the standard port */
    enum service_tls tls;
    enum service_direction direction;
    int listen_option;   /* OPTID_<name>_listen for inbound rows, -1 for outbound */
    int max_conn_option; /* OPTID_<name>_max_connections, -1 for outbound */
    int per_ip_option;   /* OPTID_<name>_max_connections_per_ip, -1 for outbound */
    const char *why;     /* why the port exists, for the admin */
};

extern const struct service_def services[];
extern const size_t n_services;

/* Every component the supervisor knows, in start order. */
extern const struct component_def *const components[];
extern const size_t n_components;

const struct component_def *component_find(const char *name);
const struct service_def *service_find(const char *name);
const char *service_tls_name(enum service_tls tls);
/* How a row's connections are protected under cfg: the ldap row is plain
 * unless ldap_starttls is set. */
enum service_tls service_tls(const struct wharf_config *cfg, const struct service_def *s);
/* The port an outbound row connects to: the front-end's frontend_*_port for the proxy rows. */
unsigned service_outbound_port(const struct wharf_config *cfg, const struct service_def *s);
/* Whether an outbound row is used under cfg (the LDAP rows: only with the LDAP
 * directory), and the servers it reaches ("host:port ...") appended to targets. */
bool service_outbound_used(const struct wharf_config *cfg, const struct service_def *s,
                           struct buf *targets);
const char *service_direction_name(enum service_direction d);
/* The configured listen addresses of an inbound service (empty list when off,
 * and for NNTP on a front-end, which holds no public folders). */
const struct strlist *service_listen(const struct wharf_config *cfg, const struct service_def *s);
/* The connection limits of an inbound service (0 for outbound rows). */
long long service_max_connections(const struct wharf_config *cfg, const struct service_def *s);
long long service_max_connections_per_ip(const struct wharf_config *cfg,
                                         const struct service_def *s);
/* True when the component is built and at least one of its inbound services is on. */
bool component_has_listeners(const struct wharf_config *cfg, const struct component_def *c);
/*
 * True when wharfd runs the component: it is built and either has no inbound
 * service or at least one of them is on.
 */
bool component_enabled(const struct wharf_config *cfg, const struct component_def *c);
/* Each enabled component's check_config; 0, or -1 with "COMPONENT: why" in err. */
int services_check_config(const struct wharf_config *cfg, struct buf *err);
/* Number of processes to run for a component. */
unsigned component_worker_count(const struct wharf_config *cfg, const struct component_def *c);

#endif
