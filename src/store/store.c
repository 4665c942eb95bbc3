/*
 * store.c - the store's generic layer: picks the driver (the store_driver
 * option), dispatches every store.h call through its table
 * (store_driver.h), and holds what is the same for every driver: options,
 * mailbox name and keyword rules, freeing the result structs, the test
 * fault hook.
 *
 * Never reaches a database here: no SQL, no driver's types. A rule that two
 * drivers would otherwise each write (a name check) lives here once.
 */
#include "store/store_driver.h"
#include "base/alloc.h"
#include "store/store_blob.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const struct store_driver *const drivers[] = {&store_sqlite_driver};

static const struct store_driver *driver_find(const char *name, struct buf *err)
{
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    buf_printf(err, "store_driver: '%s' is not a store driver of this build (", name);
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
        buf_printf(err, "%s%s", i ? ", " : "", drivers[i]->name);
    buf_append_cstr(err, ")");
    return NULL;
}

static void default_options(struct store_options *o)
{
    *o = (struct store_options){0};
    o->segment_size = 64ull << 20;
    o->fsync = true;
    o->mailbox_name_max = STORE_MAILBOX_NAME_MAX;
    o->mailbox_depth_max = STORE_MAILBOX_DEPTH_MAX;
    o->keywords_max = STORE_KEYWORDS_MAX;
    o->expunge_hold = STORE_EXPUNGE_HOLD;
}

static struct store *open_with(const struct store_driver *drv, const char *dir,
                               const struct store_options *opt, struct buf *err)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        buf_printf(err, "store: cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    return drv->open(dir, opt, err);
}

struct store *store_open_dir(const char *dir, const struct store_options *opt, struct buf *err)
{
    struct store_options o;
    if (opt)
        o = *opt;
    else
        default_options(&o);
    return open_with(drivers[0], dir, &o, err);
}

struct store *store_open(const struct wharf_config *cfg, struct buf *err)
{
    const struct store_driver *drv = driver_find(cfg->store_driver, err);
    if (drv == NULL)
        return NULL;
    struct store_options o;
    default_options(&o);
    o.segment_size = cfg->store_segment_size;
    o.inline_max = cfg->store_inline_body_max;
    o.mailbox_name_max = (size_t)cfg->store_mailbox_name_max;
    o.mailbox_depth_max = (size_t)cfg->store_mailbox_depth_max;
    o.keywords_max = (size_t)cfg->store_keywords_max;
    char *dir = config_data_path(cfg, "store");
    struct store *s = open_with(drv, dir, &o, err);
    free(dir);
    return s;
}

struct store *store_open_temporary(struct buf *err)
{
    const char *tmp = getenv("TMPDIR");
    struct buf dir = BUF_INIT;
    buf_printf(&dir, "%s/wharf-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir.data) == NULL) {
        buf_printf(err, "store: mkdtemp: %s", strerror(errno));
        buf_free(&dir);
        return NULL;
    }
    struct store_options o;
    default_options(&o);
    o.fsync = false;
    o.expunge_hold = 0;
    struct store *s = drivers[0]->open_temporary(dir.data, &o, err);
    buf_free(&dir);
    return s;
}

void store_close(struct store *s)
{
    if (s)
        s->drv->close(s);
}

int store_backup(const struct wharf_config *cfg, const char *dest, const char *prev,
                 struct store_backup_stats *st, struct buf *err)
{
    const struct store_driver *drv = driver_find(cfg->store_driver, err);
    if (drv == NULL)
        return -1;
    char *dir = config_data_path(cfg, "store");
    int rc = drv->backup(dir, dest, prev, st, err);
    free(dir);
    return rc;
}

bool store_present(const struct wharf_config *cfg)
{
    struct buf err = BUF_INIT;
    const struct store_driver *drv = driver_find(cfg->store_driver, &err);
    buf_free(&err);
    char *dir = config_data_path(cfg, "store");
    bool r = drv != NULL && drv->present(dir);
    free(dir);
    return r;
}

