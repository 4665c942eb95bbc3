/*
 * imap_sort.h - what SORT (imap_sort.c) and THREAD (imap_thread.c) share:
 * the header facts of one message (the base subject: mime_base_subject).
 * Must never: be included outside src/imap.
 */
#ifndef WHARF_IMAP_IMAP_SORT_H
#define WHARF_IMAP_IMAP_SORT_H

#include "imap/imap_int.h"

struct imap_sortinfo {
    size_t idx;      /* view index (MSN - 1) */
    int64_t arrival; /* INTERNALDATE */
    int64_t date;    /* Date: in UTC, INTERNALDATE when missing or invalid */
    uint64_t size;
    bool reply;                      /* the base subject came from a reply or forward */
    char *subject;                   /* base subject (RFC 5256 2.1) */
    char *from, *to, *cc;            /* first address's mailbox, "" when none */
    char *display_from, *display_to; /* RFC 5957: first address's display name, else addr-spec */
    char *message_id, *references, *in_reply_to; /* unfolded field values, "" when none */
};

/* Sort keys in one SORT: more would only repeat one (each key counts once). */
#define IMAP_MAX_SORT_KEYS 16

enum sort_key {
    K_ARRIVAL,
    K_CC,
    K_DATE,
    K_FROM,
    K_SIZE,
    K_SUBJECT,
    K_TO,
    K_DISPLAYFROM,
    K_DISPLAYTO
};

struct sort_spec {
    enum sort_key key;
    bool reverse;
};

/* The sort program of one SORT command (a CONTEXT=SORT update context keeps it). */
struct imap_sort_keys {
    struct sort_spec v[IMAP_MAX_SORT_KEYS];
    size_t n;
};

/* Sorts v into the order keys ask for, ties in sequence-number (view index) order. */
void imap_sort_apply(const struct imap_sort_keys *keys, struct imap_sortinfo *v, size_t n);

int imap_sortinfo_load(struct imap_session *s, size_t idx, struct imap_sortinfo *info);
void imap_sortinfo_free(struct imap_sortinfo *v, size_t n);
/*
 * "charset criteria...": the messages the search selects, in MSN order,
 * with their facts. -1 when a reply (BAD, NO) was sent.
 */
int imap_sortinfo_select(struct imap_session *s, struct slice tag, const struct imap_arg *args,
                         size_t n, struct imap_sortinfo **v_r, size_t *n_r);

#endif
