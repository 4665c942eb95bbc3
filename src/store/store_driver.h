/*
 * store_driver.h - the table a store driver fills, and what every driver
 * shares (src/store and its drivers only; callers include store/store.h).
 *
 * store.c dispatches each public store_* call through s->drv. A driver
 * (sqlite/ today, PostgreSQL next) defines its own state as a struct whose
 * first member is struct store, and keeps every type of its database library
 * inside its own folder: nothing here, in store.h or in any header outside a
 * driver may name one (a meson test reads the objects' symbol tables).
 *
 * Each op has the contract of the store.h function of the same name.
 */
#ifndef WHARF_STORE_DRIVER_H
#define WHARF_STORE_DRIVER_H

#include "store/store.h"

struct store_driver {
    const char *name; /* the value of the store_driver option */
    /* Opens the store in dir (created if needed), migrating its schema. */
    struct store *(*open)(const char *dir, const struct store_options *opt, struct buf *err);
    /* A throw-away store in the fresh folder dir, removed by close (unit tests). */
    struct store *(*open_temporary)(const char *dir, const struct store_options *opt,
                                    struct buf *err);
    void (*close)(struct store *s);
    /* A consistent copy of the store in dir into dest (see store_backup); no open store:
     * the server goes on writing while it runs. */
    int (*backup)(const char *dir, const char *dest, const char *prev,
                  struct store_backup_stats *st, struct buf *err);
    /* Whether dir holds a store (wharf restore never overwrites one). */
    bool (*present)(const char *dir);
    /* The store of the backup folder from (as backup wrote it) into dir, which holds
     * none; no open store. See store_restore. */
    int (*restore)(const char *from, const char *dir, struct store_backup_stats *st,
                   struct buf *err);

    /* mailboxes */
    int (*mailbox_resolve)(struct store *s, const char *owner, const char *name, int64_t *id_r,
                           struct buf *err);
    int (*public_folder_now)(struct store *s, const char *name, struct buf *now_r, struct buf *err);
    int (*mailbox_list)(struct store *s, const char *owner, struct store_mailbox **list_r,
                        size_t *n_r, struct buf *err);
    int (*mailbox_get)(struct store *s, const char *owner, const char *mailbox,
                       struct store_mailbox *mb, struct buf *err);
    int (*mailbox_recent_claim)(struct store *s, const char *owner, const char *mailbox,
                                uint32_t upto, bool claim, uint32_t *first_r, struct buf *err);
    int (*mailbox_create)(struct store *s, const char *owner, const char *name,
                          const char *special_use, struct buf *err);
    int (*mailbox_set_uids)(struct store *s, const char *owner, const char *name,
                            const char *special_use, uint32_t uidvalidity, uint32_t uidnext,
                            struct buf *err);
    int (*mailbox_delete)(struct store *s, const char *owner, const char *name, struct buf *err);
    int (*mailbox_rename)(struct store *s, const char *owner, const char *from, const char *to,
                          struct buf *err);
    int (*subscribe)(struct store *s, const char *owner, const char *name, bool on,
                     struct buf *err);
    int (*subscriptions)(struct store *s, const char *owner, char ***names_r, size_t *n_r,
                         struct buf *err);
    int (*account_state)(struct store *s, const char *owner, uint64_t *state_r, struct buf *err);

    /* messages: the mailbox by the id mailbox_resolve gave (a mailbox of owner; one
     * that is gone, or id 0, is "no such mailbox" as a missing name was) */
    int (*message_list)(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                        struct store_message **list_r, size_t *n_r, struct buf *err);
    int (*message_read)(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid,
                        struct buf *out, struct buf *err);
    int (*message_flags)(struct store *s, const char *owner, int64_t mailbox_id,
                         const uint32_t *uids, size_t n, enum store_flags_op op, unsigned flags,
                         const char *keywords, uint64_t unchangedsince,
                         struct store_flags_result *results, struct buf *err);
    int (*message_set_cache)(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid,
                             struct slice structure, struct buf *err);
    int (*message_records)(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                           struct store_records *r, struct buf *err);
    int (*message_set_records)(struct store *s, const char *owner, int64_t mailbox_id,
                               const uint32_t *uids, const struct slice *recs, size_t n,
                               struct buf *err);
    int (*msgid_find)(struct store *s, const char *owner, struct slice msgid,
                      struct store_msgid_hit **list_r, size_t *n_r, struct buf *err);
    int (*message_copies)(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                          uint32_t uid_max, struct store_copy **list_r, size_t *n_r,
                          struct buf *err);
    int (*text_search)(struct store *s, const char *owner, int64_t mailbox_id, unsigned fields,
                       struct slice text, struct store_text_hit **list_r, size_t *n_r,
                       struct buf *err);
    int (*text_emails)(struct store *s, const char *owner, int64_t in_mailbox, unsigned fields,
                       struct slice text, bool newest_first, char (**hashes_r)[65], size_t *n_r,
                       struct buf *err);
    int (*text_topup)(struct store *s, size_t max, size_t *n_r, struct buf *err);
    int (*data_version)(struct store *s, int64_t *v_r, struct buf *err);
    int (*read_begin)(struct store *s, struct buf *err);
    void (*read_end)(struct store *s);
    void (*checkpoint_deferred)(struct store *s);
    int (*checkpoint)(struct store *s, struct buf *err);
    int (*message_copy_to)(struct store *s, const char *owner, int64_t mailbox_id,
                           const uint32_t *uids, size_t n, const char *dest_owner, int64_t dest_id,
                           bool move, uint32_t *new_uids_r, struct buf *err);
    int (*message_expunge)(struct store *s, const char *owner, int64_t mailbox_id,
                           const uint32_t *uids, size_t n, struct buf *err);
    int (*message_changes)(struct store *s, const char *owner, int64_t mailbox_id, uint64_t since,
                           struct store_changes *c, struct buf *err);
    int (*expunged_since)(struct store *s, const char *owner, int64_t mailbox_id, uint64_t modseq,
                          uint32_t **uids_r, size_t *n_r, struct buf *err);
    int (*deliver)(struct store *s, struct store_delivery *d, size_t n, struct buf *err);

