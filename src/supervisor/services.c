/*
 * services.c - the services table and the list of components.
 *
 * Adding a port to Wharf means adding a row here, a *_listen option in
 * base/options.def for inbound ports, and a line in doc/ports.md.
 */
#include "supervisor/services.h"
#include "base/buf.h"

#include "auth/auth.h"
#include "directory/directory.h"
#include "http/http.h"
#include "imap/imap.h"
#include "mta/mta.h"
#include "net/net_proxy.h"
#include "nntp/nntp.h"
#include "pop3/pop3.h"
#include "routing/routing.h"
#include "smtp/smtp.h"

#include <sched.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const struct component_def *const components[] = {
    &auth_component, &mta_component,  &smtp_component,    &imap_component,      &pop3_component,
    &nntp_component, &http_component, &routing_component, &directory_component, &nntpfeed_component,
};
const size_t n_components = sizeof(components) / sizeof(components[0]);

#define IN(svc)                                                                                    \
    SERVICE_INBOUND, OPTID_##svc##_listen, OPTID_##svc##_max_connections,                          \
        OPTID_##svc##_max_connections_per_ip
#define OUT SERVICE_OUTBOUND, -1, -1, -1

const struct service_def services[] = {
    {"smtp", &smtp_component, "SMTP", 25, SERVICE_TLS_STARTTLS, IN(smtp),
     "mail from other servers (MX); open to the Internet to receive mail"},
    {"submission", &smtp_component, "SMTP", 587, SERVICE_TLS_STARTTLS, IN(submission),
     "mail from your users' programs, STARTTLS and AUTH required"},
    {"smtps", &smtp_component, "SMTP", 465, SERVICE_TLS_IMPLICIT, IN(smtps),
     "submission over implicit TLS (RFC 8314)"},
    {"imap", &imap_component, "IMAP", 143, SERVICE_TLS_STARTTLS, IN(imap),
     "mailbox access; login only after STARTTLS"},
    {"imaps", &imap_component, "IMAP", 993, SERVICE_TLS_IMPLICIT, IN(imaps),
     "mailbox access over implicit TLS"},
    {"pop3", &pop3_component, "POP3", 110, SERVICE_TLS_STARTTLS, IN(pop3),
     "mailbox download; login only after STLS"},
    {"pop3s", &pop3_component, "POP3", 995, SERVICE_TLS_IMPLICIT, IN(pop3s),
     "mailbox download over implicit TLS"},
    {"nntp", &nntp_component, "NNTP", 119, SERVICE_TLS_STARTTLS, IN(nntp),
     "public folders as newsgroups; feeds from other news servers"},
    {"nntps", &nntp_component, "NNTP", 563, SERVICE_TLS_IMPLICIT, IN(nntps),
     "newsgroups over implicit TLS"},
    {"http", &http_component, "HTTP", 80, SERVICE_TLS_PLAIN, IN(http),
     "redirects browsers to HTTPS"},
    {"https", &http_component, "HTTP", 443, SERVICE_TLS_IMPLICIT, IN(https),
     "webmail, JMAP, admin API and /metrics"},
    {"routing", &routing_component, "Wharf link state", 691, SERVICE_TLS_IMPLICIT, IN(routing),
     "link-state routing with the other servers of your organization only"},
    {"smtp-out", &mta_component, "SMTP", 25, SERVICE_TLS_STARTTLS, OUT,
     "delivery to other mail servers (opportunistic STARTTLS)"},
    {"nntp-feed", &nntpfeed_component, "NNTP", 119, SERVICE_TLS_PLAIN, OUT,
     "feeds to peer news servers (nntps:// peers: implicit TLS)"},
    {"ldap", &directory_component, "LDAP", 389, SERVICE_TLS_STARTTLS, OUT,
     "reads accounts and home servers from the directory"},
    {"ldaps", &directory_component, "LDAP", 636, SERVICE_TLS_IMPLICIT, OUT,
     "reads the directory over implicit TLS"},
    {"imap-proxy", &imap_component, "IMAP", 993, SERVICE_TLS_IMPLICIT, OUT,
     "front-end: IMAP sessions handed over to each account's home server"},
    {"pop3-proxy", &pop3_component, "POP3", 995, SERVICE_TLS_IMPLICIT, OUT,
     "front-end: POP3 sessions handed over to each account's home server"},
    {"submission-proxy", &smtp_component, "SMTP", 465, SERVICE_TLS_IMPLICIT, OUT,
     "front-end: submission sessions handed over to each account's home server"},
    {"https-proxy", &http_component, "HTTP", 443, SERVICE_TLS_IMPLICIT, OUT,
     "front-end: JMAP requests forwarded to each account's home server"},
};
const size_t n_services = sizeof(services) / sizeof(services[0]);

