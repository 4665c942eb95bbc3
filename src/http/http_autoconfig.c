/*
 * http_autoconfig.c - client autoconfiguration (see http_autoconfig.h).
 * Each document lists, in the client's preferred order, the enabled
 * services among imaps, imap, pop3s, pop3 (incoming) and smtps, submission
 * (outgoing), at myhostname and the port of the service's first listen
 * address. Logins are always the full address over TLS (implicit, or
 * STARTTLS before login, which Wharf requires).
 *
 * Must never: advertise a disabled service, or put an unchecked byte of the
 * request into a document.
 */
#include "http/http_autoconfig.h"

#include "base/alloc.h"
#include "http/http_server.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct svc {
    const char *name;  /* "imaps" */
    const char *proto; /* "imap", "pop3", "smtp" */
    bool implicit;     /* TLS from the first byte, else STARTTLS */
    uint16_t port;
};

/* The enabled services of the wanted protocols, in preference order. */
static size_t enabled(const struct wharf_config *cfg, bool incoming, struct svc *out)
{
    const struct {
        const char *name, *proto;
        bool implicit;
        const struct strlist *listen;
    } all[] = {
        {"imaps", "imap", true, &cfg->imaps_listen},
        {"imap", "imap", false, &cfg->imap_listen},
        {"pop3s", "pop3", true, &cfg->pop3s_listen},
        {"pop3", "pop3", false, &cfg->pop3_listen},
        {"smtps", "smtp", true, &cfg->smtps_listen},
        {"submission", "smtp", false, &cfg->submission_listen},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        bool smtp = strcmp(all[i].proto, "smtp") == 0;
        struct listen_addr la;
        if (smtp == incoming || all[i].listen->n == 0 ||
            !config_parse_listen_addr(all[i].listen->v[0], &la))
            continue;
        out[n++] = (struct svc){all[i].name, all[i].proto, all[i].implicit, la.port};
    }
    return n;
}

/* A domain: labels of letters, digits and '-', dot-separated. */
static bool domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 253 || d[0] == '.' || d[0] == '-' || d[n - 1] == '.')
        return false;
    for (const char *p = d; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.') ||
            (c == '.' && p[1] == '.'))
            return false;
    }
    return true;
}

/* local@domain with a plain local part: nothing that needs escaping anywhere. */
static bool address_ok(const char *a)
{
    const char *at = strchr(a, '@');
    if (at == NULL || at == a || at - a > 64 || !domain_ok(at + 1))
        return false;
    for (const char *p = a; p < at; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._+-", c) != NULL) ||
            c == '\0')
            return false;
    }
    return true;
}

