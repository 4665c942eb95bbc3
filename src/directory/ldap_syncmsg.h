/*
 * ldap_syncmsg.h - the values of RFC 4533's Content Synchronization
 * operation (syncrepl) that the LDAP driver sends and reads: the request
 * control it sends with its refreshAndPersist search, and the syncStateValue
 * (on each entry), syncInfoValue (intermediate responses) and syncDoneValue
 * (on the search's result) the server answers with.
 *
 * Pure BER (the DER subset RFC 4533 values use: low tags, definite lengths),
 * no LDAP library type, no I/O: directory_ldap.c hands it the control and
 * intermediate values libldap gives it; fuzz_ldap_syncmsg.c feeds it
 * arbitrary bytes. A decoder never reads past n bytes and returns -1 on
 * anything it does not understand; the pointers it returns point into p.
 */
#ifndef WHARF_DIRECTORY_LDAP_SYNCMSG_H
#define WHARF_DIRECTORY_LDAP_SYNCMSG_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>

#define LSYNC_OID_REQUEST "1.3.6.1.4.1.4203.1.9.1.1"
#define LSYNC_OID_STATE "1.3.6.1.4.1.4203.1.9.1.2"
#define LSYNC_OID_DONE "1.3.6.1.4.1.4203.1.9.1.3"
#define LSYNC_OID_INFO "1.3.6.1.4.1.4203.1.9.1.4"
/* The search result code that says the cookie is too old: start again without it. */
#define LSYNC_REFRESH_REQUIRED 4096

#define LSYNC_UUID_LEN 16

enum lsync_state { LSYNC_PRESENT = 0, LSYNC_ADD = 1, LSYNC_MODIFY = 2, LSYNC_DELETE = 3 };

/* A cookie as it was on the wire (p NULL: none). */
struct lsync_bytes {
    const unsigned char *p;
    size_t n;
};

struct lsync_state_value {
    enum lsync_state state;
    unsigned char uuid[LSYNC_UUID_LEN];
    struct lsync_bytes cookie;
};

enum lsync_info_kind {
    LSYNC_NEW_COOKIE = 0,
    LSYNC_REFRESH_DELETE = 1,  /* the end of a delete phase */
    LSYNC_REFRESH_PRESENT = 2, /* the end of a present phase: what was not named is gone */
    LSYNC_ID_SET = 3,          /* entries present, or deleted (refresh_deletes) */
};

struct lsync_info {
    enum lsync_info_kind kind;
    struct lsync_bytes cookie;
    bool refresh_done;          /* refreshDelete/refreshPresent: the refresh is over */
    bool refresh_deletes;       /* syncIdSet: the UUIDs are deleted (else present) */
    const unsigned char *uuids; /* syncIdSet: n_uuids BER OCTET STRINGs, read with lsync_uuid_at */
    size_t uuids_len, n_uuids;
};

/* The value of the request control: mode 1 refreshOnly, 3 refreshAndPersist. */
void lsync_request(struct buf *out, int mode, const void *cookie, size_t cookie_len);

int lsync_parse_state(const void *p, size_t n, struct lsync_state_value *out);
int lsync_parse_info(const void *p, size_t n, struct lsync_info *out);
int lsync_parse_done(const void *p, size_t n, struct lsync_bytes *cookie, bool *refresh_deletes);
/* The i-th UUID of a syncIdSet that lsync_parse_info accepted (each was checked). */
void lsync_uuid_at(const struct lsync_info *info, size_t i, unsigned char uuid[LSYNC_UUID_LEN]);

#endif
