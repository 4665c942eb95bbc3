/*
 * http_autoconfig.h - mail client autoconfiguration on 443, generated from
 * the listeners this server has enabled: Thunderbird's autoconfig
 * (/.well-known/autoconfig/mail/config-v1.1.xml, also asked of host
 * autoconfig.DOMAIN at /mail/config-v1.1.xml), Microsoft Autodiscover POX
 * (POST /autodiscover/autodiscover.xml) and an Apple configuration profile
 * (/apple/mobileconfig?emailaddress=...).
 *
 * Must never: name a port that is off, or echo an address it has not
 * checked character by character (no markup injection).
 */
#ifndef WHARF_HTTP_HTTP_AUTOCONFIG_H
#define WHARF_HTTP_HTTP_AUTOCONFIG_H

struct http_server;

void http_autoconfig_init(struct http_server *srv);

#endif
