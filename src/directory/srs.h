/*
 * srs.h - the Sender Rewriting Scheme (Shevek's SRS, the format of libsrs2
 * and postsrsd), so that mail this server forwards to another domain passes
 * SPF there, and bounces to it find their way back.
 *
 *   alice@sender.example  ->  SRS0=HHHH=TT=sender.example=alice@SRSDOMAIN
 *   SRS0=HHHH=TT=d=l@fwd  ->  SRS1=HHHH=fwd==HHHH=TT=d=l@SRSDOMAIN
 *
 * HHHH is the first 4 characters of base64(HMAC-SHA1(secret, fields in lower
 * case)); TT is the day number modulo 1024 in base32. The hash is compared
 * without regard to case (the spec asks it: some MTAs lower-case local
 * parts), and so are the tags and the timestamp.
 *
 * Pure functions on strings: no I/O apart from srs_key_load. It must never
 * turn an address into another one without a valid hash: that would make
 * the server an open relay.
 */
#ifndef WHARF_DIRECTORY_SRS_H
#define WHARF_DIRECTORY_SRS_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/*
 * Longest address srs_forward makes or srs_reverse reads: RFC 5321
 * 4.5.3.1.3, a path is at most 256 octets with its brackets. A sender too
 * long to rewrite goes out as it is.
 */
#define SRS_ADDRESS_MAX 254
/* Characters of the hash kept in an address (libsrs2 and postsrsd: 4). */
#define SRS_HASH_LEN 4
/* The secret: bytes read from the key file (one line), and made for a new one. */
#define SRS_SECRET_MAX 256
#define SRS_SECRET_NEW_BYTES 32

struct srs {
    const char *secret; /* HMAC key, secret_len bytes */
    size_t secret_len;
    const char *domain;     /* SRSDOMAIN, the domain of the addresses made */
    long long max_age_days; /* an address older than this is refused */
};

enum srs_status {
    SRS_OK,
    SRS_NOT_SRS,   /* the local part does not start with SRS0 or SRS1 and a separator */
    SRS_MALFORMED, /* SRS0/SRS1 but the fields are not all there */
    SRS_BAD_HASH,  /* forged, or made with another secret */
    SRS_EXPIRED,   /* the timestamp is older than max_age_days */
};

/*
 * The rewritten form of sender (local@domain) into *out (reset first), at
 * time now: SRS0 for a plain address, SRS1 for an SRS0 or SRS1 one. Returns
 * false (out empty) when sender has no '@', is empty, has an '=' in its
 * domain, or the result would be longer than SRS_ADDRESS_MAX.
 */
bool srs_forward(const struct srs *s, const char *sender, time_t now, struct buf *out);

/*
 * Checks address (an SRS address at any domain: the caller compares the
 * domain with its own) and, when it is valid, puts into *out the address it
 * stands for: the original sender for SRS0, the SRS0 address at the first
 * forwarder for SRS1.
 */
enum srs_status srs_reverse(const struct srs *s, const char *address, time_t now, struct buf *out);

/* A word for logs: "forged", "expired" ... */
const char *srs_status_name(enum srs_status st);

/*
 * Reads the secret from path (its first line), making it first when the
 * file is missing: SRS_SECRET_NEW_BYTES random bytes in hex, mode 0600,
 * created under a temporary name and linked into place, so that processes
 * starting together agree on one secret. When running as root the file is
 * given to (uid, gid). Returns 0, or -1 with err.
 */
int srs_key_load(const char *path, uid_t uid, gid_t gid, struct buf *secret_r, struct buf *err);

#endif