int store_restore(const struct wharf_config *cfg, const char *from, struct store_backup_stats *st,
                  struct buf *err)
{
    const struct store_driver *drv = driver_find(cfg->store_driver, err);
    if (drv == NULL)
        return -1;
    char *dir = config_data_path(cfg, "store");
    int rc = -1;
    if (drv->present(dir))
        buf_printf(err, "%s holds a store already; restore only into a fresh data directory", dir);
    else
        rc = drv->restore(from, dir, st, err);
    free(dir);
    return rc;
}

int store_account_state(struct store *s, const char *owner, uint64_t *state_r, struct buf *err)
{
    return s->drv->account_state(s, owner, state_r, err);
}

/* ---- names and keywords ---- */

int store_name_check(struct store *s, const char *name, struct buf *out, struct buf *err)
{
    size_t len = strlen(name);
    buf_reset(out);
    if (len == 0 || len > s->opt.mailbox_name_max) {
        buf_printf(err, "mailbox name must have 1 to %zu bytes", s->opt.mailbox_name_max);
        return -1;
    }
    size_t depth = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '*' || c == '%') {
            buf_append_cstr(err, "mailbox name contains a control or wildcard character");
            return -1;
        }
        if (c == STORE_DELIMITER) {
            if (i == 0 || i + 1 == len || name[i + 1] == STORE_DELIMITER) {
                buf_append_cstr(err, "mailbox name has an empty level");
                return -1;
            }
            depth++;
        }
    }
    if (depth > s->opt.mailbox_depth_max) {
        buf_printf(err, "mailbox name is deeper than %zu levels", s->opt.mailbox_depth_max);
        return -1;
    }
    /* INBOX is case-insensitive, also as the first level of a hierarchy. */
    if (len >= 5 && strncasecmp(name, "INBOX", 5) == 0 &&
        (len == 5 || name[5] == STORE_DELIMITER)) {
        buf_append_cstr(out, STORE_INBOX);
        buf_append(out, name + 5, len - 5);
    } else
        buf_append(out, name, len);
    return 0;
}

void store_mailbox_free(struct store_mailbox *mb)
{
    free(mb->name);
    free(mb->special_use);
    mb->name = mb->special_use = NULL;
}

void store_mailbox_list_free(struct store_mailbox *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_mailbox_free(&list[i]);
    free(list);
}

void store_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void store_message_list_free(struct store_message *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].keywords);
        free(list[i].structure);
    }
    free(list);
}

void store_changes_free(struct store_changes *c)
{
    store_message_list_free(c->msgs, c->n);
    free(c->expunged);
    memset(c, 0, sizeof(*c));
}

struct slice store_record_get(const struct store_records *r, size_t i)
{
    if (!r->v[i].present)
        return slice_make(NULL, 0);
    return slice_make(r->data.data + r->v[i].off, r->v[i].len);
}

void store_records_free(struct store_records *r)
{
    free(r->v);
    buf_free(&r->data);
    memset(r, 0, sizeof(*r));
}

void store_newsgroup_anchors_free(struct store_newsgroup_anchor *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].mailbox);
        free(list[i].hierarchy);
    }
    free(list);
}

int store_newsgroup_anchor_set(struct store *s, const char *mailbox, const char *hierarchy,
                               struct buf *err)
{
    return s->drv->newsgroup_anchor_set(s, mailbox, hierarchy, err);
}

int store_newsgroup_anchors(struct store *s, struct store_newsgroup_anchor **list_r, size_t *n_r,
                            struct buf *err)
{
    return s->drv->newsgroup_anchors(s, list_r, n_r, err);
}

int store_vacation_get(struct store *s, const char *owner, struct store_vacation *v,
                       struct buf *err)
{
    memset(v, 0, sizeof(*v));
    return s->drv->vacation_get(s, owner, v, err);
}

int store_vacation_set(struct store *s, const char *owner, const struct store_vacation *v,
                       struct buf *err)
{
    return s->drv->vacation_set(s, owner, v, err);
}

void store_vacation_free(struct store_vacation *v)
{
    free(v->subject);
    free(v->text_body);
    free(v->html_body);
    memset(v, 0, sizeof(*v));
}

int store_vacation_claim(struct store *s, const char *owner, const char *sender, int64_t now,
                         int64_t period, struct buf *err)
{
    return s->drv->vacation_claim(s, owner, sender, now, period, err);
}

