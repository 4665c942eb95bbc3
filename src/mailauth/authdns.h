/*
 * authdns.h - the DNS answers one message's checks have asked for.
 *
 * The checks (SPF, DKIM keys, DMARC) are pure functions over the message and
 * this table: when an answer they need is not in it yet, they record the
 * question and report "need more"; the caller (the smtp worker, on its
 * event loop through src/net/dns.h, or a unit test from a fixed table) puts
 * the answers in and runs them again. Re-running is cheap (parsing a few
 * records) and keeps every check free of callbacks and I/O; each question is
 * asked once whatever the number of runs.
 *
 * Must never hold more than AUTHDNS_MAX questions: a hostile record that
 * would make more ends the checks with what they have.
 */
#ifndef WHARF_MAILAUTH_AUTHDNS_H
#define WHARF_MAILAUTH_AUTHDNS_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Questions per message: SPF's 10 lookups with up to 10 MX hosts each
 * (A and AAAA) is the worst legitimate case at ~220; DKIM keys and DMARC add
 * a handful. Beyond this, lookups fail as temporary errors. */
#define AUTHDNS_MAX 256

#define AUTHDNS_A 1
#define AUTHDNS_PTR 12
#define AUTHDNS_MX 15
#define AUTHDNS_TXT 16
#define AUTHDNS_AAAA 28

enum authdns_status {
    AUTHDNS_WANTED,   /* asked for, no answer yet */
    AUTHDNS_OK,       /* an answer, maybe with no records (NODATA) */
    AUTHDNS_NXDOMAIN, /* the name does not exist */
    AUTHDNS_TEMPFAIL, /* SERVFAIL, timeout, or over the limit */
};

struct authdns_answer {
    char *name; /* lower case, no final dot */
    int type;
    enum authdns_status status;
    bool asked;        /* for the driver: the query is on its way */
    size_t n;          /* records */
    size_t *off, *len; /* each record's bytes in data (TXT: strings joined) */
    struct buf data;
};

struct authdns {
    struct authdns_answer *a;
    size_t n, cap;
};

void authdns_init(struct authdns *d);
void authdns_free(struct authdns *d);

/* The answer to (name, type), or NULL after recording the question. A name
 * that is not a usable domain name answers NXDOMAIN at once. */
const struct authdns_answer *authdns_get(struct authdns *d, const char *name, int type);

/* Fills answer i (from the driver or a test): status, then records added
 * with authdns_add (raw rdata; for TXT the character-strings are joined). */
void authdns_set(struct authdns *d, size_t i, enum authdns_status st);
void authdns_add(struct authdns *d, size_t i, const void *rdata, size_t len);

/* True while some answer is still WANTED. */
bool authdns_pending(const struct authdns *d);

static inline struct slice authdns_record(const struct authdns_answer *a, size_t k)
{
    return slice_make(a->data.data + a->off[k], a->len[k]);
}

#endif
