/*
 * nntp_groups.h - newsgroups as public folders: the public folders that
 * anchor a hierarchy (store_newsgroup_anchors) and their subfolders, named
 * as groups ("News" anchoring "comp.wharf": "News/dev" is "comp.wharf.dev"),
 * a group's numbers (its UIDs), rights from its ACL, the search for an
 * article by Message-ID (the store's Message-ID index, store_msgid_find),
 * and where else an article is (its Xref: the copies of its body).
 *
 * Everything goes through the store API (ids, records); never SQL.
 * Must never: show a group or an article to a user whose ACL rights on
 * the folder do not allow it.
 */
#ifndef WHARF_NNTP_NNTP_GROUPS_H
#define WHARF_NNTP_NNTP_GROUPS_H

#include "base/buf.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct nntp_group {
    char *name;      /* "comp.wharf.dev" */
    char *mailbox;   /* the public folder, "News/dev" */
    int64_t id;      /* its store id */
    int64_t created; /* when the hierarchy was anchored (NEWGROUPS, ACTIVE.TIMES) */
    uint64_t count;  /* messages, from the folder list */
};

struct nntp_groups {
    struct nntp_group *v; /* ordered by name */
    size_t n;
};

/* Reads the anchors and public folders now. */
int nntp_groups_load(struct store *st, struct nntp_groups *g, struct buf *err);
void nntp_groups_free(struct nntp_groups *g);
const struct nntp_group *nntp_groups_find(const struct nntp_groups *g, struct slice name);

/* A user's rights on a group (user NULL: anonymous, "anyone"'s rights). */
struct nntp_rights {
    bool list, read, post;
};
int nntp_group_rights(struct store *st, const struct nntp_group *grp, const char *user,
                      struct nntp_rights *r, struct buf *err);

/* A user's rights on a group for nntp_article_groups (nntp_group_rights, or a memo of it). */
typedef int (*nntp_rights_fn)(void *arg, const struct nntp_group *grp, const char *user,
                              struct nntp_rights *r, struct buf *err);
/* The groups of an article's Newsgroups field it goes to (each once, in order, at most
 * max): a poster needs every one to exist in g and to allow it posting (rights; user
 * NULL: anonymous); a peer's article (transit) goes to those that exist. 0 with *n_r
 * set, 1 refused (why: the reason for the answer), -1 a store error (err). */
int nntp_article_groups(const struct nntp_groups *g, struct slice newsgroups, bool transit,
                        const char *user, nntp_rights_fn rights, void *arg,
                        const struct nntp_group **out, size_t max, size_t *n_r, struct buf *why,
                        struct buf *err);

/* A group's articles now: numbers (UIDs, ascending) with their sizes. */
struct nntp_listing {
    uint32_t *num;
    uint64_t *size;
    int64_t *date; /* internal date (arrival) */
    size_t n;
};
int nntp_listing_load(struct store *st, const struct nntp_group *grp, struct nntp_listing *l,
                      struct buf *err);
void nntp_listing_free(struct nntp_listing *l);
/* The index of number in l, or -1. */
long nntp_listing_find(const struct nntp_listing *l, uint32_t num);

/* The Message-ID (from the store's search record) of each article of grp with
 * number >= from, by callback; a stop from cb ends the walk. */
int nntp_group_msgids(struct store *st, const struct nntp_group *grp, uint32_t from,
                      bool (*cb)(void *arg, uint32_t num, struct slice msgid), void *arg,
                      struct buf *err);
/* Looks msgid up (one index probe) in the groups for which ok(grp) (NULL: all):
 * returns 0 with the group index and number, 1 when not found. */
int nntp_groups_find_msgid(struct store *st, const struct nntp_groups *g, struct slice msgid,
                           bool (*ok)(void *arg, const struct nntp_group *grp), void *arg,
                           size_t *group_r, uint32_t *num_r, struct buf *err);

/* The copies of the bodies of a run of articles of one group in other groups (a
 * cross-post is one body with a row and a number in each group), read once for the
 * run, and which groups the reader may see: what the run's Xref values are made of. */
struct nntp_xrefs {
    struct store_copy *copy; /* store_message_copies_id's, by number */
    size_t n, next;          /* next: the first copy of a number not yet asked */
    signed char *seen;       /* by index in the groups: 0 not asked yet, 1 may, -1 may not */
};
/* The copies of grp's articles lo..hi: 0, or -1 (err). */
int nntp_xrefs_load(struct store *st, const struct nntp_group *grp, uint32_t lo, uint32_t hi,
                    struct nntp_xrefs *x, struct buf *err);
/* RFC 5536 3.2.14: the Xref value of article num of grp (one of g; numbers asked in
 * ascending order): "host group:number ...", grp and each group of g holding a copy
 * that ok(arg, group) allows (asked once per group), by group name then number;
 * appended to out. host: the server's name in Path. */
void nntp_xref(struct nntp_xrefs *x, const struct nntp_groups *g, const struct nntp_group *grp,
               uint32_t num, const char *host, bool (*ok)(void *arg, const struct nntp_group *grp),
               void *arg, struct buf *out);
void nntp_xrefs_free(struct nntp_xrefs *x);

/* An article as a reader gets it: the header section the server sends
 * (nntp_article_reader_header: the fields it adds, the Xref of nntp_xref), the stored
 * article from its blank line on (rest) and its body, and :bytes (what ARTICLE sends). */
struct nntp_view {
    struct buf header;
    struct slice rest, body; /* inside the stored article */
    size_t bytes;
};
/* The view of article num of grp, stored as a; x, ok and arg: nntp_xref's. */
void nntp_view_make(struct nntp_xrefs *x, const struct nntp_groups *g, const struct nntp_group *grp,
                    uint32_t num, struct slice a, const char *host,
                    bool (*ok)(void *arg, const struct nntp_group *grp), void *arg,
                    struct nntp_view *v);
void nntp_view_free(struct nntp_view *v);

#endif