int store_identity_list(struct store *s, const char *owner, uint64_t since,
                        struct store_identity **list_r, size_t *n_r, struct buf *err)
{
    return s->drv->identity_list(s, owner, since, list_r, n_r, err);
}

void store_identity_list_free(struct store_identity *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].email);
        free(list[i].name);
        free(list[i].reply_to);
        free(list[i].bcc);
        free(list[i].text_signature);
        free(list[i].html_signature);
    }
    free(list);
}

int store_identity_put(struct store *s, const char *owner, struct store_identity *v,
                       struct buf *err)
{
    return s->drv->identity_put(s, owner, v, err);
}

int store_identity_delete(struct store *s, const char *owner, int64_t id, struct buf *err)
{
    return s->drv->identity_delete(s, owner, id, err);
}

int store_identity_gone(struct store *s, const char *owner, uint64_t since, int64_t **ids_r,
                        uint64_t **states_r, size_t *n_r, struct buf *err)
{
    return s->drv->identity_gone(s, owner, since, ids_r, states_r, n_r, err);
}

int store_feed_cursor(struct store *s, const char *peer, int64_t mailbox_id, uint32_t *uid_r,
                      struct buf *err)
{
    return s->drv->feed_cursor(s, peer, mailbox_id, uid_r, err);
}

int store_feed_enqueue(struct store *s, const char *peer, int64_t mailbox_id, uint32_t cursor,
                       const struct store_feed_item *items, size_t n, struct buf *err)
{
    return s->drv->feed_enqueue(s, peer, mailbox_id, cursor, items, n, err);
}

int store_feed_pending(struct store *s, const char *peer, size_t max,
                       struct store_feed_item **list_r, size_t *n_r, uint64_t *total_r,
                       struct buf *err)
{
    return s->drv->feed_pending(s, peer, max, list_r, n_r, total_r, err);
}

void store_feed_items_free(struct store_feed_item *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].msgid);
    free(list);
}

int store_feed_done(struct store *s, const char *peer, char *const *msgids, size_t n,
                    struct buf *err)
{
    return n == 0 ? 0 : s->drv->feed_done(s, peer, msgids, n, err);
}

int store_pull_since(struct store *s, const char *peer, int64_t *since_r, struct buf *err)
{
    return s->drv->pull_since(s, peer, since_r, err);
}

int store_pull_set(struct store *s, const char *peer, int64_t since, struct buf *err)
{
    return s->drv->pull_set(s, peer, since, err);
}

int store_feed_retry(struct store *s, const char *peer, const char *msgid, int64_t due,
                     struct buf *err)
{
    return s->drv->feed_retry(s, peer, msgid, due, err);
}

void store_acl_list_free(struct store_acl_entry *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].identifier);
        free(list[i].rights);
    }
    free(list);
}

void store_acl_shared_free(struct store_acl_share *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].owner);
        free(list[i].mailbox);
        free(list[i].rights);
    }
    free(list);
}

bool store_keywords_ok(struct store *s, const char *k, struct buf *err)
{
    if (k == NULL)
        return true;
    if (strlen(k) > s->opt.keywords_max) {
        buf_printf(err, "keywords longer than %zu bytes", s->opt.keywords_max);
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)k; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            buf_append_cstr(err, "keywords contain a control character");
            return false;
        }
    }
    return true;
}

static void (*fault_hook)(const char *point);

void store_set_fault_hook(void (*hook)(const char *point))
{
    fault_hook = hook;
}

void store_fault_point(const char *point)
{
    if (fault_hook)
        fault_hook(point);
}

int store_message_copy(struct store *s, const char *owner, const char *mailbox,
                       const uint32_t *uids, size_t n, const char *dest, bool move,
                       uint32_t *new_uids_r, struct buf *err)
{
    return store_message_copy_to(s, owner, mailbox, uids, n, owner, dest, move, new_uids_r, err);
}

/* ---- dispatch ---- */

int store_mailbox_resolve(struct store *s, const char *owner, const char *name, int64_t *id_r,
                          struct buf *err)
{
    return s->drv->mailbox_resolve(s, owner, name, id_r, err);
}

/* For the forms that take a name: a missing mailbox goes on as id 0, which the
 * driver answers as it answers a mailbox gone meanwhile; only an invalid name fails here. */
