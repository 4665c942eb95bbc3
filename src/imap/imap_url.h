/*
 * imap_url.h - IMAP URLs (RFC 5092) that name a message or a part of one on
 * this server, as CATENATE (RFC 4469) takes them.
 * Must never: be included outside src/imap.
 */
#ifndef WHARF_IMAP_IMAP_URL_H
#define WHARF_IMAP_IMAP_URL_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>

struct imap_url {
    char *mailbox;        /* the IMAP name (UTF-8, percent-decoded) */
    uint32_t uidvalidity; /* 0: not given */
    uint32_t uid;
    char *section; /* percent-decoded; NULL: the whole message */
    bool partial;
    uint64_t offset, length; /* PARTIAL offset[.length]; length 0: to the end */
};

/*
 * Parses "imap://[user@]host[:port]/mailbox[;UIDVALIDITY=n]/;UID=n
 * [/;SECTION=s][/;PARTIAL=o[.l]]" or the same from "/mailbox" on. An
 * absolute URL must name host (case-insensitively) and, when it has a user,
 * account. false for anything else (other servers and users, URLAUTH,
 * message lists, bad escapes, NUL or control bytes, names that are not
 * UTF-8); *u is then empty. Free with imap_url_free either way.
 */
bool imap_url_parse(struct slice url, const char *host, const char *account, struct imap_url *u);
void imap_url_free(struct imap_url *u);

#endif
