/*
 * imap_context.h - extended SEARCH/SORT results and update contexts
 * (RFC 4731 ESEARCH, RFC 5267 ESORT and CONTEXT=SEARCH/SORT): RETURN options,
 * the ESEARCH response, PARTIAL, and the ADDTO/REMOVEFROM updates the view
 * sync (imap_mailbox.c) drives.
 * Must never: be included outside src/imap.
 */
#ifndef WHARF_IMAP_IMAP_CONTEXT_H
#define WHARF_IMAP_IMAP_CONTEXT_H

#include "imap/imap_int.h"

struct imap_sort_keys;
struct imap_sortinfo;

enum imap_return_opt {
    IMAP_RET_MIN = 1 << 0,
    IMAP_RET_MAX = 1 << 1,
    IMAP_RET_ALL = 1 << 2,
    IMAP_RET_COUNT = 1 << 3,
    IMAP_RET_SAVE = 1 << 4,    /* RFC 5182 (SEARCH only) */
    IMAP_RET_PARTIAL = 1 << 5, /* RFC 5267 4.4 */
    IMAP_RET_UPDATE = 1 << 6,  /* RFC 5267 4.3 */
    IMAP_RET_CONTEXT = 1 << 7, /* RFC 5267 4.2: a hint, nothing more */
};

/* The RETURN options of one SEARCH or SORT. */
struct imap_return {
    unsigned opts;
    uint32_t partial_lo, partial_hi; /* PARTIAL lo:hi, lo <= hi */
};

/*
 * Parses "(MIN MAX ALL COUNT SAVE PARTIAL n:m UPDATE CONTEXT)"; () means
 * ALL. NULL, or the BAD text (SAVE in a SORT is one, and so is UPDATE with a
 * tag that already names an update context, RFC 5267 4.3).
 */
const char *imap_return_parse(struct imap_session *s, struct slice tag, const struct imap_arg *a,
                              bool sort, struct imap_return *r);

/*
 * "* ESEARCH (TAG "t") [UID] ..." for the results v (message numbers or
 * UIDs in the requested order: ascending for SEARCH, the sort order for
 * SORT), with MODSEQ when modseq > 0. Ends with CRLF.
 */
void imap_esearch_write(struct buf *out, struct slice tag, bool uid, const struct imap_return *r,
                        const uint32_t *v, size_t n, uint64_t modseq);

/*
 * After an extended SEARCH computed its hits (view indexes, ascending):
 * with UPDATE, keeps an update context for the criteria (copied).
 * Appends "* NO [NOUPDATE ...]" to out when it cannot.
 */
void imap_context_search_done(struct imap_session *s, struct slice tag, bool uid,
                              const struct imap_return *r, const struct imap_arg *criteria,
                              size_t n_criteria, const size_t *idx, size_t n_idx, struct buf *out);

/*
 * An extended SORT's answer: ESEARCH and the tagged OK, and with UPDATE an
 * update context. Takes v (sorted; freed here or kept by the context).
 */
void imap_context_sort_done(struct imap_session *s, struct slice tag, bool uid,
                            const struct imap_return *r, const struct imap_sort_keys *keys,
                            const struct imap_arg *criteria, size_t n_criteria,
                            struct imap_sortinfo *v, size_t nv);

/* CANCELUPDATE "tag" ... (RFC 5267 4.3.5). */
imap_handler imap_cmd_cancelupdate;

/*
 * View hooks (imap_view_sync). Before the expunges of the view indexes gone
 * (ascending) are told: REMOVEFROM for them, numbered as the client still
 * sees them (RFC 5267 4.3.4). After the view took every change: ADDTO and
 * REMOVEFROM for the messages whose match changed (after EXISTS, 4.3.3).
 */
void imap_context_expunging(struct imap_session *s, const size_t *gone, size_t n_gone,
                            struct buf *out);
void imap_context_refresh(struct imap_session *s, struct buf *out);
/* Ends every update context of a view (deselect). */
void imap_context_free_all(struct imap_view *v);

#endif