static int resolve(struct store *s, const char *owner, const char *name, int64_t *id_r,
                   struct buf *err)
{
    return store_mailbox_resolve(s, owner, name, id_r, err) < 0 ? -1 : 0;
}

int store_public_folder_now(struct store *s, const char *name, struct buf *now_r, struct buf *err)
{
    return s->drv->public_folder_now(s, name, now_r, err);
}

int store_mailbox_list(struct store *s, const char *owner, struct store_mailbox **list_r,
                       size_t *n_r, struct buf *err)
{
    return s->drv->mailbox_list(s, owner, list_r, n_r, err);
}

int store_mailbox_get(struct store *s, const char *owner, const char *mailbox,
                      struct store_mailbox *mb, struct buf *err)
{
    return s->drv->mailbox_get(s, owner, mailbox, mb, err);
}

int store_mailbox_recent_claim(struct store *s, const char *owner, const char *mailbox,
                               uint32_t upto, bool claim, uint32_t *first_r, struct buf *err)
{
    return s->drv->mailbox_recent_claim(s, owner, mailbox, upto, claim, first_r, err);
}

int store_mailbox_create(struct store *s, const char *owner, const char *name,
                         const char *special_use, struct buf *err)
{
    return s->drv->mailbox_create(s, owner, name, special_use, err);
}

int store_mailbox_set_uids(struct store *s, const char *owner, const char *name,
                           const char *special_use, uint32_t uidvalidity, uint32_t uidnext,
                           struct buf *err)
{
    return s->drv->mailbox_set_uids(s, owner, name, special_use, uidvalidity, uidnext, err);
}

int store_mailbox_delete(struct store *s, const char *owner, const char *name, struct buf *err)
{
    return s->drv->mailbox_delete(s, owner, name, err);
}

int store_mailbox_rename(struct store *s, const char *owner, const char *from, const char *to,
                         struct buf *err)
{
    return s->drv->mailbox_rename(s, owner, from, to, err);
}

int store_subscribe(struct store *s, const char *owner, const char *name, bool on, struct buf *err)
{
    return s->drv->subscribe(s, owner, name, on, err);
}

int store_subscriptions(struct store *s, const char *owner, char ***names_r, size_t *n_r,
                        struct buf *err)
{
    return s->drv->subscriptions(s, owner, names_r, n_r, err);
}

int store_message_list_id(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                          struct store_message **list_r, size_t *n_r, struct buf *err)
{
    return s->drv->message_list(s, owner, mailbox_id, uid_min, list_r, n_r, err);
}

int store_message_list(struct store *s, const char *owner, const char *mailbox, uint32_t uid_min,
                       struct store_message **list_r, size_t *n_r, struct buf *err)
{
    int64_t mailbox_id;
    if (resolve(s, owner, mailbox, &mailbox_id, err) < 0)
        return -1;
    return store_message_list_id(s, owner, mailbox_id, uid_min, list_r, n_r, err);
}

int store_message_read_id(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid,
                          struct buf *out, struct buf *err)
{
    return s->drv->message_read(s, owner, mailbox_id, uid, out, err);
}

int store_message_read(struct store *s, const char *owner, const char *mailbox, uint32_t uid,
                       struct buf *out, struct buf *err)
{
    int64_t mailbox_id;
    if (resolve(s, owner, mailbox, &mailbox_id, err) < 0)
        return -1;
    return store_message_read_id(s, owner, mailbox_id, uid, out, err);
}

int store_message_flags_id(struct store *s, const char *owner, int64_t mailbox_id,
                           const uint32_t *uids, size_t n, enum store_flags_op op, unsigned flags,
                           const char *keywords, uint64_t unchangedsince,
                           struct store_flags_result *results, struct buf *err)
{
    return s->drv->message_flags(s, owner, mailbox_id, uids, n, op, flags, keywords, unchangedsince,
                                 results, err);
}