/* The value of key in a query string (x-www-form-urlencoded, "%40" for '@'); NULL when absent. */
static char *query_get(const char *query, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            struct buf v = BUF_INIT;
            for (size_t i = klen + 1; i < len; i++) {
                if (p[i] == '%' && i + 2 < len) {
                    char hex[3] = {p[i + 1], p[i + 2], 0};
                    char *e;
                    long c = strtol(hex, &e, 16);
                    if (*e != '\0' || c <= 0) {
                        buf_free(&v);
                        return NULL;
                    }
                    buf_append_byte(&v, (char)c);
                    i += 2;
                } else {
                    buf_append_byte(&v, p[i] == '+' ? ' ' : p[i]);
                }
            }
            return buf_steal(&v, NULL);
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

static void xml_escaped(struct buf *out, const char *s)
{
    buf_append_xml_escaped(out, slice_from_cstr(s));
}

/* ---- Thunderbird ---- */

static void thunderbird_server(struct buf *b, const char *host, const struct svc *s, bool in)
{
    buf_printf(b, "    <%s type=\"%s\">\n      <hostname>",
               in ? "incomingServer" : "outgoingServer", s->proto);
    xml_escaped(b, host);
    buf_printf(b,
               "</hostname>\n      <port>%u</port>\n      <socketType>%s</socketType>\n"
               "      <authentication>password-cleartext</authentication>\n"
               "      <username>%%EMAILADDRESS%%</username>\n    </%s>\n",
               s->port, s->implicit ? "SSL" : "STARTTLS", in ? "incomingServer" : "outgoingServer");
}

static void thunderbird(struct http_request *req, struct http_response *res, void *arg)
{
    struct http_server *srv = arg;
    const struct wharf_config *cfg = srv->cfg;
    /* The domain: from emailaddress=, else from the host autoconfig.DOMAIN. */
    char *addr = query_get(http_request_query(req), "emailaddress");
    char *domain = NULL;
    if (addr != NULL && address_ok(addr)) {
        domain = xstrdup(strchr(addr, '@') + 1);
    } else if (addr == NULL) {
        struct buf h = BUF_INIT;
        const char *host = http_request_host(req);
        buf_append(&h, host, strcspn(host, ":"));
        if (strncasecmp(h.data, "autoconfig.", 11) == 0)
            domain = xstrdup(h.data + 11);
        buf_free(&h);
    }
    free(addr);
    if (domain == NULL || !domain_ok(domain)) {
        free(domain);
        http_response_text(res, 400, "Bad Request: give emailaddress=USER@DOMAIN");
        return;
    }
    struct svc in[4], out[2];
    size_t n_in = enabled(cfg, true, in), n_out = enabled(cfg, false, out);
    struct buf *b = http_response_body(res);
    buf_printf(b,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n"
               "  <emailProvider id=\"%s\">\n    <domain>%s</domain>\n"
               "    <displayName>%s</displayName>\n    <displayShortName>%s</displayShortName>\n",
               domain, domain, domain, domain);
    for (size_t i = 0; i < n_in; i++)
        thunderbird_server(b, cfg->myhostname, &in[i], true);
    for (size_t i = 0; i < n_out; i++)
        thunderbird_server(b, cfg->myhostname, &out[i], false);
    buf_append_cstr(b, "  </emailProvider>\n</clientConfig>\n");
    http_response_content_type(res, "application/xml; charset=utf-8");
    free(domain);
}

/* ---- Microsoft Autodiscover (POX) ---- */

static void autodiscover(struct http_request *req, struct http_response *res, void *arg)
{
    struct http_server *srv = arg;
    const struct wharf_config *cfg = srv->cfg;
    struct slice body = http_request_body(req);
    /* The one field a POX request carries that matters: <EMailAddress>. */
    char *text = slice_strdup(body);
    const char *open = strstr(text, "<EMailAddress>");
    const char *close = open ? strstr(open, "</EMailAddress>") : NULL;
    char *addr = NULL;
    if (open && close && close - open - 14 < 320)
        addr = slice_strdup(slice_make(open + 14, (size_t)(close - open - 14)));
    free(text);
    if (addr == NULL || !address_ok(addr)) {
        free(addr);
        http_response_text(res, 400, "Bad Request: no valid <EMailAddress>");
        return;
    }
    struct svc svcs[6];
    size_t n = enabled(cfg, true, svcs);
    n += enabled(cfg, false, svcs + n);
    struct buf *b = http_response_body(res);
    buf_append_cstr(
        b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
           "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/"
           "responseschema/2006\">\n"
           "  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/"
           "responseschema/2006a\">\n"
           "    <Account>\n      <AccountType>email</AccountType>\n"
           "      <Action>settings</Action>\n");
    for (size_t i = 0; i < n; i++) {
        buf_printf(b, "      <Protocol>\n        <Type>%s</Type>\n        <Server>",
                   strcmp(svcs[i].proto, "imap") == 0   ? "IMAP"
                   : strcmp(svcs[i].proto, "pop3") == 0 ? "POP3"
                                                        : "SMTP");
        xml_escaped(b, cfg->myhostname);
        buf_printf(b,
                   "</Server>\n        <Port>%u</Port>\n        <LoginName>%s</LoginName>\n"
                   "        <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n"
                   "        <SSL>on</SSL>\n        <Encryption>%s</Encryption>\n"
                   "        <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
                   svcs[i].port, addr, svcs[i].implicit ? "SSL" : "TLS");
    }
    buf_append_cstr(b, "    </Account>\n  </Response>\n</Autodiscover>\n");
    http_response_content_type(res, "application/xml; charset=utf-8");
    free(addr);
}

/* ---- Apple configuration profile ---- */

static void uuid(struct buf *out)
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        memset(r, 0x5a, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++)
        buf_printf(out, "%s%02X", (i == 4 || i == 6 || i == 8 || i == 10) ? "-" : "", r[i]);
}

static void plist_key(struct buf *b, const char *key, const char *value)
{
    buf_printf(b, "      <key>%s</key><string>", key);
    xml_escaped(b, value);
    buf_append_cstr(b, "</string>\n");
}

