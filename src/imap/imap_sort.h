/*
 * imap_sort.h - what SORT (imap_sort.c) and THREAD (imap_thread.c) share:
 * the header facts of one message and the base subject.
 * Must never: be included outside src/imap.
 */
#ifndef WHARF_IMAP_IMAP_SORT_H
#define WHARF_IMAP_IMAP_SORT_H

#include "imap/imap_int.h"

struct imap_sortinfo {
    size_t idx;       /* view index (MSN - 1) */
    int64_t arrival;  /* INTERNALDATE */
    int64_t date;     /* Date: in UTC, INTERNALDATE when missing or invalid */
    uint64_t size;
    bool reply;       /* the base subject came from a reply or forward */
    char *subject;    /* base subject (RFC 5256 2.1) */
    char *from, *to, *cc; /* first address's mailbox, "" when none */
    char *message_id, *references, *in_reply_to; /* unfolded field values, "" when none */
};

/*
 * The base subject of a raw Subject value into out (reset first): encoded
 * words decoded, white space collapsed, Re:/Fwd:/[blob]/(fwd) removed.
 * Returns true when something showing a reply or forward was removed.
 */
bool imap_base_subject(struct slice subject, struct buf *out);
int imap_sortinfo_load(struct imap_session *s, size_t idx, struct imap_sortinfo *info);
void imap_sortinfo_free(struct imap_sortinfo *v, size_t n);
/*
 * "charset criteria...": the messages the search selects, in MSN order,
 * with their facts. -1 when a reply (BAD, NO) was sent.
 */
int imap_sortinfo_select(struct imap_session *s, struct slice tag, const struct imap_arg *args,
                         size_t n, struct imap_sortinfo **v_r, size_t *n_r);

#endif