int store_message_flags(struct store *s, const char *owner, const char *mailbox,
                        const uint32_t *uids, size_t n, enum store_flags_op op, unsigned flags,
                        const char *keywords, uint64_t unchangedsince,
                        struct store_flags_result *results, struct buf *err)
{
    int64_t mailbox_id;
    if (resolve(s, owner, mailbox, &mailbox_id, err) < 0)
        return -1;
    return store_message_flags_id(s, owner, mailbox_id, uids, n, op, flags, keywords,
                                  unchangedsince, results, err);
}

int store_message_set_cache_id(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid,
                               struct slice structure, struct buf *err)
{
    return s->drv->message_set_cache(s, owner, mailbox_id, uid, structure, err);
}

int store_message_set_cache(struct store *s, const char *owner, const char *mailbox, uint32_t uid,
                            struct slice structure, struct buf *err)
{
    int64_t mailbox_id;
    if (resolve(s, owner, mailbox, &mailbox_id, err) < 0)
        return -1;
    return store_message_set_cache_id(s, owner, mailbox_id, uid, structure, err);
}

int store_message_records_id(struct store *s, const char *owner, int64_t mailbox_id,
                             uint32_t uid_min, struct store_records *r, struct buf *err)
{
    return s->drv->message_records(s, owner, mailbox_id, uid_min, r, err);
}

int store_message_records(struct store *s, const char *owner, const char *mailbox, uint32_t uid_min,
                          struct store_records *r, struct buf *err)
{
    int64_t mailbox_id;
    if (resolve(s, owner, mailbox, &mailbox_id, err) < 0)
        return -1;
    return store_message_records_id(s, owner, mailbox_id, uid_min, r, err);
}

int store_msgid_find(struct store *s, const char *owner, struct slice msgid,
                     struct store_msgid_hit **list_r, size_t *n_r, struct buf *err)
{
    return s->drv->msgid_find(s, owner, msgid, list_r, n_r, err);
}

int store_message_copies_id(struct store *s, const char *owner, int64_t mailbox_id,
                            uint32_t uid_min, uint32_t uid_max, struct store_copy **list_r,
                            size_t *n_r, struct buf *err)
{
    return s->drv->message_copies(s, owner, mailbox_id, uid_min, uid_max, list_r, n_r, err);
}

bool store_text_indexed(struct slice text)
{
    size_t chars = 0;
    for (size_t i = 0; i < text.len && chars < STORE_TEXT_MIN; i++)
        chars += ((unsigned char)text.ptr[i] & 0xc0) != 0x80; /* UTF-8 lead bytes */
    return chars >= STORE_TEXT_MIN;
}

int store_text_search(struct store *s, const char *owner, int64_t mailbox_id, unsigned fields,
                      struct slice text, struct store_text_hit **list_r, size_t *n_r,
                      struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    if (!store_text_indexed(text))
        return 1;
    return s->drv->text_search(s, owner, mailbox_id, fields, text, list_r, n_r, err);
}

int store_text_emails(struct store *s, const char *owner, int64_t in_mailbox, unsigned fields,
                      struct slice text, bool newest_first, char (**hashes_r)[65], size_t *n_r,
                      struct buf *err)
{
    *hashes_r = NULL;
    *n_r = 0;
    if (!store_text_indexed(text))
        return 1;
    return s->drv->text_emails(s, owner, in_mailbox, fields, text, newest_first, hashes_r, n_r,
                               err);
}

int store_text_topup(struct store *s, size_t max, size_t *n_r, struct buf *err)
{
    *n_r = 0;
    return s->drv->text_topup(s, max, n_r, err);
}

void store_checkpoint_deferred(struct store *s)
{
    s->drv->checkpoint_deferred(s);
}

int store_checkpoint(struct store *s, struct buf *err)
{
    return s->drv->checkpoint(s, err);
}

int store_data_version(struct store *s, int64_t *v_r, struct buf *err)
{
    *v_r = 0;
    return s->drv->data_version(s, v_r, err);
}

int store_read_begin(struct store *s, struct buf *err)
{
    return s->drv->read_begin(s, err);
}

void store_read_end(struct store *s)
{
    s->drv->read_end(s);
}

int store_message_set_records_id(struct store *s, const char *owner, int64_t mailbox_id,
                                 const uint32_t *uids, const struct slice *recs, size_t n,
                                 struct buf *err)
{
    return s->drv->message_set_records(s, owner, mailbox_id, uids, recs, n, err);
}