/* The ldap and ldaps rows: with directory_driver = ldap, the ldap_uris of the row's scheme. */
bool service_outbound_used(const struct wharf_config *cfg, const struct service_def *s,
                           struct buf *targets)
{
    if (s->component == &nntpfeed_component) {
        const struct strlist *lists[] = {&cfg->nntp_feed_to, &cfg->nntp_pull_from};
        for (size_t l = 0; l < 2; l++) {
            for (size_t i = 0; i < lists[l]->n; i++) {
                const char *u = strstr(lists[l]->v[i], "://");
                buf_printf(targets, "%s%s", targets->len ? " " : "", u ? u + 3 : lists[l]->v[i]);
            }
        }
        return cfg->nntp_feed_to.n > 0 || cfg->nntp_pull_from.n > 0;
    }
    if (s->component == &imap_component || s->component == &pop3_component ||
        s->component == &smtp_component || s->component == &http_component) {
        /* a front-end's hand-overs: to the home servers the directory names */
        bool on = net_proxy_is_frontend(cfg) || cfg->frontend_secret[0] != '\0';
        if (on)
            buf_printf(targets, "home servers:%u", service_outbound_port(cfg, s));
        return on;
    }
    if (s->component != &directory_component)
        return true;
    if (strcmp(cfg->directory_driver, "ldap") != 0)
        return false;
    size_t scheme = strlen(s->name);
    for (size_t i = 0; i < cfg->ldap_uris.n; i++) {
        const char *u = cfg->ldap_uris.v[i];
        if (strncasecmp(u, s->name, scheme) == 0 && strncmp(u + scheme, "://", 3) == 0)
            buf_printf(targets, "%s%s", targets->len ? " " : "", u + scheme + 3);
    }
    return targets->len > 0;
}

unsigned service_outbound_port(const struct wharf_config *cfg, const struct service_def *s)
{
    if (s->component == &imap_component)
        return (unsigned)cfg->frontend_imap_port;
    if (s->component == &pop3_component)
        return (unsigned)cfg->frontend_pop3_port;
    if (s->component == &smtp_component)
        return (unsigned)cfg->frontend_submission_port;
    if (s->component == &http_component)
        return (unsigned)cfg->frontend_https_port;
    return s->port;
}

const struct component_def *component_find(const char *name)
{
    for (size_t i = 0; i < n_components; i++) {
        if (strcmp(components[i]->name, name) == 0)
            return components[i];
    }
    return NULL;
}

const struct service_def *service_find(const char *name)
{
    for (size_t i = 0; i < n_services; i++) {
        if (strcmp(services[i].name, name) == 0)
            return &services[i];
    }
    return NULL;
}

const char *service_tls_name(enum service_tls tls)
{
    switch (tls) {
    case SERVICE_TLS_PLAIN:
        return "plain";
    case SERVICE_TLS_STARTTLS:
        return "starttls";
    case SERVICE_TLS_IMPLICIT:
        return "implicit";
    }
    return "?";
}

enum service_tls service_tls(const struct wharf_config *cfg, const struct service_def *s)
{
    if (s->component == &directory_component && s->tls == SERVICE_TLS_STARTTLS &&
        !cfg->ldap_starttls)
        return SERVICE_TLS_PLAIN;
    return s->tls;
}

const char *service_direction_name(enum service_direction d)
{
    return d == SERVICE_INBOUND ? "inbound" : "outbound";
}

static long long option_int(const struct wharf_config *cfg, int id)
{
    return *(const long long *)config_value(cfg, &config_options[id]);
}

long long service_max_connections(const struct wharf_config *cfg, const struct service_def *s)
{
    return s->max_conn_option < 0 ? 0 : option_int(cfg, s->max_conn_option);
}

long long service_max_connections_per_ip(const struct wharf_config *cfg,
                                         const struct service_def *s)
{
    return s->per_ip_option < 0 ? 0 : option_int(cfg, s->per_ip_option);
}

const struct strlist *service_listen(const struct wharf_config *cfg, const struct service_def *s)
{
    static const struct strlist empty = {NULL, 0};
    if (s->listen_option < 0)
        return &empty;
    /* a front-end's store is empty: news is read on the back-end that holds the groups */
    if (s->component == &nntp_component && net_proxy_is_frontend(cfg))
        return &empty;
    return config_value(cfg, &config_options[s->listen_option]);
}

bool component_has_listeners(const struct wharf_config *cfg, const struct component_def *c)
{
    if (c->main == NULL)
        return false;
    for (size_t i = 0; i < n_services; i++) {
        if (services[i].component == c && services[i].direction == SERVICE_INBOUND &&
            service_listen(cfg, &services[i])->n > 0)
            return true;
    }
    return false;
}

bool component_enabled(const struct wharf_config *cfg, const struct component_def *c)
{
    if (c->main == NULL)
        return false;
    for (size_t i = 0; i < n_services; i++) {
        if (services[i].component == c && services[i].direction == SERVICE_INBOUND)
            return component_has_listeners(cfg, c);
    }
    if (c == &nntpfeed_component)
        return !net_proxy_is_frontend(cfg) && /* feeds to push or pull */
               (cfg->nntp_feed_to.n > 0 || cfg->nntp_pull_from.n > 0);
    return true; /* no inbound port of its own (auth, mta, directory): always runs */
}

unsigned component_worker_count(const struct wharf_config *cfg, const struct component_def *c)
{
    if (c->kind == COMPONENT_SINGLETON)
        return 1;
    if (cfg->workers > 0)
        return (unsigned)cfg->workers;
    /* The CPUs this process may run on (taskset, a cgroup's cpuset, a container),
     * not every CPU the machine has: more workers than those only take turns on
     * them, each waking on its own for its share of the sessions. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int services_check_config(const struct wharf_config *cfg, struct buf *err)
{
    for (size_t i = 0; i < n_components; i++) {
        const struct component_def *c = components[i];
        if (!component_enabled(cfg, c) || c->check_config == NULL)
            continue;
        struct buf why = BUF_INIT;
        int r = c->check_config(cfg, &why);
        if (r != 0)
            buf_printf(err, "%s: %s", c->name, buf_cstr(&why));
        buf_free(&why);
        if (r != 0)
            return -1;
    }
    return 0;
}