static void mobileconfig(struct http_request *req, struct http_response *res, void *arg)
{
    struct http_server *srv = arg;
    const struct wharf_config *cfg = srv->cfg;
    char *addr = query_get(http_request_query(req), "emailaddress");
    struct svc in[4], out[2];
    size_t n_in = enabled(cfg, true, in), n_out = enabled(cfg, false, out);
    if (addr == NULL || !address_ok(addr)) {
        free(addr);
        http_response_text(res, 400, "Bad Request: give emailaddress=USER@DOMAIN");
        return;
    }
    if (n_in == 0 || n_out == 0) {
        free(addr);
        http_response_text(res, 404, "Not Found: no mailbox access or submission is enabled");
        return;
    }
    /* One account: the first incoming service (IMAP before POP3) and the first outgoing. */
    struct buf *b = http_response_body(res);
    buf_append_cstr(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
                       "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
                       "<plist version=\"1.0\">\n<dict>\n  <key>PayloadContent</key>\n  <array>\n"
                       "    <dict>\n");
    plist_key(b, "EmailAccountDescription", addr);
    plist_key(b, "EmailAccountType",
              strcmp(in[0].proto, "imap") == 0 ? "EmailTypeIMAP" : "EmailTypePOP");
    plist_key(b, "EmailAddress", addr);
    plist_key(b, "IncomingMailServerAuthentication", "EmailAuthPassword");
    plist_key(b, "IncomingMailServerHostName", cfg->myhostname);
    buf_printf(b, "      <key>IncomingMailServerPortNumber</key><integer>%u</integer>\n",
               in[0].port);
    buf_append_cstr(b, "      <key>IncomingMailServerUseSSL</key><true/>\n");
    plist_key(b, "IncomingMailServerUsername", addr);
    plist_key(b, "OutgoingMailServerAuthentication", "EmailAuthPassword");
    plist_key(b, "OutgoingMailServerHostName", cfg->myhostname);
    buf_printf(b, "      <key>OutgoingMailServerPortNumber</key><integer>%u</integer>\n",
               out[0].port);
    buf_append_cstr(b, "      <key>OutgoingMailServerUseSSL</key><true/>\n");
    plist_key(b, "OutgoingMailServerUsername", addr);
    buf_append_cstr(b, "      <key>OutgoingPasswordSameAsIncomingPassword</key><true/>\n");
    plist_key(b, "PayloadDisplayName", addr);
    struct buf id = BUF_INIT;
    buf_printf(&id, "wharf.mail.%s", addr);
    plist_key(b, "PayloadIdentifier", buf_cstr(&id));
    plist_key(b, "PayloadType", "com.apple.mail.managed");
    buf_append_cstr(b, "      <key>PayloadUUID</key><string>");
    uuid(b);
    buf_append_cstr(b, "</string>\n      <key>PayloadVersion</key><integer>1</integer>\n"
                       "    </dict>\n  </array>\n");
    buf_reset(&id);
    buf_printf(&id, "wharf.profile.%s", addr);
    buf_append_cstr(b, "  <key>PayloadDisplayName</key><string>Mail (");
    xml_escaped(b, cfg->myhostname);
    buf_printf(b, ")</string>\n  <key>PayloadIdentifier</key><string>%s</string>\n", buf_cstr(&id));
    buf_append_cstr(b, "  <key>PayloadType</key><string>Configuration</string>\n"
                       "  <key>PayloadUUID</key><string>");
    uuid(b);
    buf_append_cstr(b, "</string>\n  <key>PayloadVersion</key><integer>1</integer>\n"
                       "</dict>\n</plist>\n");
    http_response_content_type(res, "application/x-apple-aspen-config");
    http_response_header(res, "Content-Disposition", "attachment; filename=\"mail.mobileconfig\"");
    buf_free(&id);
    free(addr);
}

void http_autoconfig_init(struct http_server *srv)
{
    http_route_add("GET", "/.well-known/autoconfig/mail/config-v1.1.xml", 0, thunderbird, srv);
    http_route_add("GET", "/mail/config-v1.1.xml", 0, thunderbird, srv); /* autoconfig.DOMAIN */
    http_route_add("POST", "/autodiscover/autodiscover.xml", 0, autodiscover, srv);
    http_route_add("POST", "/Autodiscover/Autodiscover.xml", 0, autodiscover, srv);
    http_route_add("GET", "/apple/mobileconfig", 0, mobileconfig, srv);
}