int store_message_set_records(struct store *s, const char *owner, const char *mailbox,
                              const uint32_t *uids, const struct slice *recs, size_t n,
                              struct buf *err)
{
    int64_t mailbox_id;
    if (resolve(s, owner, mailbox, &mailbox_id, err) < 0)
        return -1;
    return store_message_set_records_id(s, owner, mailbox_id, uids, recs, n, err);
}

int store_message_copy_to_id(struct store *s, const char *owner, int64_t mailbox_id,
                             const uint32_t *uids, size_t n, const char *dest_owner,
                             int64_t dest_id, bool move, uint32_t *new_uids_r, struct buf *err)
{
    return s->drv->message_copy_to(s, owner, mailbox_id, uids, n, dest_owner, dest_id, move,
                                   new_uids_r, err);
}

int store_message_copy_to(struct store *s, const char *owner, const char *mailbox,
                          const uint32_t *uids, size_t n, const char *dest_owner, const char *dest,
                          bool move, uint32_t *new_uids_r, struct buf *err)
{
    int64_t mailbox_id;
    if (resolve(s, owner, mailbox, &mailbox_id, err) < 0)
        return -1;
    int64_t dest_id;
    if (resolve(s, dest_owner, dest, &dest_id, err) < 0)
        return -1;
    return store_message_copy_to_id(s, owner, mailbox_id, uids, n, dest_owner, dest_id, move,
                                    new_uids_r, err);
}

int store_message_expunge_id(struct store *s, const char *owner, int64_t mailbox_id,
                             const uint32_t *uids, size_t n, struct buf *err)
{
    return s->drv->message_expunge(s, owner, mailbox_id, uids, n, err);
}

int store_message_expunge(struct store *s, const char *owner, const char *mailbox,
                          const uint32_t *uids, size_t n, struct buf *err)
{
    int64_t mailbox_id;
    if (resolve(s, owner, mailbox, &mailbox_id, err) < 0)
        return -1;
    return store_message_expunge_id(s, owner, mailbox_id, uids, n, err);
}

int store_message_changes_id(struct store *s, const char *owner, int64_t mailbox_id, uint64_t since,
                             struct store_changes *c, struct buf *err)
{
    return s->drv->message_changes(s, owner, mailbox_id, since, c, err);
}

int store_message_changes(struct store *s, const char *owner, const char *mailbox, uint64_t since,
                          struct store_changes *c, struct buf *err)
{
    int64_t mailbox_id;
    if (resolve(s, owner, mailbox, &mailbox_id, err) < 0)
        return -1;
    return store_message_changes_id(s, owner, mailbox_id, since, c, err);
}

int store_expunged_since_id(struct store *s, const char *owner, int64_t mailbox_id, uint64_t modseq,
                            uint32_t **uids_r, size_t *n_r, struct buf *err)
{
    return s->drv->expunged_since(s, owner, mailbox_id, modseq, uids_r, n_r, err);
}

int store_expunged_since(struct store *s, const char *owner, const char *mailbox, uint64_t modseq,
                         uint32_t **uids_r, size_t *n_r, struct buf *err)
{
    int64_t mailbox_id;
    if (resolve(s, owner, mailbox, &mailbox_id, err) < 0)
        return -1;
    return store_expunged_since_id(s, owner, mailbox_id, modseq, uids_r, n_r, err);
}

int store_deliver(struct store *s, struct store_delivery *d, size_t n, struct buf *err)
{
    return s->drv->deliver(s, d, n, err);
}

int store_account_messages(struct store *s, const char *owner, const char *blob, uint64_t since,
                           bool with_structure, struct store_account_message **list_r, size_t *n_r,
                           struct buf *err)
{
    return s->drv->account_messages(s, owner, blob, since, with_structure, list_r, n_r, err);
}

int store_account_dates(struct store *s, const char *owner, store_account_row_fn *row, void *ctx,
                        struct buf *err)
{
    return s->drv->account_dates(s, owner, row, ctx, err);
}

int store_dates(struct store *s, const struct store_dates_ask *q, store_account_walk_fn *row,
                void *ctx, struct buf *err)
{
    return s->drv->dates(s, q, row, ctx, err);
}