    /* the account as JMAP sees it */
    int (*account_messages)(struct store *s, const char *owner, const char *blob, uint64_t since,
                            bool with_structure, struct store_account_message **list_r, size_t *n_r,
                            struct buf *err);
    int (*account_gone)(struct store *s, const char *owner, uint64_t since,
                        struct store_account_gone *g, struct buf *err);
    int (*account_dates)(struct store *s, const char *owner, store_account_row_fn *row, void *ctx,
                         struct buf *err);
    int (*dates)(struct store *s, const struct store_dates_ask *q, store_account_walk_fn *row,
                 void *ctx, struct buf *err);
    int (*mailbox_count)(struct store *s, const char *owner, int64_t mailbox, bool threads,
                         const struct store_keyword_cond *k, size_t nk, uint64_t *n_r,
                         struct buf *err);
    int (*upload)(struct store *s, const char *owner, struct slice data, char hash_r[65],
                  struct buf *err);
    int (*account_blob_read)(struct store *s, const char *owner, const char *hash, struct buf *out,
                             struct buf *err);

    /* the vacation response */
    int (*vacation_get)(struct store *s, const char *owner, struct store_vacation *v,
                        struct buf *err);
    int (*vacation_set)(struct store *s, const char *owner, const struct store_vacation *v,
                        struct buf *err);
    int (*vacation_claim)(struct store *s, const char *owner, const char *sender, int64_t now,
                          int64_t period, struct buf *err);

    /* identities */
    int (*identity_list)(struct store *s, const char *owner, uint64_t since,
                         struct store_identity **list_r, size_t *n_r, struct buf *err);
    int (*identity_put)(struct store *s, const char *owner, struct store_identity *v,
                        struct buf *err);
    int (*identity_delete)(struct store *s, const char *owner, int64_t id, struct buf *err);
    int (*identity_gone)(struct store *s, const char *owner, uint64_t since, int64_t **ids_r,
                         uint64_t **states_r, size_t *n_r, struct buf *err);

    /* quotas and ACLs */
    int (*quota_usage)(struct store *s, const char *owner, uint64_t *bytes_r, uint64_t *messages_r,
                       struct buf *err);
    int (*totals)(struct store *s, struct store_totals *t, struct buf *err);
    int (*acl_set)(struct store *s, const char *owner, const char *mailbox, const char *identifier,
                   const char *rights, struct buf *err);
    int (*acl_get)(struct store *s, const char *owner, const char *mailbox, const char *identifier,
                   struct buf *rights_r, struct buf *err);
    int (*acl_list)(struct store *s, const char *owner, const char *mailbox,
                    struct store_acl_entry **list_r, size_t *n_r, struct buf *err);
    int (*acl_rights)(struct store *s, const char *owner, const char *mailbox, const char *user,
                      struct buf *rights_r, struct buf *err);
    int (*acl_shared)(struct store *s, const char *user, struct store_acl_share **list_r,
                      size_t *n_r, struct buf *err);
    int (*newsgroup_anchor_set)(struct store *s, const char *mailbox, const char *hierarchy,
                                struct buf *err);
    int (*newsgroup_anchors)(struct store *s, struct store_newsgroup_anchor **list_r, size_t *n_r,
                             struct buf *err);

    /* outbound news feeds */
    int (*feed_cursor)(struct store *s, const char *peer, int64_t mailbox_id, uint32_t *uid_r,
                       struct buf *err);
    int (*feed_enqueue)(struct store *s, const char *peer, int64_t mailbox_id, uint32_t cursor,
                        const struct store_feed_item *items, size_t n, struct buf *err);
    int (*feed_pending)(struct store *s, const char *peer, size_t max,
                        struct store_feed_item **list_r, size_t *n_r, uint64_t *total_r,
                        struct buf *err);
    int (*feed_done)(struct store *s, const char *peer, char *const *msgids, size_t n,
                     struct buf *err);
    int (*pull_since)(struct store *s, const char *peer, int64_t *since_r, struct buf *err);
    int (*pull_set)(struct store *s, const char *peer, int64_t since, struct buf *err);
    int (*feed_retry)(struct store *s, const char *peer, const char *msgid, int64_t due,
                      struct buf *err);

    /* maintenance */
    int (*blob_stats)(struct store *s, struct store_blob_stats *st, struct buf *err);
    int (*gc)(struct store *s, struct buf *err);
    int (*dedupe_expire)(struct store *s, int64_t max_age_seconds, struct buf *err);
    void (*release_memory)(struct store *s);
};

/* What every driver's state begins with. */
struct store {
    const struct store_driver *drv;
    struct store_options opt;
};

/* The drivers this build has. */
extern const struct store_driver store_sqlite_driver;

/* Canonical form of a mailbox name ("inbox/x" -> "INBOX/x") into out; -1 if invalid. */
int store_name_check(struct store *s, const char *name, struct buf *out, struct buf *err);
/* Keywords: at most opt.keywords_max bytes, no control characters (NULL is fine). */
bool store_keywords_ok(struct store *s, const char *keywords, struct buf *err);

#endif