int store_mailbox_count(struct store *s, const char *owner, int64_t mailbox, bool threads,
                        const struct store_keyword_cond *k, size_t nk, uint64_t *n_r,
                        struct buf *err)
{
    return s->drv->mailbox_count(s, owner, mailbox, threads, k, nk, n_r, err);
}

void store_account_messages_free(struct store_account_message *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].m.keywords);
        free(list[i].m.structure);
    }
    free(list);
}

int store_account_gone(struct store *s, const char *owner, uint64_t since,
                       struct store_account_gone *g, struct buf *err)
{
    return s->drv->account_gone(s, owner, since, g, err);
}

void store_account_gone_free(struct store_account_gone *g)
{
    free(g->mailboxes);
    free(g->mailbox_states);
    free(g->blobs);
    free(g->blob_states);
    free(g->threads);
    free(g->thread_states);
    memset(g, 0, sizeof(*g));
}

void store_body_id(struct slice data, char hex_r[65])
{
    blob_hash_hex(data, hex_r);
}

int store_upload(struct store *s, const char *owner, struct slice data, char hash_r[65],
                 struct buf *err)
{
    return s->drv->upload(s, owner, data, hash_r, err);
}

int store_account_blob_read(struct store *s, const char *owner, const char *hash, struct buf *out,
                            struct buf *err)
{
    return s->drv->account_blob_read(s, owner, hash, out, err);
}

int store_totals(struct store *s, struct store_totals *t, struct buf *err)
{
    return s->drv->totals(s, t, err);
}

int store_quota_usage(struct store *s, const char *owner, uint64_t *bytes_r, uint64_t *messages_r,
                      struct buf *err)
{
    return s->drv->quota_usage(s, owner, bytes_r, messages_r, err);
}

int store_acl_set(struct store *s, const char *owner, const char *mailbox, const char *identifier,
                  const char *rights, struct buf *err)
{
    return s->drv->acl_set(s, owner, mailbox, identifier, rights, err);
}

int store_acl_get(struct store *s, const char *owner, const char *mailbox, const char *identifier,
                  struct buf *rights_r, struct buf *err)
{
    return s->drv->acl_get(s, owner, mailbox, identifier, rights_r, err);
}

int store_acl_list(struct store *s, const char *owner, const char *mailbox,
                   struct store_acl_entry **list_r, size_t *n_r, struct buf *err)
{
    return s->drv->acl_list(s, owner, mailbox, list_r, n_r, err);
}

int store_acl_rights(struct store *s, const char *owner, const char *mailbox, const char *user,
                     struct buf *rights_r, struct buf *err)
{
    return s->drv->acl_rights(s, owner, mailbox, user, rights_r, err);
}

int store_acl_shared(struct store *s, const char *user, struct store_acl_share **list_r,
                     size_t *n_r, struct buf *err)
{
    return s->drv->acl_shared(s, user, list_r, n_r, err);
}

int store_acl_may_create(struct store *s, const char *owner, const char *mailbox, const char *user,
                         struct buf *err)
{
    if (strcmp(owner, user) == 0)
        return 1;
    const char *slash = strrchr(mailbox, STORE_DELIMITER);
    if (slash == NULL)
        return 0; /* the top of another owner's tree: never */
    struct buf parent = BUF_INIT, rights = BUF_INIT;
    buf_append(&parent, mailbox, (size_t)(slash - mailbox));
    int rc = s->drv->acl_rights(s, owner, buf_cstr(&parent), user, &rights, err);
    int ok = rc < 0 ? -1 : rc == 0 && strchr(buf_cstr(&rights), 'k') != NULL;
    buf_free(&parent);
    buf_free(&rights);
    return ok;
}

int store_blob_stats(struct store *s, struct store_blob_stats *st, struct buf *err)
{
    return s->drv->blob_stats(s, st, err);
}

int store_gc(struct store *s, struct buf *err)
{
    return s->drv->gc(s, err);
}

int store_dedupe_expire(struct store *s, int64_t max_age_seconds, struct buf *err)
{
    return s->drv->dedupe_expire(s, max_age_seconds, err);
}

void store_release_memory(struct store *s)
{
    s->drv->release_memory(s);
}
