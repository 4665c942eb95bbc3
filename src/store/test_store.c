/*
 * test_store.c - unit tests of the Information Store (SQLite driver + blob segments):
 * UID/MODSEQ rules, the expunge log, changes since a MODSEQ, STATUS counters, single-instance
 * bodies and their refcounts under two concurrent processes, crash injection around the commit,
 * quotas, names, ACLs, GC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "mime/mime.h"
#include "store/store.h"
#include "store/test_store_util.h"

#include <sqlite3.h>

#define ALICE "alice@example.test"
#define BOB "bob@example.test"

/* What versions 8 (the vacation response) and 9 (identities) added. */
#define UNDO_VERSION_8                                                                             \
    "DROP TABLE vacation; DROP TABLE vacation_sent;"                                               \
    "DROP TABLE identities; DROP TABLE identities_gone;"
/* What version 7 (JMAP) added, for the tests that take a store back to an older version. */
#define UNDO_VERSION_7                                                                             \
    "DROP TRIGGER jmap_mailbox_insert; DROP TRIGGER jmap_mailbox_update;"                          \
    "DROP TRIGGER jmap_mailbox_delete; DROP TRIGGER jmap_subscribe;"                               \
    "DROP TRIGGER jmap_unsubscribe; DROP TRIGGER jmap_message_insert;"                             \
    "DROP TRIGGER jmap_message_update; DROP TRIGGER jmap_message_delete;"                          \
    "DROP TABLE mailboxes_gone; DROP TABLE emails_gone; DROP TABLE uploads;"                       \
    "DROP INDEX messages_blob; DROP INDEX messages_state;"                                         \
    "ALTER TABLE mailboxes DROP COLUMN state; ALTER TABLE mailboxes DROP COLUMN created_state;"    \
    "ALTER TABLE messages DROP COLUMN state; ALTER TABLE messages DROP COLUMN created_state;"

/* What version 10 (outbound news feeds) added. */
#define UNDO_VERSION_10                                                                            \
    "DROP TRIGGER nntp_feed_mailbox_delete; DROP TABLE nntp_feed_queue;"                           \
    "DROP TABLE nntp_feed_cursor;"
/* What version 11 (the Message-ID index) added. */
#define UNDO_VERSION_11 "DROP INDEX messages_msgid; ALTER TABLE messages DROP COLUMN msgid;"
#define UNDO_VERSION_12 "DROP TABLE nntp_pull;"
#define UNDO_VERSION_13                                                                            \
    "DROP TRIGGER recent_count_insert; DROP TRIGGER recent_count_delete;"                          \
    "DROP TRIGGER recent_count_claim; ALTER TABLE mailboxes DROP COLUMN n_recent;"

/* What the account state, expunged-message, \Recent, newsgroups and inline-body steps added. */
#define UNDO_STATE_TO_NEWSGROUPS                                                                   \
    "DROP TRIGGER state_mailbox_insert;"                                                           \
    "DROP TRIGGER state_mailbox_update;"                                                           \
    "DROP TRIGGER state_mailbox_delete;"                                                           \
    "DROP TRIGGER state_subscribe;"                                                                \
    "DROP TRIGGER state_unsubscribe;"                                                              \
    "DROP TABLE account_state;"                                                                    \
    "DELETE FROM meta WHERE key = 'mailbox_id_next';"                                              \
    "DROP INDEX expunged_held;"                                                                    \
    "ALTER TABLE expunged DROP COLUMN blob;"                                                       \
    "ALTER TABLE expunged DROP COLUMN at;"                                                         \
    "ALTER TABLE mailboxes DROP COLUMN recent_uid;"                                                \
    "DROP TRIGGER newsgroups_mailbox_delete;"                                                      \
    "DROP TABLE newsgroups;"                                                                       \
    "ALTER TABLE blobs DROP COLUMN body;"

static struct store *dir_store(const char *dir)
{
    struct buf err = BUF_INIT;
    struct store *s = store_open_dir(dir, NULL, &err);
    if (s == NULL)
        fail_msg("%s", buf_cstr(&err));
    buf_free(&err);
    return s;
}

/* Delivers one message to one target; returns the target's status, uid in *uid_r. */
/* The IMAP ENVELOPE of a listed message's MIME cache (which must decode). */
static char *envelope_of(const struct store_message *m)
{
    struct mime_struct st;
    assert_non_null(m->structure);
    assert_true(mime_struct_decode(slice_make(m->structure, m->structure_len), &st));
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_imap_struct_envelope(&out, &st, 0);
    mime_struct_free(&st);
    char *r = xstrdup(buf_cstr(&out));
    buf_free(&out);
    return r;
}

static enum store_status put(struct store *s, const char *owner, const char *mailbox,
                             const char *body, const char *dedupe, uint64_t qbytes, uint64_t qmsgs,
                             uint32_t *uid_r)
{
    struct store_target t = {
        .owner = owner, .mailbox = mailbox, .quota_bytes = qbytes, .quota_messages = qmsgs};
    struct store_delivery d = {
        .data = slice_from_cstr(body), .dedupe_id = dedupe, .targets = &t, .n_targets = 1};
    struct buf err = BUF_INIT;
    int rc = store_deliver(s, &d, 1, &err);
    if (rc != 0)
        fail_msg("deliver: %s", buf_cstr(&err));
    buf_free(&err);
    if (uid_r)
        *uid_r = t.uid;
    return t.status;
}

static struct store_mailbox get_mb(struct store *s, const char *owner, const char *name)
{
    struct store_mailbox mb;
    struct buf err = BUF_INIT;
    int rc = store_mailbox_get(s, owner, name, &mb, &err);
    if (rc != 0)
        fail_msg("mailbox_get %s: %d %s", name, rc, buf_cstr(&err));
    buf_free(&err);
    return mb;
}

/* store_dates' walk of a mailbox: the uids met, in order, into ctx (a uint32_t[9], [8] the count)
 */
static bool walk_uid(void *ctx, const struct store_account_message *a)
{
    uint32_t *u = ctx;
    if (u[8] < 8)
        u[u[8]++] = a->m.uid;
    return true;
}

/* The walk of INBOX (newest first) as uids, and its count (copies; threads). */
static size_t walk_inbox(struct store *s, const char *owner, uint32_t *u, uint64_t *n_r)
{
    struct store_mailbox mb = get_mb(s, owner, "INBOX");
    struct buf err = BUF_INIT;
    memset(u, 0, 9 * sizeof(*u));
    struct store_dates_ask ask = {STORE_DATES_MAILBOX, owner, mb.id, true, NULL, 0};
    assert_int_equal(store_dates(s, &ask, walk_uid, u, &err), 0);
    assert_int_equal(store_mailbox_count(s, owner, mb.id, false, NULL, 0, n_r, &err), 0);
    buf_free(&err);
    store_mailbox_free(&mb);
    return u[8];
}

/* A body delivered twice to a mailbox: its second copy is kept apart (message_dupes),
 * so the walk and the count see one copy a body; when the first goes, the next is it. */
static void test_mailbox_first_copies(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    uint32_t a, b, a2, c, u[9];
    uint64_t n = 0;
    assert_int_equal(put(s, ALICE, NULL, "Subject: a\r\n\r\na\r\n", NULL, 0, 0, &a), STORE_OK);
    assert_int_equal(put(s, ALICE, NULL, "Subject: b\r\n\r\nb\r\n", NULL, 0, 0, &b), STORE_OK);
    assert_int_equal(put(s, ALICE, NULL, "Subject: a\r\n\r\na\r\n", NULL, 0, 0, &a2), STORE_OK);
    assert_int_equal(put(s, ALICE, NULL, "Subject: c\r\n\r\nc\r\n", NULL, 0, 0, &c), STORE_OK);
    assert_int_equal(walk_inbox(s, ALICE, u, &n), 3);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_not_equal(u[i], a2);
    struct buf err = BUF_INIT;
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &a, 1, &err), 0);
    assert_int_equal(walk_inbox(s, ALICE, u, &n), 3); /* a2 is a's first copy now */
    assert_int_equal(n, 3);
    bool seen = false;
    for (int i = 0; i < 3; i++)
        seen = seen || u[i] == a2;
    assert_true(seen);
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &a2, 1, &err), 0);
    assert_int_equal(walk_inbox(s, ALICE, u, &n), 2);
    assert_int_equal(n, 2);
    /* a keyword condition counted in SQL: \Seen on c only */
    struct store_mailbox mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(store_message_flags(s, ALICE, "INBOX", &c, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
                                         NULL, 0, NULL, &err),
                     0);
    assert_int_equal(store_message_flags(s, ALICE, "INBOX", &b, 1, STORE_FLAGS_ADD, 0,
                                         "other Project", 0, NULL, &err),
                     0);
    struct store_keyword_cond k = {STORE_FLAG_SEEN, "$seen", false};
    assert_int_equal(store_mailbox_count(s, ALICE, mb.id, false, &k, 1, &n, &err), 0);
    assert_int_equal(n, 1); /* b */
    k = (struct store_keyword_cond){0, "PROJECT", true};
    assert_int_equal(store_mailbox_count(s, ALICE, mb.id, true, &k, 1, &n, &err), 0);
    assert_int_equal(n, 1);                           /* b's thread */
    k = (struct store_keyword_cond){0, "proj", true}; /* a whole word only */
    assert_int_equal(store_mailbox_count(s, ALICE, mb.id, false, &k, 1, &n, &err), 0);
    assert_int_equal(n, 0);
    /* the copies having a keyword, found through the partial index of the copies with words
     * (schema 22); a flag through messages_date */
    memset(u, 0, sizeof(u));
    k = (struct store_keyword_cond){0, "PROJECT", true};
    struct store_dates_ask ask = {STORE_DATES_KEYWORD, ALICE, 0, true, &k, 1};
    assert_int_equal(store_dates(s, &ask, walk_uid, u, &err), 0);
    assert_int_equal(u[8], 1);
    assert_int_equal(u[0], b);
    memset(u, 0, sizeof(u));
    k = (struct store_keyword_cond){0, "proj", true};
    assert_int_equal(store_dates(s, &ask, walk_uid, u, &err), 0);
    assert_int_equal(u[8], 0);
    memset(u, 0, sizeof(u));
    k = (struct store_keyword_cond){STORE_FLAG_SEEN, "$seen", true};
    assert_int_equal(store_dates(s, &ask, walk_uid, u, &err), 0);
    assert_int_equal(u[8], 1);
    assert_int_equal(u[0], c);
    store_mailbox_free(&mb);
    buf_free(&err);
    store_close(s);
}

/* SQLite keeps no memory statistics in a store's process: with them, every allocation of
 * every thread took one shared mutex (sqlite_setup.h), and a query beside the JMAP view
 * builder spent most of its time waiting on it. */
static void test_sqlite_keeps_no_memory_statistics(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    struct store_mailbox *l;
    size_t n;
    assert_int_equal(store_mailbox_list(s, ALICE, &l, &n, &err), 0);
    store_mailbox_list_free(l, n);
    assert_int_equal(sqlite3_memory_used(), 0); /* counted only with statistics on */
    buf_free(&err);
    store_close(s);
}

static void test_default_folders(void **state)
{
    struct store *s = tmp_store();
    struct store_mailbox *l;
    size_t n;
    struct buf err = BUF_INIT;
    assert_int_equal(store_mailbox_list(s, ALICE, &l, &n, &err), 0);
    assert_int_equal(n, 6);
    const char *want[][2] = {{"Archive", "\\Archive"}, {"Drafts", "\\Drafts"},
                             {"INBOX", NULL},          {"Junk", "\\Junk"},
                             {"Sent", "\\Sent"},       {"Trash", "\\Trash"}};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(l[i].name, want[i][0]);
        if (want[i][1])
            assert_string_equal(l[i].special_use, want[i][1]);
        else
            assert_null(l[i].special_use);
        assert_int_equal(l[i].uidnext, 1);
    }
    /* Distinct UIDVALIDITYs. */
    for (size_t i = 1; i < n; i++)
        assert_int_not_equal(l[i].uidvalidity, l[0].uidvalidity);
    store_mailbox_list_free(l, n);
    buf_free(&err);
    store_close(s);
}

static void test_uid_modseq_rules(void **state)
{
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    uint32_t uid;
    uint64_t last_modseq = 0;
    for (uint32_t i = 1; i <= 3; i++) {
        assert_int_equal(put(s, ALICE, NULL, "Subject: x\r\n\r\nbody\r\n", NULL, 0, 0, &uid),
                         STORE_OK);
        assert_int_equal(uid, i);
    }
    struct store_message *m;
    size_t n;
    assert_int_equal(store_message_list(s, ALICE, "inbox", 1, &m, &n, &err), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_true(m[i].modseq > last_modseq);
        last_modseq = m[i].modseq;
    }
    store_message_list_free(m, n);

    /* Expunge the last one: its UID is never handed out again. */
    uint32_t three = 3;
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &three, 1, &err), 0);
    struct store_mailbox mb = get_mb(s, ALICE, "INBOX");
    assert_true(mb.highestmodseq > last_modseq);
    uint64_t before_expunge = last_modseq;
    last_modseq = mb.highestmodseq;
    assert_int_equal(mb.uidnext, 4);
    assert_int_equal(mb.messages, 2);
    store_mailbox_free(&mb);
    assert_int_equal(put(s, ALICE, NULL, "again\r\n", NULL, 0, 0, &uid), STORE_OK);
    assert_int_equal(uid, 4);

    /* The expunge log answers "what vanished since MODSEQ x". */
    uint32_t *gone;
    assert_int_equal(store_expunged_since(s, ALICE, "INBOX", before_expunge, &gone, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(gone[0], 3);
    free(gone);
    assert_int_equal(store_expunged_since(s, ALICE, "INBOX", last_modseq, &gone, &n, &err), 0);
    assert_int_equal(n, 0);
    free(gone);

    /* Flags: every change a new MODSEQ; UNCHANGEDSINCE refuses a stale one. */
    uint32_t u1[] = {1, 99};
    struct store_flags_result r[2];
    assert_int_equal(store_message_flags(s, ALICE, "INBOX", u1, 2, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
                                         "$Label1 work", 0, r, &err),
                     0);
    assert_int_equal(r[0].outcome, STORE_FLAGS_CHANGED);
    assert_int_equal(r[1].outcome, STORE_FLAGS_NO_UID);
    uint64_t ms1 = r[0].modseq;
    assert_true(ms1 > last_modseq);
    /* Nothing to change: MODSEQ kept. */
    assert_int_equal(store_message_flags(s, ALICE, "INBOX", u1, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
                                         "WORK", 0, r, &err),
                     0);
    assert_int_equal(r[0].outcome, STORE_FLAGS_UNCHANGED);
    assert_int_equal(r[0].modseq, ms1);
    assert_int_equal(
        store_message_flags(s, ALICE, "INBOX", u1, 1, STORE_FLAGS_REMOVE, 0, "$label1", 0, r, &err),
        0);
    assert_int_equal(r[0].outcome, STORE_FLAGS_CHANGED);
    uint64_t ms2 = r[0].modseq;
    assert_true(ms2 > ms1);
    assert_int_equal(r[0].flags, STORE_FLAG_SEEN);
    assert_int_equal(store_message_flags(s, ALICE, "INBOX", u1, 1, STORE_FLAGS_REPLACE,
                                         STORE_FLAG_FLAGGED, NULL, ms1, r, &err),
                     0);
    assert_int_equal(r[0].outcome, STORE_FLAGS_MODIFIED_SINCE);
    assert_int_equal(store_message_list(s, ALICE, "INBOX", 1, &m, &n, &err), 0);
    assert_string_equal(m[0].keywords, "work");
    assert_int_equal(m[0].flags, STORE_FLAG_SEEN);
    store_message_list_free(m, n);
    mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.highestmodseq, ms2);
    store_mailbox_free(&mb);
    buf_free(&err);
    store_close(s);
}

static struct store_changes changes(struct store *s, const char *name, uint64_t since)
{
    struct store_changes c;
    struct buf err = BUF_INIT;
    if (store_message_changes(s, ALICE, name, since, &c, &err) != 0)
        fail_msg("changes: %s", buf_cstr(&err));
    buf_free(&err);
    return c;
}

/* What a selected view reads on every sync: changed rows and the expunge log past its MODSEQ. */
static void test_changes_since(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    for (int i = 0; i < 5; i++)
        assert_int_equal(put(s, ALICE, NULL, "Subject: x\r\n\r\nbody\r\n", NULL, 0, 0, NULL),
                         STORE_OK);
    /* since 0: the light listing, every message in UID order, no MIME cache, no expunges. */
    assert_int_equal(store_message_set_cache(s, ALICE, "INBOX", 2, SLICE_LIT("(bs)"), &err), 0);
    struct store_changes c = changes(s, "INBOX", 0);
    assert_int_equal(c.n, 5);
    for (size_t i = 0; i < c.n; i++) {
        assert_int_equal(c.msgs[i].uid, i + 1);
        assert_null(c.msgs[i].structure);
        assert_int_equal(c.msgs[i].size, 20);
    }
    assert_int_equal(c.n_expunged, 0);
    assert_int_equal(c.uidnext, 6);
    uint64_t m0 = c.highestmodseq;
    uint32_t uidvalidity = c.uidvalidity;
    store_changes_free(&c);

    /* Nothing changed: nothing to read. */
    c = changes(s, "INBOX", m0);
    assert_int_equal(c.n + c.n_expunged, 0);
    assert_int_equal(c.highestmodseq, m0);
    store_changes_free(&c);

    /* A flag change on an old message, an expunge, a new message: the old
     * message comes after the newer ones in MODSEQ order, before them in UID order. */
    uint32_t four = 4, one = 1, three = 3;
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &three, 1, &err), 0);
    assert_int_equal(put(s, ALICE, NULL, "new\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(store_message_flags(s, ALICE, "INBOX", &four, 1, STORE_FLAGS_ADD,
                                         STORE_FLAG_SEEN, "$done", 0, NULL, &err),
                     0);
    assert_int_equal(store_message_flags(s, ALICE, "INBOX", &one, 1, STORE_FLAGS_ADD,
                                         STORE_FLAG_FLAGGED, NULL, 0, NULL, &err),
                     0);
    c = changes(s, "INBOX", m0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.msgs[0].uid, 1);
    assert_int_equal(c.msgs[0].flags, STORE_FLAG_FLAGGED);
    assert_int_equal(c.msgs[1].uid, 4);
    assert_int_equal(c.msgs[1].flags, STORE_FLAG_SEEN);
    assert_string_equal(c.msgs[1].keywords, "$done");
    assert_int_equal(c.msgs[2].uid, 6);
    assert_int_equal(c.n_expunged, 1);
    assert_int_equal(c.expunged[0], 3);
    assert_int_equal(c.highestmodseq, m0 + 4);
    assert_true(c.msgs[0].modseq == c.highestmodseq);
    uint64_t m1 = c.highestmodseq;
    store_changes_free(&c);
    /* From the middle: only what came after. */
    c = changes(s, "INBOX", m0 + 2);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.n_expunged, 0);
    store_changes_free(&c);
    /* A message appended and expunged between two syncs shows only in the log. */
    assert_int_equal(put(s, ALICE, NULL, "brief\r\n", NULL, 0, 0, NULL), STORE_OK);
    uint32_t seven = 7;
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &seven, 1, &err), 0);
    c = changes(s, "INBOX", m1);
    assert_int_equal(c.n, 0);
    assert_int_equal(c.n_expunged, 1);
    assert_int_equal(c.expunged[0], 7);
    store_changes_free(&c);

    /* STATUS counts follow appends, flag changes and expunges (kept by triggers). */
    struct store_mailbox mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.messages, 5);
    assert_int_equal(mb.unseen, 4);
    assert_int_equal(mb.bytes, 4 * 20 + 5);
    store_mailbox_free(&mb);
    uint32_t copy[] = {1, 2};
    assert_int_equal(store_message_copy(s, ALICE, "INBOX", copy, 2, "Archive", true, NULL, &err),
                     0);
    mb = get_mb(s, ALICE, "Archive");
    assert_int_equal(mb.messages, 2);
    assert_int_equal(mb.unseen, 2);
    assert_int_equal(mb.bytes, 2 * 20);
    store_mailbox_free(&mb);
    mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.messages, 3);
    assert_int_equal(mb.unseen, 2);
    store_mailbox_free(&mb);

    /* Deleted and created again: another UIDVALIDITY tells the caller its view is gone. */
    assert_int_equal(store_mailbox_delete(s, ALICE, "Archive", &err), 0);
    assert_int_equal(store_message_changes(s, ALICE, "Archive", 1, &c, &err), -1);
    buf_reset(&err);
    c = changes(s, "INBOX", 0);
    store_changes_free(&c);
    assert_int_equal(store_mailbox_create(s, ALICE, "Archive", NULL, &err), 0);
    assert_int_equal(store_mailbox_delete(s, ALICE, "Drafts", &err), 0);
    assert_int_equal(store_mailbox_create(s, ALICE, "Drafts", NULL, &err), 0);
    c = changes(s, "Drafts", 0);
    assert_int_not_equal(c.uidvalidity, uidvalidity);
    assert_int_equal(c.n, 0);
    store_changes_free(&c);
    mb = get_mb(s, ALICE, "Archive");
    assert_int_equal(mb.messages + mb.unseen + mb.bytes, 0);
    store_mailbox_free(&mb);
    buf_free(&err);
    store_close(s);
}

/* A database of schema 1 (no counters) gets them right when it is opened: migration 1 -> 2. */
static void test_counters_migrate(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct store *s = dir_store(dir);
    struct buf err = BUF_INIT;
    for (int i = 0; i < 3; i++)
        assert_int_equal(put(s, ALICE, NULL, "Subject: x\r\n\r\nbody\r\n", NULL, 0, 0, NULL),
                         STORE_OK);
    uint32_t two = 2;
    assert_int_equal(store_message_flags(s, ALICE, "INBOX", &two, 1, STORE_FLAGS_ADD,
                                         STORE_FLAG_SEEN, NULL, 0, NULL, &err),
                     0);
    store_close(s);
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/store.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     UNDO_AFTER_13 UNDO_VERSION_13 UNDO_VERSION_12 UNDO_VERSION_11 UNDO_VERSION_10
                         UNDO_VERSION_8 UNDO_VERSION_7
                     "DROP TRIGGER messages_count_insert;"
                     "DROP TRIGGER messages_count_delete;"
                     "DROP TRIGGER messages_count_seen;"
                     "ALTER TABLE mailboxes DROP COLUMN n_messages;"
                     "ALTER TABLE mailboxes DROP COLUMN n_unseen;"
                     "ALTER TABLE mailboxes DROP COLUMN n_bytes;"
                     /* and what versions 3, 4 and 5 added */
                     "ALTER TABLE messages DROP COLUMN search;" UNDO_STATE_TO_NEWSGROUPS
                     "PRAGMA user_version = 1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    buf_free(&path);
    s = dir_store(dir);
    struct store_mailbox mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.messages, 3);
    assert_int_equal(mb.unseen, 2);
    assert_int_equal(mb.bytes, 3 * 20);
    /* version 3: what was there before counts as seen, nobody gets it as \Recent */
    assert_int_equal(mb.recent_uid, 4);
    assert_int_equal(mb.recent, 0);
    store_mailbox_free(&mb);
    buf_free(&err);
    store_close(s);
    rm_dir(dir);
}

/* Version 2 -> 3: messages stored before search records have none until
 * they are given one; messages delivered after carry theirs (and ENVELOPE). */
static void test_search_records_migrate(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct store *s = dir_store(dir);
    struct buf err = BUF_INIT;
    assert_int_equal(
        put(s, ALICE, NULL, "From: Old <old@example.test>\r\n\r\nbody\r\n", NULL, 0, 0, NULL),
        STORE_OK);
    store_close(s);
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/store.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  UNDO_AFTER_13 UNDO_VERSION_13 UNDO_VERSION_12 UNDO_VERSION_11
                                      UNDO_VERSION_10 UNDO_VERSION_8 UNDO_VERSION_7
                                  "ALTER TABLE messages DROP COLUMN search;"
                                  "UPDATE messages SET envelope = NULL, bodystructure = NULL;"
                                  /* and what versions 4 and 5 added */ UNDO_STATE_TO_NEWSGROUPS
                                  "PRAGMA user_version = 2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    buf_free(&path);
    s = dir_store(dir);
    assert_int_equal(
        put(s, ALICE, NULL, "From: New <new@example.test>\r\n\r\nbody\r\n", NULL, 0, 0, NULL),
        STORE_OK);
    struct store_records r;
    assert_int_equal(store_message_records(s, ALICE, "INBOX", 1, &r, &err), 0);
    assert_int_equal(r.n, 2);
    assert_false(r.v[0].present);
    assert_null(store_record_get(&r, 0).ptr);
    assert_true(r.v[1].present);
    struct slice rec = store_record_get(&r, 1);
    assert_non_null(memmem(rec.ptr, rec.len, "new@example.test", 16));
    store_records_free(&r);
    struct store_message *ml;
    size_t nl;
    assert_int_equal(store_message_list(s, ALICE, "INBOX", 1, &ml, &nl, &err), 0);
    assert_null(ml[0].structure);
    char *env = envelope_of(&ml[1]);
    assert_non_null(strstr(env, "\"new\" \"example.test\""));
    free(env);
    store_message_list_free(ml, nl);
    /* the first search fills the old one in */
    uint32_t one = 1;
    struct slice fill = SLICE_LIT("\001x");
    assert_int_equal(store_message_set_records(s, ALICE, "INBOX", &one, &fill, 1, &err), 0);
    assert_int_equal(store_message_records(s, ALICE, "INBOX", 1, &r, &err), 0);
    assert_true(r.v[0].present);
    assert_int_equal(store_record_get(&r, 0).len, 2);
    store_records_free(&r);
    /* a copy carries the record */
    uint32_t two = 2, copied = 0;
    assert_int_equal(
        store_message_copy(s, ALICE, "INBOX", &two, 1, "Archive", false, &copied, &err), 0);
    assert_int_equal(store_message_records(s, ALICE, "Archive", 1, &r, &err), 0);
    assert_int_equal(r.n, 1);
    assert_true(r.v[0].present);
    store_records_free(&r);
    buf_free(&err);
    store_close(s);
    rm_dir(dir);
}

static void test_reopen_and_recreate(void **state)
{
    char *dir = make_dir();
    struct store *s = dir_store(dir);
    struct buf err = BUF_INIT;
    uint32_t uid;
    assert_int_equal(put(s, ALICE, NULL, "one\r\n", NULL, 0, 0, &uid), STORE_OK);
    assert_int_equal(put(s, ALICE, NULL, "two\r\n", NULL, 0, 0, &uid), STORE_OK);
    uint32_t two = 2;
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &two, 1, &err), 0);
    struct store_mailbox mb = get_mb(s, ALICE, "INBOX");
    uint32_t uv = mb.uidvalidity;
    uint64_t hms = mb.highestmodseq;
    store_mailbox_free(&mb);
    store_close(s);

    s = dir_store(dir);
    assert_int_equal(put(s, ALICE, NULL, "three\r\n", NULL, 0, 0, &uid), STORE_OK);
    assert_int_equal(uid, 3);
    mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.uidvalidity, uv);
    assert_true(mb.highestmodseq > hms);
    store_mailbox_free(&mb);

    /* A deleted and re-created folder: new UIDVALIDITY, so old UIDs cannot be mistaken. */
    assert_int_equal(store_mailbox_create(s, ALICE, "Lists/wharf", NULL, &err), 0);
    assert_int_equal(put(s, ALICE, "Lists/wharf", "l1\r\n", NULL, 0, 0, &uid), STORE_OK);
    mb = get_mb(s, ALICE, "Lists/wharf");
    uint32_t uv_old = mb.uidvalidity;
    store_mailbox_free(&mb);
    assert_int_equal(store_mailbox_delete(s, ALICE, "Lists/wharf", &err), 0);
    assert_int_equal(store_mailbox_create(s, ALICE, "Lists/wharf", NULL, &err), 0);
    mb = get_mb(s, ALICE, "Lists/wharf");
    assert_true(mb.uidvalidity > uv_old);
    assert_int_equal(mb.uidnext, 1);
    assert_int_equal(mb.messages, 0);
    store_mailbox_free(&mb);

    /* Rename keeps UIDVALIDITY and moves children. */
    assert_int_equal(store_mailbox_create(s, ALICE, "Lists/wharf/dev", NULL, &err), 0);
    mb = get_mb(s, ALICE, "Lists/wharf");
    uv = mb.uidvalidity;
    store_mailbox_free(&mb);
    assert_int_equal(store_mailbox_rename(s, ALICE, "Lists/wharf", "Old/wharf", &err), 0);
    mb = get_mb(s, ALICE, "Old/wharf");
    assert_int_equal(mb.uidvalidity, uv);
    store_mailbox_free(&mb);
    assert_int_equal(store_mailbox_get(s, ALICE, "Old/wharf/dev", &mb, &err), 0);
    store_mailbox_free(&mb);
    assert_int_equal(store_mailbox_get(s, ALICE, "Lists/wharf", &mb, &err), 1);
    buf_free(&err);
    store_close(s);
    rm_dir(dir);
}

static void test_single_instance_and_bytes(void **state)
{
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    static const char body[] = "From: a@b\r\nSubject: hi\r\n\r\nline\r\n\0binary\r\n";
    struct slice data = {body, sizeof(body) - 1};
    struct store_target t[3] = {
        {.owner = ALICE}, {.owner = BOB}, {.owner = "carol@example.test", .mailbox = "Archive"}};
    struct store_delivery d = {.data = data, .targets = t, .n_targets = 3};
    assert_int_equal(store_deliver(s, &d, 1, &err), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(t[i].status, STORE_OK);
    assert_string_equal(t[2].stored_in, "Archive");
    struct store_blob_stats st;
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, 1);
    assert_int_equal(st.blob_bytes, data.len);
    struct buf out = BUF_INIT;
    assert_int_equal(store_message_read(s, BOB, "INBOX", 1, &out, &err), 0);
    assert_int_equal(out.len, data.len);
    assert_memory_equal(out.data, data.ptr, data.len);
    assert_int_equal(store_message_read(s, BOB, "INBOX", 2, &out, &err), 1);
    uint32_t one = 1;

    /* Copy adds a reference; expunging all but one keeps the body. */
    uint32_t cuid[2], src[2] = {1, 42};
    assert_int_equal(store_message_copy(s, ALICE, "INBOX", src, 2, "Trash", false, cuid, &err), 0);
    assert_int_equal(cuid[0], 1);
    assert_int_equal(cuid[1], 0);
    /* MOVE: one transaction, the source is expunged (and logged), the body shared. */
    assert_int_equal(store_message_copy(s, BOB, "INBOX", src, 1, "Archive", true, cuid, &err), 0);
    assert_int_equal(cuid[0], 1);
    assert_int_equal(store_message_read(s, BOB, "INBOX", 1, &out, &err), 1);
    assert_int_equal(store_message_read(s, BOB, "Archive", 1, &out, &err), 0);
    assert_memory_equal(out.data, data.ptr, data.len);
    uint32_t *gone;
    size_t n_gone;
    assert_int_equal(store_expunged_since(s, BOB, "INBOX", 0, &gone, &n_gone, &err), 0);
    assert_int_equal(n_gone, 1);
    free(gone);
    assert_int_equal(store_message_expunge(s, BOB, "Archive", &one, 1, &err), 0);
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &one, 1, &err), 0);
    assert_int_equal(store_message_expunge(s, "carol@example.test", "Archive", &one, 1, &err), 0);
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, 1);
    assert_int_equal(store_message_read(s, ALICE, "Trash", 1, &out, &err), 0);
    assert_memory_equal(out.data, data.ptr, data.len);
    assert_int_equal(store_message_expunge(s, ALICE, "Trash", &one, 1, &err), 0);
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, 0);
    assert_true(st.segment_bytes > 0);
    assert_int_equal(store_gc(s, &err), 0);
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.segment_bytes, 0);
    buf_free(&out);
    buf_free(&err);
    store_close(s);
}

static void test_quota(void **state)
{
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    assert_int_equal(put(s, ALICE, NULL, "12345\r\n", NULL, 0, 2, NULL), STORE_OK);
    assert_int_equal(put(s, ALICE, NULL, "12345\r\n", NULL, 0, 2, NULL), STORE_OK);
    assert_int_equal(put(s, ALICE, NULL, "12345\r\n", NULL, 0, 2, NULL), STORE_OVER_QUOTA);
    uint64_t bytes, msgs;
    assert_int_equal(store_quota_usage(s, ALICE, &bytes, &msgs, &err), 0);
    assert_int_equal(msgs, 2);
    assert_int_equal(bytes, 14);
    assert_int_equal(put(s, BOB, NULL, "0123456789\r\n", NULL, 20, 0, NULL), STORE_OK);
    assert_int_equal(put(s, BOB, NULL, "0123456789\r\n", NULL, 20, 0, NULL), STORE_OVER_QUOTA);
    uint32_t one = 1;
    assert_int_equal(store_message_expunge(s, BOB, "INBOX", &one, 1, &err), 0);
    assert_int_equal(put(s, BOB, NULL, "0123456789\r\n", NULL, 20, 0, NULL), STORE_OK);
    /* Over quota for one target does not stop the other. */
    struct store_target t[2] = {{.owner = ALICE, .quota_messages = 2}, {.owner = BOB}};
    struct store_delivery d = {.data = SLICE_LIT("x\r\n"), .targets = t, .n_targets = 2};
    assert_int_equal(store_deliver(s, &d, 1, &err), 0);
    assert_int_equal(t[0].status, STORE_OVER_QUOTA);
    assert_int_equal(t[1].status, STORE_OK);
    buf_free(&err);
    store_close(s);
}

static void test_dedupe(void **state)
{
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    assert_int_equal(put(s, ALICE, NULL, "m\r\n", "Q1", 0, 0, NULL), STORE_OK);
    assert_int_equal(put(s, ALICE, NULL, "m\r\n", "Q1", 0, 0, NULL), STORE_DUPLICATE);
    assert_int_equal(put(s, BOB, NULL, "m\r\n", "Q1", 0, 0, NULL), STORE_OK);
    struct store_mailbox mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.messages, 1);
    store_mailbox_free(&mb);
    assert_int_equal(store_dedupe_expire(s, -10, &err), 0); /* everything is "old" */
    assert_int_equal(put(s, ALICE, NULL, "m\r\n", "Q1", 0, 0, NULL), STORE_OK);
    buf_free(&err);
    store_close(s);
}

/* store_data_version moves with another handle's commits, not with its own
 * (the mta's index top-up waits while it moves). */
static void test_data_version(void **state)
{
    char *dir = make_dir();
    struct store *a = dir_store(dir), *b = dir_store(dir);
    struct buf err = BUF_INIT;
    int64_t v0, v1, v2, v3;
    assert_int_equal(store_data_version(a, &v0, &err), 0);
    assert_int_equal(put(a, ALICE, NULL, "own\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(store_data_version(a, &v1, &err), 0);
    assert_true(v1 == v0); /* its own commit */
    assert_int_equal(put(b, ALICE, NULL, "other\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(store_data_version(a, &v2, &err), 0);
    assert_true(v2 != v1); /* another handle's */
    assert_int_equal(store_data_version(a, &v3, &err), 0);
    assert_true(v3 == v2); /* nobody wrote since */
    buf_free(&err);
    store_close(a);
    store_close(b);
    rm_dir(dir);
    (void)state;
}

/* Reads between store_read_begin and store_read_end see one snapshot: another
 * handle's commit shows after the end, a write of the handle's own ends it first. */
static uint64_t inbox_count(struct store *s)
{
    struct store_mailbox mb = get_mb(s, ALICE, STORE_INBOX);
    uint64_t n = mb.messages;
    store_mailbox_free(&mb);
    return n;
}

static void test_read_snapshot(void **state)
{
    char *dir = make_dir();
    struct store *a = dir_store(dir), *b = dir_store(dir);
    struct buf err = BUF_INIT;
    assert_int_equal(put(a, ALICE, NULL, "first\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(store_read_begin(a, &err), 0);
    assert_int_equal(inbox_count(a), 1);
    assert_int_equal(put(b, ALICE, NULL, "other\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(inbox_count(a), 1);             /* the snapshot's */
    assert_int_equal(store_read_begin(a, &err), -1); /* not nested */
    store_read_end(a);
    assert_int_equal(inbox_count(a), 2);
    /* a write inside ends the snapshot and commits as usual */
    assert_int_equal(store_read_begin(a, &err), 0);
    assert_int_equal(inbox_count(a), 2);
    assert_int_equal(put(b, ALICE, NULL, "third\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(put(a, ALICE, NULL, "own\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(inbox_count(a), 4);
    store_read_end(a);
    assert_int_equal(inbox_count(b), 4);
    buf_free(&err);
    store_close(a);
    store_close(b);
    rm_dir(dir);
    (void)state;
}

#define PER_PROC 150

static void test_concurrent_processes(void **state)
{
    char *dir = make_dir();
    struct store *s = dir_store(dir);
    store_close(s); /* schema created once, before the race */
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            struct store *c = dir_store(dir);
            for (int i = 0; i < PER_PROC; i++) {
                char body[64];
                /* Every other message is the same body in both processes. */
                if (i % 2)
                    snprintf(body, sizeof(body), "shared %d\r\n", i);
                else
                    snprintf(body, sizeof(body), "proc %d msg %d\r\n", k, i);
                struct store_target t[2] = {{.owner = ALICE}, {.owner = BOB}};
                struct store_delivery d = {
                    .data = slice_from_cstr(body), .targets = t, .n_targets = 2};
                struct buf err = BUF_INIT;
                if (store_deliver(c, &d, 1, &err) != 0 || t[0].status != STORE_OK)
                    _exit(1);
                buf_free(&err);
            }
            store_close(c);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status;
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    s = dir_store(dir);
    struct buf err = BUF_INIT;
    struct store_message *m;
    size_t n;
    assert_int_equal(store_message_list(s, ALICE, "INBOX", 1, &m, &n, &err), 0);
    assert_int_equal(n, 2 * PER_PROC);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(m[i].uid, i + 1); /* dense, unique, increasing */
        if (i)
            assert_true(m[i].modseq > m[i - 1].modseq);
    }
    store_message_list_free(m, n);
    struct store_blob_stats st;
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    /* PER_PROC/2 distinct bodies per process + PER_PROC/2 shared ones. */
    assert_int_equal(st.blobs, PER_PROC / 2 * 3);
    /* Every body reads back; refcounts drop to zero exactly when the last copy goes. */
    uint32_t *uids = xcalloc(2 * PER_PROC, sizeof(*uids));
    for (uint32_t i = 0; i < 2 * PER_PROC; i++)
        uids[i] = i + 1;
    struct buf out = BUF_INIT;
    assert_int_equal(store_message_read(s, BOB, "INBOX", 7, &out, &err), 0);
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", uids, 2 * PER_PROC, &err), 0);
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, PER_PROC / 2 * 3);
    assert_int_equal(store_message_expunge(s, BOB, "INBOX", uids, 2 * PER_PROC, &err), 0);
    /* The expunge log holds the bodies (expunge_hold): a session not yet told
     * of the expunge still reads them (RFC 2180 4.1.1); gc keeps them. */
    buf_reset(&out);
    assert_int_equal(store_message_read(s, BOB, "INBOX", 7, &out, &err), 0);
    assert_int_equal(store_gc(s, &err), 0);
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, PER_PROC / 2 * 3);
    store_close(s);
    /* Once the hold is over, gc drops them and the refcounts reach zero. */
    struct store_options o = {.segment_size = 64ull << 20,
                              .fsync = false,
                              .mailbox_name_max = STORE_MAILBOX_NAME_MAX,
                              .mailbox_depth_max = STORE_MAILBOX_DEPTH_MAX,
                              .keywords_max = STORE_KEYWORDS_MAX,
                              .expunge_hold = 0};
    s = store_open_dir(dir, &o, &err);
    assert_non_null(s);
    assert_int_equal(store_gc(s, &err), 0);
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, 0);
    assert_int_equal(store_message_read(s, BOB, "INBOX", 7, &out, &err), 1);
    free(uids);
    buf_free(&out);
    buf_free(&err);
    store_close(s);
    rm_dir(dir);
}

static const char *crash_at;

static void crash_hook(const char *point)
{
    if (strcmp(point, crash_at) == 0)
        _exit(42);
}

/* Runs one delivery in a child that dies at point; returns after it died.
 * opt: the store's options (NULL: the defaults). */
static void deliver_and_crash(const char *dir, const struct store_options *opt, const char *point,
                              const char *body, const char *dedupe)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        crash_at = point;
        store_set_fault_hook(crash_hook);
        struct buf err = BUF_INIT;
        struct store *c = store_open_dir(dir, opt, &err);
        if (c == NULL)
            fail_msg("%s", buf_cstr(&err));
        put(c, ALICE, NULL, body, dedupe, 0, 0, NULL);
        _exit(0); /* not reached */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
}

static void test_crash_between_blob_and_commit(void **state)
{
    char *dir = make_dir();
    deliver_and_crash(dir, NULL, "blob-synced", "lost before commit\r\n", "Q7");
    struct store *s = dir_store(dir);
    struct buf err = BUF_INIT;
    struct store_mailbox mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.messages, 0); /* no message without ... */
    store_mailbox_free(&mb);
    struct store_blob_stats st;
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, 0);     /* ... and no dangling reference */
    assert_true(st.segment_bytes > 0); /* the orphaned body */
    assert_int_equal(store_gc(s, &err), 0);
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.segment_bytes, 0); /* collected */
    /* The redelivery (the spool entry is still there) is not a duplicate. */
    uint32_t uid;
    assert_int_equal(put(s, ALICE, NULL, "lost before commit\r\n", "Q7", 0, 0, &uid), STORE_OK);
    assert_int_equal(uid, 1);
    buf_free(&err);
    store_close(s);
    rm_dir(dir);
}

static void test_crash_after_commit(void **state)
{
    char *dir = make_dir();
    deliver_and_crash(dir, NULL, "committed", "kept\r\n", "Q8");
    struct store *s = dir_store(dir);
    struct buf err = BUF_INIT;
    struct buf out = BUF_INIT;
    assert_int_equal(store_message_read(s, ALICE, "INBOX", 1, &out, &err), 0);
    assert_string_equal(out.data, "kept\r\n");
    /* The mta redelivers (spool not yet updated): detected, not duplicated. */
    assert_int_equal(put(s, ALICE, NULL, "kept\r\n", "Q8", 0, 0, NULL), STORE_DUPLICATE);
    struct store_mailbox mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.messages, 1);
    store_mailbox_free(&mb);
    buf_free(&out);
    buf_free(&err);
    store_close(s);
    rm_dir(dir);
}

/* A synced store writes a commit's WAL frames at once (sq_vfs.c): a batch whose
 * frames pass one write's limit (SQLite's unix VFS writes at most 128 KiB a call),
 * commits one after the other seen by a second handle whose cache is older, and
 * everything still there after a crash right after the commit. */
static void test_wal_gathered_writes(void **state)
{
    (void)state;
    static const struct store_options big_inline = {.segment_size = 64ull << 20,
                                                    .fsync = true,
                                                    .mailbox_name_max = STORE_MAILBOX_NAME_MAX,
                                                    .mailbox_depth_max = STORE_MAILBOX_DEPTH_MAX,
                                                    .keywords_max = STORE_KEYWORDS_MAX,
                                                    .inline_max = 1 << 20};
    char *dir = make_dir();
    struct buf err = BUF_INIT;
    struct store *w = store_open_dir(dir, &big_inline, &err);
    struct store *r = store_open_dir(dir, &big_inline, &err);
    if (w == NULL || r == NULL)
        fail_msg("%s", buf_cstr(&err));
    /* one batch of 100 distinct 4 KiB bodies in their rows: ~400 KiB of frames */
    enum { N = 100 };
    char *bodies[N];
    struct store_target t[N];
    struct store_delivery d[N];
    for (int i = 0; i < N; i++) {
        struct buf b = BUF_INIT;
        buf_printf(&b, "Subject: %d\r\n\r\n", i);
        while (b.len < 4096)
            buf_printf(&b, "body %d line %zu\r\n", i, b.len);
        bodies[i] = xstrdup(buf_cstr(&b));
        buf_free(&b);
        t[i] = (struct store_target){.owner = ALICE};
        d[i] = (struct store_delivery){
            .data = slice_from_cstr(bodies[i]), .targets = &t[i], .n_targets = 1};
    }
    struct store_mailbox mb = get_mb(r, ALICE, "INBOX"); /* r reads before the batch */
    assert_int_equal(mb.messages, 0);
    store_mailbox_free(&mb);
    assert_int_equal(store_deliver(w, d, N, &err), 0);
    /* then one-message commits, each seen by r at once */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(put(w, ALICE, NULL, bodies[i % N], NULL, 0, 0, NULL), STORE_OK);
        mb = get_mb(r, ALICE, "INBOX");
        assert_int_equal(mb.messages, N + i + 1);
        store_mailbox_free(&mb);
    }
    struct buf out = BUF_INIT;
    assert_int_equal(store_message_read(r, ALICE, "INBOX", 57, &out, &err), 0);
    assert_string_equal(out.data, bodies[56]);
    store_close(r);
    store_close(w);
    /* a crash right after a commit: the commit is in the WAL file */
    deliver_and_crash(dir, &big_inline, "committed", bodies[3], NULL);
    r = store_open_dir(dir, &big_inline, &err);
    mb = get_mb(r, ALICE, "INBOX");
    assert_int_equal(mb.messages, N + 21);
    store_mailbox_free(&mb);
    buf_reset(&out);
    assert_int_equal(store_message_read(r, ALICE, "INBOX", N + 21, &out, &err), 0);
    assert_string_equal(out.data, bodies[3]);
    store_close(r);
    for (int i = 0; i < N; i++)
        free(bodies[i]);
    buf_free(&out);
    buf_free(&err);
    rm_dir(dir);
}

static off_t file_size(const char *dir, const char *name)
{
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/%s", dir, name);
    struct stat st;
    off_t size = stat(p.data, &st) == 0 ? st.st_size : -1;
    buf_free(&p);
    return size;
}

/* A handle with store_checkpoint_deferred leaves the log in the WAL however long
 * it gets, until store_checkpoint copies it into the database; a plain handle's
 * commits copy it themselves past ~1,000 pages. */
static void test_checkpoint_deferred(void **state)
{
    (void)state;
    for (int deferred = 0; deferred < 2; deferred++) {
        char *dir = make_dir();
        struct store *s = dir_store(dir);
        if (deferred)
            store_checkpoint_deferred(s);
        struct buf err = BUF_INIT;
        assert_int_equal(store_checkpoint(s, &err), 0); /* nothing to do yet */
        off_t db0 = file_size(dir, "store.db");
        char body[64];
        for (int i = 0; i < 300; i++) { /* ~10 pages a commit */
            snprintf(body, sizeof(body), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
            assert_int_equal(put(s, ALICE, NULL, body, NULL, 0, 0, NULL), STORE_OK);
        }
        off_t db1 = file_size(dir, "store.db");
        assert_int_equal(store_checkpoint(s, &err), 0);
        off_t db2 = file_size(dir, "store.db");
        if (deferred) {
            assert_true(db1 == db0); /* no checkpoint inside the commits */
            assert_true(db2 > db1);  /* the one asked for */
        } else {
            assert_true(db1 > db0);
        }
        struct store_mailbox mb = get_mb(s, ALICE, "INBOX");
        assert_int_equal(mb.messages, 300);
        store_mailbox_free(&mb);
        buf_free(&err);
        store_close(s);
        rm_dir(dir);
    }
}

/* Bodies up to inline_max live in their blobs row: no segment byte, no segment sync,
 * still one copy for every message that has them, read back whole, durable at the
 * commit and gone with a crash before it, collected when unreferenced. */
static const struct store_options inline_opt = {.segment_size = 64ull << 20,
                                                .fsync = true,
                                                .mailbox_name_max = STORE_MAILBOX_NAME_MAX,
                                                .mailbox_depth_max = STORE_MAILBOX_DEPTH_MAX,
                                                .keywords_max = STORE_KEYWORDS_MAX,
                                                .inline_max = 64};

static struct store *inline_store(const char *dir)
{
    struct buf err = BUF_INIT;
    struct store *s = store_open_dir(dir, &inline_opt, &err);
    if (s == NULL)
        fail_msg("%s", buf_cstr(&err));
    buf_free(&err);
    return s;
}

static void test_inline_bodies(void **state)
{
    char *dir = make_dir();
    deliver_and_crash(dir, &inline_opt, "blob-synced", "lost before commit\r\n", NULL);
    deliver_and_crash(dir, &inline_opt, "committed", "kept\r\n", NULL);
    struct store *s = inline_store(dir);
    struct buf err = BUF_INIT, out = BUF_INIT;
    struct store_blob_stats st;
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, 1); /* the committed one only */
    assert_int_equal(st.segment_bytes, 0);
    assert_int_equal(store_message_read(s, ALICE, "INBOX", 1, &out, &err), 0);
    assert_string_equal(out.data, "kept\r\n");
    /* a small body twice and to two accounts: one row; a large one: in a segment */
    char big[200];
    memset(big, 'b', sizeof(big) - 3);
    memcpy(big + sizeof(big) - 3, "\r\n", 3);
    assert_int_equal(put(s, ALICE, NULL, "small\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(put(s, BOB, NULL, "small\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(put(s, BOB, NULL, big, NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, 3);
    assert_int_equal(st.segment_bytes, sizeof(big) - 1 + 48);
    assert_int_equal(store_message_read(s, BOB, "INBOX", 1, &out, &err), 0);
    assert_string_equal(out.data, "small\r\n");
    assert_int_equal(store_message_read(s, BOB, "INBOX", 2, &out, &err), 0);
    assert_string_equal(out.data, big);
    /* unreferenced: gone from the table with the row that held it */
    uint32_t uid = 1;
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &uid, 1, &err), 0);
    store_close(s);
    struct store_options o = inline_opt;
    o.expunge_hold = 0;
    s = store_open_dir(dir, &o, &err);
    assert_non_null(s);
    assert_int_equal(store_gc(s, &err), 0);
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, 2);
    assert_int_equal(store_message_read(s, ALICE, "INBOX", 2, &out, &err), 0);
    assert_string_equal(out.data, "small\r\n");
    buf_free(&out);
    buf_free(&err);
    store_close(s);
    rm_dir(dir);
}

/* Schema 18: the bodies kept in the database are rows of blob_bodies, not cells of
 * blobs (whose lookups read every overflowing cell they pass); a store of 17 moves
 * them, and a body row goes with its blobs row. */
static void test_blob_rows_migrate(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct store *s = inline_store(dir);
    struct buf err = BUF_INIT, out = BUF_INIT;
    assert_int_equal(put(s, ALICE, NULL, "one\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(put(s, ALICE, NULL, "two\r\n", NULL, 0, 0, NULL), STORE_OK);
    store_close(s);
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM blob_bodies"), 2);
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM blobs WHERE body IS NOT NULL"), 0);
    /* back to 17: the bodies in blobs.body */
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/store.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, UNDO_DUPES UNDO_BLOB_ROWS "PRAGMA user_version = 17;", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    buf_free(&path);
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM blobs WHERE body IS NOT NULL"), 2);
    s = inline_store(dir);
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM blob_bodies"), 2);
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM blobs WHERE body IS NOT NULL"), 0);
    assert_int_equal(store_message_read(s, ALICE, "INBOX", 1, &out, &err), 0);
    assert_string_equal(out.data, "one\r\n");
    assert_int_equal(store_message_read(s, ALICE, "INBOX", 2, &out, &err), 0);
    assert_string_equal(out.data, "two\r\n");
    /* a body stored after the step, and one collected with its blobs row */
    assert_int_equal(put(s, ALICE, NULL, "three\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(store_message_read(s, ALICE, "INBOX", 3, &out, &err), 0);
    assert_string_equal(out.data, "three\r\n");
    uint32_t uid = 1;
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &uid, 1, &err), 0);
    store_close(s);
    struct store_options o = inline_opt;
    o.expunge_hold = 0;
    s = store_open_dir(dir, &o, &err);
    assert_non_null(s);
    assert_int_equal(store_gc(s, &err), 0);
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM blob_bodies"), 2);
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM blobs b JOIN blob_bodies bb"
                                  " ON bb.id = b.offset WHERE b.segment < 0"),
                     2);
    assert_int_equal(store_message_read(s, ALICE, "INBOX", 2, &out, &err), 0);
    assert_string_equal(out.data, "two\r\n");
    buf_free(&out);
    buf_free(&err);
    store_close(s);
    rm_dir(dir);
}

static void test_gc_keeps_live_bodies(void **state)
{
    char *dir = make_dir();
    struct store_options o = {.segment_size = 4096,
                              .fsync = false,
                              .mailbox_name_max = 1024,
                              .mailbox_depth_max = 32,
                              .keywords_max = 64};
    struct buf err = BUF_INIT;
    struct store *s = store_open_dir(dir, &o, &err);
    assert_non_null(s);
    char body[1200];
    for (int i = 0; i < 20; i++) {
        memset(body, 'a' + i % 26, sizeof(body) - 1);
        body[sizeof(body) - 1] = '\0';
        assert_int_equal(put(s, ALICE, NULL, body, NULL, 0, 0, NULL), STORE_OK);
    }
    struct store_blob_stats st;
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_true(st.segments > 3);
    uint32_t odd[10];
    for (int i = 0; i < 10; i++)
        odd[i] = (uint32_t)(2 * i + 1);
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", odd, 10, &err), 0);
    assert_int_equal(store_gc(s, &err), 0);
    assert_int_equal(store_blob_stats(s, &st, &err), 0);
    assert_int_equal(st.blobs, 10);
    assert_true(st.segment_bytes <= 2 * 10 * (sizeof(body) + 48));
    struct buf out = BUF_INIT;
    for (uint32_t uid = 2; uid <= 20; uid += 2) {
        assert_int_equal(store_message_read(s, ALICE, "INBOX", uid, &out, &err), 0);
        assert_int_equal(out.len, sizeof(body) - 1);
        assert_int_equal(out.data[0], 'a' + (int)(uid - 1) % 26);
    }
    buf_free(&out);
    buf_free(&err);
    store_close(s);
    rm_dir(dir);
}

/* Schema 19: a user's shares are found by identifier through an index, not by a scan of
 * every ACL row (the JMAP session state asks for them on every request). */
static void test_acl_identifier_index(void **state)
{
    (void)state;
    char *dir = make_dir();
    store_close(inline_store(dir));
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/store.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT mailbox_id, rights FROM acl"
                                        " WHERE identifier IN ('bob', 'anyone', '-bob', '-anyone')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    bool indexed = false;
    while (sqlite3_step(st) == SQLITE_ROW)
        indexed |= strstr((const char *)sqlite3_column_text(st, 3), "acl_identifier") != NULL;
    assert_true(indexed);
    sqlite3_finalize(st);
    sqlite3_close(db);
    buf_free(&path);
    rm_dir(dir);
}

/* Effective rights (negative identifiers), the shares of a user, and COPY into another owner's
 * mailbox. */
static void test_acl_rights_and_shares(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT, rights = BUF_INIT;
    assert_int_equal(store_mailbox_create(s, ALICE, "Team", NULL, &err), 0);
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News", NULL, &err), 0);
    assert_int_equal(store_acl_rights(s, ALICE, "Team", ALICE, &rights, &err), 0);
    assert_string_equal(buf_cstr(&rights), "lrswipkxtea");
    assert_int_equal(store_acl_rights(s, ALICE, "Team", BOB, &rights, &err), 0);
    assert_string_equal(buf_cstr(&rights), "");
    assert_int_equal(store_acl_rights(s, ALICE, "Nothing", BOB, &rights, &err), 1);
    assert_int_equal(store_acl_set(s, ALICE, "Team", "anyone", "lr", &err), 0);
    assert_int_equal(store_acl_set(s, ALICE, "Team", BOB, "wi", &err), 0);
    assert_int_equal(store_acl_set(s, ALICE, "Team", "-" BOB, "r", &err), 0);
    assert_int_equal(store_acl_rights(s, ALICE, "Team", BOB, &rights, &err), 0);
    assert_string_equal(buf_cstr(&rights), "lwi");
    assert_int_equal(store_acl_set(s, STORE_PUBLIC_OWNER, "News", "anyone", "l", &err), 0);
    assert_int_equal(store_acl_set(s, STORE_PUBLIC_OWNER, "News", "-anyone", "l", &err), 0);
    struct store_acl_share *sh;
    size_t n;
    assert_int_equal(store_acl_shared(s, BOB, &sh, &n, &err), 0);
    assert_int_equal(n, 1); /* News: every right taken away again */
    assert_string_equal(sh[0].owner, ALICE);
    assert_string_equal(sh[0].mailbox, "Team");
    assert_string_equal(sh[0].rights, "lwi");
    store_acl_shared_free(sh, n);
    assert_int_equal(store_acl_shared(s, ALICE, &sh, &n, &err), 0);
    assert_int_equal(n, 0); /* her own mailboxes are not shares */
    store_acl_shared_free(sh, n);
    /* COPY from alice's Team into bob's INBOX: bob's quota pays. */
    struct store_target t = {.owner = ALICE, .mailbox = "Team", .must_exist = true};
    struct store_delivery d = {.data = SLICE_LIT("hello\r\n"), .targets = &t, .n_targets = 1};
    assert_int_equal(store_deliver(s, &d, 1, &err), 0);
    assert_int_equal(t.status, STORE_OK);
    assert_int_equal(store_mailbox_create(s, BOB, "Kept", NULL, &err), 0);
    uint32_t uid = t.uid, new_uid = 0;
    assert_int_equal(
        store_message_copy_to(s, ALICE, "Team", &uid, 1, BOB, "Kept", false, &new_uid, &err), 0);
    assert_int_equal(new_uid, 1);
    uint64_t bytes, msgs;
    assert_int_equal(store_quota_usage(s, BOB, &bytes, &msgs, &err), 0);
    assert_int_equal(msgs, 1);
    assert_int_equal(bytes, 7);
    buf_free(&rights);
    buf_free(&err);
    store_close(s);
}

/* The ACL of a list, "id=rights id=rights" in identifier order. */
static char *acl_text(struct store *s, const char *owner, const char *mailbox)
{
    struct buf err = BUF_INIT, out = BUF_INIT;
    struct store_acl_entry *acl;
    size_t n;
    assert_int_equal(store_acl_list(s, owner, mailbox, &acl, &n, &err), 0);
    for (size_t i = 0; i < n; i++)
        buf_printf(&out, "%s%s=%s", i ? " " : "", acl[i].identifier, acl[i].rights);
    store_acl_list_free(acl, n);
    buf_free(&err);
    return buf_steal(&out, NULL);
}

/* A new mailbox starts with a copy of its nearest existing ancestor's ACL; a
 * top-level one with none; a rename keeps the mailbox's own. */
static void test_acl_inherited_by_new_mailboxes(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT, rights = BUF_INIT;
    assert_int_equal(store_mailbox_create(s, ALICE, "Team", NULL, &err), 0);
    assert_int_equal(store_acl_set(s, ALICE, "Team", BOB, "lrk", &err), 0);
    assert_int_equal(store_acl_set(s, ALICE, "Team", "-anyone", "w", &err), 0);
    assert_int_equal(store_mailbox_create(s, ALICE, "Team/Plans", NULL, &err), 0);
    char *t = acl_text(s, ALICE, "Team/Plans");
    assert_string_equal(t, "-anyone=w " BOB "=lrk");
    free(t);
    assert_int_equal(store_acl_rights(s, ALICE, "Team/Plans", BOB, &rights, &err), 0);
    assert_string_equal(buf_cstr(&rights), "lrk");
    assert_int_equal(store_acl_rights(s, ALICE, "Team/Plans", ALICE, &rights, &err), 0);
    assert_string_equal(buf_cstr(&rights), "lrswipkxtea"); /* the owner: unchanged */
    /* a copy: the parent's later changes are not the child's */
    assert_int_equal(store_acl_set(s, ALICE, "Team", BOB, "", &err), 0);
    t = acl_text(s, ALICE, "Team/Plans");
    assert_string_equal(t, "-anyone=w " BOB "=lrk");
    free(t);
    /* the nearest existing ancestor when parents are missing */
    assert_int_equal(store_mailbox_create(s, ALICE, "Team/Plans/a/b", NULL, &err), 0);
    t = acl_text(s, ALICE, "Team/Plans/a/b");
    assert_string_equal(t, "-anyone=w " BOB "=lrk");
    free(t);
    /* the top level: nothing, and another owner's same names do not count */
    assert_int_equal(store_mailbox_create(s, ALICE, "Top", NULL, &err), 0);
    assert_int_equal(store_mailbox_create(s, BOB, "Team", NULL, &err), 0);
    assert_int_equal(store_mailbox_create(s, BOB, "Team/Mine", NULL, &err), 0);
    t = acl_text(s, ALICE, "Top");
    assert_string_equal(t, "");
    free(t);
    t = acl_text(s, BOB, "Team/Mine");
    assert_string_equal(t, "");
    free(t);
    /* a rename keeps the mailbox's ACL: Top moved into Team/Plans stays unshared */
    assert_int_equal(store_mailbox_rename(s, ALICE, "Top", "Team/Plans/Top", &err), 0);
    t = acl_text(s, ALICE, "Team/Plans/Top");
    assert_string_equal(t, "");
    free(t);
    /* an import's new folder (store_mailbox_set_uids) and a public subfolder inherit too */
    assert_int_equal(store_mailbox_set_uids(s, ALICE, "Team/Old", NULL, 77, 1, &err), 0);
    t = acl_text(s, ALICE, "Team/Old");
    assert_string_equal(t, "-anyone=w");
    free(t);
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News", NULL, &err), 0);
    assert_int_equal(store_acl_set(s, STORE_PUBLIC_OWNER, "News", "anyone", "lrp", &err), 0);
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News/dev", NULL, &err), 0);
    assert_int_equal(store_acl_rights(s, STORE_PUBLIC_OWNER, "News/dev", BOB, &rights, &err), 0);
    assert_string_equal(buf_cstr(&rights), "lrp");
    /* deleted and made again: the parent's ACL of now */
    assert_int_equal(store_mailbox_delete(s, ALICE, "Team/Plans/a/b", &err), 0);
    assert_int_equal(store_acl_set(s, ALICE, "Team/Plans", BOB, "lr", &err), 0);
    assert_int_equal(store_mailbox_create(s, ALICE, "Team/Plans/a/b", NULL, &err), 0);
    t = acl_text(s, ALICE, "Team/Plans/a/b");
    assert_string_equal(t, "-anyone=w " BOB "=lr");
    free(t);
    buf_free(&rights);
    buf_free(&err);
    store_close(s);
}

static void test_names_and_acl(void **state)
{
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    const char *bad[] = {"", "/a", "a/", "a//b", "a*", "a%b", "a\tb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_mailbox_create(s, ALICE, bad[i], NULL, &err), -1);
    assert_int_equal(store_mailbox_create(s, ALICE, "inbox/Sub", NULL, &err), 0);
    struct store_mailbox mb = get_mb(s, ALICE, "INBOX/Sub");
    store_mailbox_free(&mb);
    assert_int_equal(store_mailbox_create(s, ALICE, "Inbox", NULL, &err), -1); /* exists */
    assert_int_equal(store_mailbox_delete(s, ALICE, "inbox", &err), -1);
    /* +detail into a folder that does not exist lands in INBOX. */
    struct store_target t = {.owner = ALICE, .mailbox = "nosuch"};
    struct store_delivery d = {.data = SLICE_LIT("x\r\n"), .targets = &t, .n_targets = 1};
    assert_int_equal(store_deliver(s, &d, 1, &err), 0);
    assert_string_equal(t.stored_in, "INBOX");
    /* IMAP APPEND into a missing mailbox: refused (TRYCREATE), nothing stored. */
    struct store_target ta = {.owner = ALICE, .mailbox = "nosuch", .must_exist = true};
    struct store_delivery da = {.data = SLICE_LIT("y\r\n"),
                                .flags = STORE_FLAG_SEEN,
                                .keywords = "$Sent",
                                .targets = &ta,
                                .n_targets = 1};
    assert_int_equal(store_deliver(s, &da, 1, &err), 0);
    assert_int_equal(ta.status, STORE_NO_MAILBOX);
    ta.mailbox = "Sent";
    assert_int_equal(store_deliver(s, &da, 1, &err), 0);
    assert_int_equal(ta.status, STORE_OK);
    struct store_message *ml;
    size_t nl;
    assert_int_equal(store_message_list(s, ALICE, "Sent", 1, &ml, &nl, &err), 0);
    assert_int_equal(nl, 1);
    assert_int_equal(ml[0].flags, STORE_FLAG_SEEN);
    assert_string_equal(ml[0].keywords, "$Sent");
    /* ENVELOPE and BODYSTRUCTURE were computed at delivery (APPEND) */
    char *env = envelope_of(&ml[0]);
    assert_string_equal(env, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    free(env);
    store_message_list_free(ml, nl);
    /* the cache is bytes the store never looks into */
    assert_int_equal(store_message_set_cache(s, ALICE, "Sent", 1, SLICE_LIT("(NIL)\0x"), &err), 0);
    assert_int_equal(store_message_list(s, ALICE, "Sent", 1, &ml, &nl, &err), 0);
    assert_int_equal(ml[0].structure_len, 7);
    assert_memory_equal(ml[0].structure, "(NIL)\0x", 7);
    store_message_list_free(ml, nl);
    da.keywords = "bad\nkeyword";
    assert_int_equal(store_deliver(s, &da, 1, &err), -1);
    /* Public folders and ACLs. */
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "Announcements", NULL, &err), 0);
    assert_int_equal(store_acl_set(s, STORE_PUBLIC_OWNER, "Announcements", "anyone", "rl", &err),
                     0);
    assert_int_equal(store_acl_set(s, STORE_PUBLIC_OWNER, "Announcements", BOB, "ilrswa", &err), 0);
    assert_int_equal(store_acl_set(s, STORE_PUBLIC_OWNER, "Announcements", BOB, "lz", &err), -1);
    struct buf rights = BUF_INIT;
    assert_int_equal(store_acl_get(s, STORE_PUBLIC_OWNER, "Announcements", BOB, &rights, &err), 0);
    assert_string_equal(rights.data, "lrswia");
    struct store_acl_entry *acl;
    size_t n;
    assert_int_equal(store_acl_list(s, STORE_PUBLIC_OWNER, "Announcements", &acl, &n, &err), 0);
    assert_int_equal(n, 2);
    store_acl_list_free(acl, n);
    assert_int_equal(store_acl_set(s, STORE_PUBLIC_OWNER, "Announcements", BOB, "", &err), 0);
    assert_int_equal(store_acl_get(s, STORE_PUBLIC_OWNER, "Announcements", BOB, &rights, &err), 0);
    assert_string_equal(rights.data, "");
    /* Subscriptions may name folders that do not exist. */
    char **names;
    assert_int_equal(store_subscribe(s, ALICE, "Ghost", true, &err), 0);
    assert_int_equal(store_subscribe(s, ALICE, "Sent", true, &err), 0);
    assert_int_equal(store_subscriptions(s, ALICE, &names, &n, &err), 0);
    assert_int_equal(n, 2);
    store_names_free(names, n);
    mb = get_mb(s, ALICE, "Sent");
    assert_true(mb.subscribed);
    store_mailbox_free(&mb);
    buf_free(&rights);
    buf_free(&err);
    store_close(s);
}

/* Imports keep the source's UIDVALIDITY and UIDs; a mailbox with messages is never renumbered. */
static void test_import_keeps_uids(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    assert_int_equal(store_mailbox_set_uids(s, ALICE, "Old/Work", NULL, 1234567, 10, &err), 0);
    struct store_mailbox mb;
    assert_int_equal(store_mailbox_get(s, ALICE, "Old/Work", &mb, &err), 0);
    assert_int_equal(mb.uidvalidity, 1234567);
    assert_int_equal(mb.uidnext, 10);
    store_mailbox_free(&mb);
    struct store_target t = {
        .owner = ALICE, .mailbox = "Old/Work", .must_exist = true, .want_uid = 42};
    struct store_delivery d = {.data = slice_from_cstr("Subject: a\r\n\r\nx\r\n"),
                               .flags = STORE_FLAG_SEEN,
                               .keywords = "$Junk",
                               .targets = &t,
                               .n_targets = 1};
    assert_int_equal(store_deliver(s, &d, 1, &err), 0);
    assert_int_equal(t.status, STORE_OK);
    assert_int_equal(t.uid, 42);
    assert_int_equal(t.uidvalidity, 1234567);
    /* below UIDNEXT: refused, nothing stored */
    t.want_uid = 41;
    assert_int_equal(store_deliver(s, &d, 1, &err), -1);
    buf_reset(&err);
    t.want_uid = 0;
    assert_int_equal(store_deliver(s, &d, 1, &err), 0);
    assert_int_equal(t.uid, 43);
    /* UIDNEXT only grows; another UIDVALIDITY is refused once messages exist */
    assert_int_equal(store_mailbox_set_uids(s, ALICE, "Old/Work", NULL, 1234567, 5, &err), 0);
    assert_int_equal(store_mailbox_get(s, ALICE, "Old/Work", &mb, &err), 0);
    assert_int_equal(mb.uidnext, 44);
    assert_int_equal(mb.messages, 2);
    store_mailbox_free(&mb);
    assert_int_equal(store_mailbox_set_uids(s, ALICE, "Old/Work", NULL, 99, 0, &err), -1);
    buf_reset(&err);
    /* the lazily created INBOX takes the source's UIDVALIDITY while empty */
    assert_int_equal(store_mailbox_set_uids(s, ALICE, "INBOX", NULL, 777, 3, &err), 0);
    assert_int_equal(store_mailbox_get(s, ALICE, "INBOX", &mb, &err), 0);
    assert_int_equal(mb.uidvalidity, 777);
    store_mailbox_free(&mb);
    buf_free(&err);
    store_close(s);
}

static uint64_t state_of(struct store *s, const char *owner)
{
    uint64_t v = 0;
    struct buf err = BUF_INIT;
    if (store_account_state(s, owner, &v, &err) != 0)
        fail_msg("account state: %s", buf_cstr(&err));
    buf_free(&err);
    return v;
}

/* The account-wide change state grows with every change a client sees, in
 * any mailbox of the account, and only then (issue 12: JMAP state, push). */
/* Public folders anchoring newsgroup hierarchies (NNTP). */
static void test_newsgroup_anchors(void **state)
{
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News", NULL, &err), 0);
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "Other", NULL, &err), 0);
    assert_int_equal(store_newsgroup_anchor_set(s, "Missing", "comp.x", &err), -1);
    buf_reset(&err);
    assert_int_equal(store_newsgroup_anchor_set(s, "News", "comp..x", &err), -1);
    buf_reset(&err);
    assert_int_equal(store_newsgroup_anchor_set(s, "News", "comp.wharf", &err), 0);
    assert_int_equal(store_newsgroup_anchor_set(s, "Other", "comp.wharf", &err), -1);
    buf_reset(&err);
    struct store_newsgroup_anchor *an;
    size_t n;
    assert_int_equal(store_newsgroup_anchors(s, &an, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(an[0].mailbox, "News");
    assert_string_equal(an[0].hierarchy, "comp.wharf");
    store_newsgroup_anchors_free(an, n);
    assert_int_equal(store_mailbox_delete(s, STORE_PUBLIC_OWNER, "News", &err), 0);
    assert_int_equal(store_newsgroup_anchors(s, &an, &n, &err), 0);
    assert_int_equal(n, 0); /* a deleted folder anchors nothing */
    store_newsgroup_anchors_free(an, n);
    assert_int_equal(store_newsgroup_anchor_set(s, "Other", "comp.wharf", &err), 0);
    assert_int_equal(store_newsgroup_anchor_set(s, "Other", "", &err), 0);
    assert_int_equal(store_newsgroup_anchors(s, &an, &n, &err), 0);
    assert_int_equal(n, 0);
    store_newsgroup_anchors_free(an, n);
    buf_free(&err);
    store_close(s);
}

static void test_account_state(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    assert_int_equal(state_of(s, ALICE), 0);
    uint32_t uid;
    assert_int_equal(put(s, ALICE, NULL, "Subject: x\r\n\r\nbody\r\n", NULL, 0, 0, &uid), STORE_OK);
    uint64_t v = state_of(s, ALICE);
    assert_true(v > 0);
    assert_int_equal(state_of(s, BOB), 0);
    /* not changes: a look, a \Recent claim, the caches */
    struct store_mailbox *l;
    size_t n;
    assert_int_equal(store_mailbox_list(s, ALICE, &l, &n, &err), 0);
    store_mailbox_list_free(l, n);
    uint32_t first;
    assert_int_equal(store_mailbox_recent_claim(s, ALICE, "INBOX", uid, true, &first, &err), 0);
    assert_int_equal(store_message_set_cache(s, ALICE, "INBOX", uid, SLICE_LIT("bs"), &err), 0);
    struct slice rec = slice_from_cstr("record");
    assert_int_equal(store_message_set_records(s, ALICE, "INBOX", &uid, &rec, 1, &err), 0);
    assert_int_equal(state_of(s, ALICE), v);
    /* a flag change that changes nothing is not a change either */
    assert_int_equal(store_message_flags(s, ALICE, "INBOX", &uid, 1, STORE_FLAGS_REMOVE,
                                         STORE_FLAG_SEEN, NULL, 0, NULL, &err),
                     0);
    assert_int_equal(state_of(s, ALICE), v);
    /* each kind of change moves it on */
    assert_int_equal(store_message_flags(s, ALICE, "INBOX", &uid, 1, STORE_FLAGS_ADD,
                                         STORE_FLAG_SEEN, NULL, 0, NULL, &err),
                     0);
    assert_true(state_of(s, ALICE) > v);
    v = state_of(s, ALICE);
    uint32_t copied;
    assert_int_equal(
        store_message_copy(s, ALICE, "INBOX", &uid, 1, "Archive", false, &copied, &err), 0);
    assert_true(state_of(s, ALICE) > v);
    v = state_of(s, ALICE);
    assert_int_equal(store_message_expunge(s, ALICE, "Archive", &copied, 1, &err), 0);
    assert_true(state_of(s, ALICE) > v);
    v = state_of(s, ALICE);
    assert_int_equal(store_mailbox_create(s, ALICE, "Lists", NULL, &err), 0);
    assert_true(state_of(s, ALICE) > v);
    v = state_of(s, ALICE);
    assert_int_equal(store_mailbox_rename(s, ALICE, "Lists", "Lists2", &err), 0);
    assert_true(state_of(s, ALICE) > v);
    v = state_of(s, ALICE);
    assert_int_equal(store_subscribe(s, ALICE, "Lists2", true, &err), 0);
    assert_true(state_of(s, ALICE) > v);
    v = state_of(s, ALICE);
    assert_int_equal(store_mailbox_delete(s, ALICE, "Lists2", &err), 0);
    assert_true(state_of(s, ALICE) > v);
    v = state_of(s, ALICE);
    /* another account's changes leave it alone */
    assert_int_equal(put(s, BOB, NULL, "Subject: y\r\n\r\nbody\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(state_of(s, ALICE), v);
    assert_true(state_of(s, BOB) > 0);
    /* a delivery refused (over quota) changed nothing */
    assert_int_equal(put(s, ALICE, NULL, "Subject: z\r\n\r\nbody\r\n", NULL, 1, 0, NULL),
                     STORE_OVER_QUOTA);
    assert_int_equal(state_of(s, ALICE), v);
    buf_free(&err);
    store_close(s);
}

/* Version 4 -> 5: an existing account starts with a state, and it moves on. */
static void test_vacation(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    struct store_vacation v;
    assert_int_equal(store_vacation_get(s, ALICE, &v, &err), 0);
    assert_false(v.enabled);
    assert_null(v.subject);
    uint64_t before = state_of(s, ALICE);
    struct store_vacation w = {.enabled = true,
                               .has_to = true,
                               .to_date = 2000000000,
                               .subject = (char *)"Away",
                               .text_body = (char *)"back soon"};
    assert_int_equal(store_vacation_set(s, ALICE, &w, &err), 0);
    assert_true(state_of(s, ALICE) > before);
    assert_int_equal(store_vacation_get(s, ALICE, &v, &err), 0);
    assert_true(v.enabled && v.has_to && !v.has_from);
    assert_int_equal(v.to_date, 2000000000);
    assert_string_equal(v.subject, "Away");
    assert_string_equal(v.text_body, "back soon");
    assert_null(v.html_body);
    store_vacation_free(&v);
    /* one reply per sender per period */
    assert_int_equal(store_vacation_claim(s, ALICE, "bob@x.test", 1000, 100, &err), 1);
    assert_int_equal(store_vacation_claim(s, ALICE, "bob@x.test", 1050, 100, &err), 0);
    assert_int_equal(store_vacation_claim(s, ALICE, "carol@x.test", 1050, 100, &err), 1);
    assert_int_equal(store_vacation_claim(s, BOB, "bob@x.test", 1050, 100, &err), 1);
    assert_int_equal(store_vacation_claim(s, ALICE, "bob@x.test", 1100, 100, &err), 1);
    assert_int_equal(store_vacation_claim(s, ALICE, "bob@x.test", 1150, 100, &err), 0);
    /* a new response goes to everyone again */
    assert_int_equal(store_vacation_set(s, ALICE, &w, &err), 0);
    assert_int_equal(store_vacation_claim(s, ALICE, "bob@x.test", 1150, 100, &err), 1);
    assert_int_equal(store_vacation_claim(s, BOB, "bob@x.test", 1100, 100, &err), 0);
    buf_free(&err);
    store_close(s);
}

static void test_identities(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    struct store_identity *l;
    size_t n;
    assert_int_equal(store_identity_list(s, ALICE, 0, &l, &n, &err), 0);
    assert_int_equal(n, 0);
    uint64_t s0 = state_of(s, ALICE);
    struct store_identity a = {.email = (char *)ALICE, .name = (char *)"Alice", .bcc = NULL};
    assert_int_equal(store_identity_put(s, ALICE, &a, &err), 0);
    assert_true(a.id > 0);
    uint64_t s1 = state_of(s, ALICE);
    assert_true(s1 > s0);
    struct store_identity b = {.email = (char *)"sales@example.test",
                               .reply_to = (char *)"[{\"email\": \"x@y\"}]"};
    assert_int_equal(store_identity_put(s, ALICE, &b, &err), 0);
    assert_int_equal(store_identity_list(s, ALICE, 0, &l, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].name, "Alice");
    assert_string_equal(l[1].text_signature, "");
    assert_string_equal(l[1].reply_to, "[{\"email\": \"x@y\"}]");
    assert_null(l[1].bcc);
    store_identity_list_free(l, n);
    /* changed after s1: only b; then a renamed */
    assert_int_equal(store_identity_list(s, ALICE, s1, &l, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(l[0].id, b.id);
    store_identity_list_free(l, n);
    uint64_t s2 = state_of(s, ALICE);
    a.name = (char *)"A. Liddell";
    assert_int_equal(store_identity_put(s, ALICE, &a, &err), 0);
    assert_int_equal(store_identity_list(s, ALICE, s2, &l, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(l[0].name, "A. Liddell");
    assert_true(l[0].created_state <= s2 && l[0].state > s2);
    store_identity_list_free(l, n);
    /* another owner cannot touch it */
    assert_int_equal(store_identity_put(s, BOB, &a, &err), 1);
    assert_int_equal(store_identity_delete(s, BOB, a.id, &err), 1);
    assert_int_equal(store_identity_delete(s, ALICE, a.id, &err), 0);
    assert_int_equal(store_identity_delete(s, ALICE, a.id, &err), 1);
    int64_t *ids;
    uint64_t *states;
    assert_int_equal(store_identity_gone(s, ALICE, s2, &ids, &states, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], a.id);
    assert_true(states[0] > s2);
    free(ids);
    free(states);
    /* ids are never reused */
    struct store_identity c = {.email = (char *)ALICE};
    assert_int_equal(store_identity_put(s, ALICE, &c, &err), 0);
    assert_true(c.id > b.id);
    buf_free(&err);
    store_close(s);
}

static void test_account_state_migrate(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct store *s = dir_store(dir);
    assert_int_equal(put(s, ALICE, NULL, "Subject: x\r\n\r\nbody\r\n", NULL, 0, 0, NULL), STORE_OK);
    store_close(s);
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/store.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  UNDO_AFTER_13 UNDO_VERSION_13 UNDO_VERSION_12 UNDO_VERSION_11
                                      UNDO_VERSION_10 UNDO_VERSION_8 UNDO_VERSION_7
                                  "DROP TRIGGER state_mailbox_insert;"
                                  "DROP TRIGGER state_mailbox_update;"
                                  "DROP TRIGGER state_mailbox_delete;"
                                  "DROP TRIGGER state_subscribe;"
                                  "DROP TRIGGER state_unsubscribe;"
                                  "DROP TABLE account_state;"
                                  "DELETE FROM meta WHERE key = 'mailbox_id_next';"
                                  "DROP TRIGGER newsgroups_mailbox_delete;"
                                  "DROP TABLE newsgroups;"
                                  "ALTER TABLE blobs DROP COLUMN body;"
                                  "PRAGMA user_version = 4;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    buf_free(&path);
    s = dir_store(dir);
    uint64_t v = state_of(s, ALICE);
    assert_true(v > 0);
    assert_int_equal(put(s, ALICE, NULL, "Subject: y\r\n\r\nbody\r\n", NULL, 0, 0, NULL), STORE_OK);
    assert_true(state_of(s, ALICE) > v);
    store_close(s);
    rm_dir(dir);
}

/* A mailbox resolved once is addressed by its id, whatever its name becomes. */
/* A public folder's former names lead to it (its address was given under one), until a
 * folder takes the name again or it is deleted; another owner's renames keep none. */
static void test_public_former_names(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT, now = BUF_INIT;
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News", NULL, &err), 0);
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News/dev", NULL, &err), 0);
    assert_int_equal(store_public_folder_now(s, "News/dev", &now, &err), 0);
    assert_string_equal(buf_cstr(&now), "News/dev");
    assert_int_equal(store_public_folder_now(s, "News/none", &now, &err), 1);
    assert_int_equal(store_public_folder_now(s, "a//b", &now, &err), -1);
    /* the parent renamed: its child's old name leads to the child's new one */
    assert_int_equal(store_mailbox_rename(s, STORE_PUBLIC_OWNER, "News", "Talk", &err), 0);
    assert_int_equal(store_public_folder_now(s, "News/dev", &now, &err), 0);
    assert_string_equal(buf_cstr(&now), "Talk/dev");
    /* renamed twice: both former names lead to the name now */
    assert_int_equal(store_mailbox_rename(s, STORE_PUBLIC_OWNER, "Talk/dev", "Talk/devel", &err),
                     0);
    assert_int_equal(store_public_folder_now(s, "News/dev", &now, &err), 0);
    assert_string_equal(buf_cstr(&now), "Talk/devel");
    assert_int_equal(store_public_folder_now(s, "Talk/dev", &now, &err), 0);
    assert_string_equal(buf_cstr(&now), "Talk/devel");
    /* a folder created under a former name is that name's folder from then on */
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News", NULL, &err), 0);
    assert_int_equal(store_public_folder_now(s, "News", &now, &err), 0);
    assert_string_equal(buf_cstr(&now), "News");
    /* and a folder renamed back to its first name has it again */
    assert_int_equal(store_mailbox_rename(s, STORE_PUBLIC_OWNER, "Talk/devel", "Talk/dev", &err),
                     0);
    assert_int_equal(store_public_folder_now(s, "Talk/dev", &now, &err), 0);
    assert_string_equal(buf_cstr(&now), "Talk/dev");
    assert_int_equal(store_public_folder_now(s, "Talk/devel", &now, &err), 0);
    assert_string_equal(buf_cstr(&now), "Talk/dev");
    /* deleted: none of its names leads anywhere */
    assert_int_equal(store_mailbox_delete(s, STORE_PUBLIC_OWNER, "Talk/dev", &err), 0);
    assert_int_equal(store_public_folder_now(s, "News/dev", &now, &err), 1);
    assert_int_equal(store_public_folder_now(s, "Talk/devel", &now, &err), 1);
    /* an account's folder renamed leaves no public name behind */
    assert_int_equal(store_mailbox_create(s, ALICE, "Lists", NULL, &err), 0);
    assert_int_equal(store_mailbox_rename(s, ALICE, "Lists", "Lists2", &err), 0);
    assert_int_equal(store_public_folder_now(s, "Lists", &now, &err), 1);
    buf_free(&now);
    buf_free(&err);
    store_close(s);
}

static void test_mailbox_ids(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT, out = BUF_INIT;
    int64_t id = 0, id2 = 0;
    assert_int_equal(store_mailbox_create(s, ALICE, "Work", NULL, &err), 0);
    assert_int_equal(store_mailbox_resolve(s, ALICE, "Work", &id, &err), 0);
    assert_true(id > 0);
    assert_int_equal(store_mailbox_resolve(s, ALICE, "Nowhere", &id2, &err), 1);
    assert_int_equal(id2, 0);
    assert_int_equal(store_mailbox_resolve(s, ALICE, "a//b", &id2, &err), -1);
    assert_int_equal(store_mailbox_resolve(s, BOB, "Work", &id2, &err), 1);
    uint32_t uid;
    assert_int_equal(put(s, ALICE, "Work", "Subject: w\r\n\r\nbody\r\n", NULL, 0, 0, &uid),
                     STORE_OK);
    assert_int_equal(store_message_read_id(s, ALICE, id, uid, &out, &err), 0);
    assert_string_equal(buf_cstr(&out), "Subject: w\r\n\r\nbody\r\n");
    /* another owner cannot reach it by its id */
    struct store_message *l;
    size_t n;
    buf_reset(&err);
    assert_int_equal(store_message_list_id(s, BOB, id, 1, &l, &n, &err), -1);
    /* renamed: the id still reaches it, the old name no longer does */
    assert_int_equal(store_mailbox_rename(s, ALICE, "Work", "Old", &err), 0);
    assert_int_equal(store_message_list_id(s, ALICE, id, 1, &l, &n, &err), 0);
    assert_int_equal(n, 1);
    store_message_list_free(l, n);
    buf_reset(&err);
    assert_int_equal(store_message_list(s, ALICE, "Work", 1, &l, &n, &err), -1);
    /* deleted and created again: the old id is gone, the new mailbox has another */
    assert_int_equal(store_mailbox_delete(s, ALICE, "Old", &err), 0);
    assert_int_equal(store_mailbox_create(s, ALICE, "Old", NULL, &err), 0);
    assert_int_equal(store_mailbox_resolve(s, ALICE, "Old", &id2, &err), 0);
    assert_int_not_equal(id2, id);
    buf_reset(&err);
    assert_int_equal(store_message_expunge_id(s, ALICE, id, &uid, 1, &err), -1);
    assert_int_equal(store_message_list_id(s, ALICE, id2, 1, &l, &n, &err), 0);
    assert_int_equal(n, 0);
    store_message_list_free(l, n);
    /* the id of a mailbox is what store_mailbox_get reports */
    struct store_mailbox mb = get_mb(s, ALICE, "Old");
    assert_int_equal(mb.id, id2);
    store_mailbox_free(&mb);
    buf_free(&out);
    buf_free(&err);
    store_close(s);
}

/* A store_driver the build does not have is refused with a clear message. */
static void test_unknown_driver(void **state)
{
    (void)state;
    struct wharf_config cfg;
    config_init(&cfg);
    free(cfg.store_driver);
    cfg.store_driver = xstrdup("nosuch");
    struct buf err = BUF_INIT;
    assert_null(store_open(&cfg, &err));
    assert_non_null(strstr(buf_cstr(&err), "'nosuch' is not a store driver"));
    buf_free(&err);
    config_free(&cfg);
}

/* The outbound feed queue: entries and cursor move together, answered ones leave,
 * a retry counts up and waits, a deleted folder takes its entries along. */
static void test_feed_queue(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News", NULL, &err), 0);
    int64_t id;
    assert_int_equal(store_mailbox_resolve(s, STORE_PUBLIC_OWNER, "News", &id, &err), 0);
    uint32_t cur = 99;
    assert_int_equal(store_feed_cursor(s, "peer", id, &cur, &err), 0);
    assert_int_equal(cur, 0);
    struct store_feed_item in[3] = {{.msgid = "<a@x>", .mailbox_id = id, .uid = 1, .due = 5},
                                    {.msgid = "<b@x>", .mailbox_id = id, .uid = 2, .due = 5},
                                    {.msgid = "<a@x>", .mailbox_id = id, .uid = 3, .due = 5}};
    assert_int_equal(store_feed_enqueue(s, "peer", id, 3, in, 3, &err), 0);
    assert_int_equal(store_feed_cursor(s, "peer", id, &cur, &err), 0);
    assert_int_equal(cur, 3);
    struct store_feed_item *v;
    size_t n;
    uint64_t total;
    assert_int_equal(store_feed_pending(s, "peer", 10, &v, &n, &total, &err), 0);
    assert_int_equal(n, 2); /* one entry per message-id */
    assert_int_equal(total, 2);
    assert_string_equal(v[0].msgid, "<a@x>");
    assert_int_equal(v[0].uid, 1);
    store_feed_items_free(v, n);
    assert_int_equal(store_feed_pending(s, "other", 10, &v, &n, &total, &err), 0);
    assert_int_equal(n, 0);
    store_feed_items_free(v, n);
    int64_t since = -1;
    assert_int_equal(store_pull_since(s, "peer", &since, &err), 0);
    assert_int_equal(since, 0);
    assert_int_equal(store_pull_set(s, "peer", 1700000000, &err), 0);
    assert_int_equal(store_pull_set(s, "peer", 1700000100, &err), 0);
    assert_int_equal(store_pull_since(s, "peer", &since, &err), 0);
    assert_int_equal(since, 1700000100);
    assert_int_equal(store_feed_retry(s, "peer", "<a@x>", 1000, &err), 0);
    assert_int_equal(store_feed_pending(s, "peer", 10, &v, &n, NULL, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].msgid, "<b@x>"); /* the soonest due first */
    assert_int_equal(v[1].attempts, 1);
    assert_int_equal(v[1].due, 1000);
    char *done[] = {v[0].msgid};
    assert_int_equal(store_feed_done(s, "peer", done, 1, &err), 0);
    store_feed_items_free(v, n);
    assert_int_equal(store_feed_pending(s, "peer", 10, &v, &n, &total, &err), 0);
    assert_int_equal(total, 1);
    store_feed_items_free(v, n);
    assert_int_equal(store_mailbox_delete(s, STORE_PUBLIC_OWNER, "News", &err), 0);
    assert_int_equal(store_feed_pending(s, "peer", 10, &v, &n, &total, &err), 0);
    assert_int_equal(total, 0);
    store_feed_items_free(v, n);
    buf_free(&err);
    store_close(s);
}

static size_t msgid_hits(struct store *s, const char *owner, const char *msgid,
                         struct store_msgid_hit *first)
{
    struct buf err = BUF_INIT;
    struct store_msgid_hit *v;
    size_t n;
    assert_int_equal(store_msgid_find(s, owner, slice_from_cstr(msgid), &v, &n, &err), 0);
    if (n && first)
        *first = v[0];
    free(v);
    buf_free(&err);
    return n;
}

/* \Recent counts kept by triggers: new messages, a claim, an expunge. */
static void test_recent_count(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    for (int i = 0; i < 3; i++)
        assert_int_equal(put(s, ALICE, NULL, "Subject: r\r\n\r\nb\r\n", NULL, 0, 0, NULL),
                         STORE_OK);
    struct store_mailbox mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.recent, 3);
    store_mailbox_free(&mb);
    uint32_t first;
    assert_int_equal(store_mailbox_recent_claim(s, ALICE, "INBOX", 2, true, &first, &err), 0);
    mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.recent_uid, 3);
    assert_int_equal(mb.recent, 1); /* uid 3 */
    store_mailbox_free(&mb);
    uint32_t three = 3;
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &three, 1, &err), 0);
    assert_int_equal(put(s, ALICE, NULL, "Subject: r\r\n\r\nb\r\n", NULL, 0, 0, NULL), STORE_OK);
    mb = get_mb(s, ALICE, "INBOX");
    assert_int_equal(mb.recent, 1); /* uid 4; 3 went */
    store_mailbox_free(&mb);
    buf_free(&err);
    store_close(s);
}

/* A news history: Message-IDs found by index; unique_msgid refuses one held, even
 * earlier in the same batch, and a cross-post is one message. */
static void test_msgid_index(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct store *s = dir_store(dir);
    struct buf err = BUF_INIT;
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News", NULL, &err), 0);
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News/a", NULL, &err), 0);
    assert_int_equal(store_mailbox_create(s, STORE_PUBLIC_OWNER, "News/b", NULL, &err), 0);
    const char *m1 = "Message-ID:  <m1@x>\r\nSubject: one\r\n\r\nbody\r\n";
    const char *m2 = "Message-ID: <m2@x>\r\nSubject: two\r\n\r\nbody\r\n";
    const char *m2b = "Message-ID: <m2@x>\r\nSubject: two again\r\n\r\nother\r\n";
    assert_int_equal(put(s, STORE_PUBLIC_OWNER, "News/a", m1, NULL, 0, 0, NULL), STORE_OK);
    struct store_msgid_hit h;
    assert_int_equal(msgid_hits(s, STORE_PUBLIC_OWNER, "<m1@x>", &h), 1);
    assert_int_equal(h.uid, 1);
    assert_int_equal(msgid_hits(s, STORE_PUBLIC_OWNER, "<none@x>", NULL), 0);
    assert_int_equal(msgid_hits(s, ALICE, "<m1@x>", NULL), 0); /* per account */
    /* one batch: m1 again (held), m2 cross-posted, m2 again (earlier in the batch) */
    struct store_target t[5];
    memset(t, 0, sizeof(t));
    for (size_t k = 0; k < 5; k++) {
        t[k].owner = STORE_PUBLIC_OWNER;
        t[k].mailbox = k % 2 ? "News/b" : "News/a";
        t[k].must_exist = true;
    }
    struct store_delivery d[3] = {
        {.data = slice_from_cstr(m1), .targets = &t[0], .n_targets = 1, .unique_msgid = true},
        {.data = slice_from_cstr(m2), .targets = &t[1], .n_targets = 2, .unique_msgid = true},
        {.data = slice_from_cstr(m2b), .targets = &t[3], .n_targets = 2, .unique_msgid = true}};
    assert_int_equal(store_deliver(s, d, 3, &err), 0);
    assert_int_equal(t[0].status, STORE_DUPLICATE);
    assert_int_equal(t[1].status, STORE_OK);
    assert_int_equal(t[2].status, STORE_OK);
    assert_int_equal(t[3].status, STORE_DUPLICATE);
    assert_int_equal(t[4].status, STORE_DUPLICATE);
    assert_int_equal(msgid_hits(s, STORE_PUBLIC_OWNER, "<m2@x>", NULL), 2);
    /* without unique_msgid (mail) the same id is stored again */
    assert_int_equal(put(s, STORE_PUBLIC_OWNER, "News/a", m1, NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(msgid_hits(s, STORE_PUBLIC_OWNER, "<m1@x>", NULL), 2);
    /* a copy keeps its id */
    uint32_t one = 1, copied;
    assert_int_equal(store_message_copy(s, STORE_PUBLIC_OWNER, "News/a", &one, 1, "News/b", false,
                                        &copied, &err),
                     0);
    assert_int_equal(msgid_hits(s, STORE_PUBLIC_OWNER, "<m1@x>", NULL), 3);
    /* the copies of a body: m2's other group, m1 stored again (News/a 3) and copied (News/b 2) */
    struct store_mailbox a = get_mb(s, STORE_PUBLIC_OWNER, "News/a");
    struct store_mailbox b = get_mb(s, STORE_PUBLIC_OWNER, "News/b");
    struct store_copy *c;
    size_t nc;
    assert_int_equal(store_message_copies_id(s, STORE_PUBLIC_OWNER, a.id, 1, 3, &c, &nc, &err), 0);
    assert_int_equal(nc, 5); /* 1: a 3 and b 2; 2: b 1; 3: a 1 and b 2 */
    assert_int_equal(c[0].uid, 1);
    assert_true(c[0].mailbox_id == a.id && c[0].copy_uid == 3);
    assert_true(c[1].mailbox_id == b.id && c[1].copy_uid == 2);
    assert_true(c[2].uid == 2 && c[2].mailbox_id == b.id && c[2].copy_uid == 1);
    assert_true(c[3].uid == 3 && c[3].mailbox_id == a.id && c[3].copy_uid == 1);
    free(c);
    assert_int_equal(store_message_copies_id(s, STORE_PUBLIC_OWNER, a.id, 2, 2, &c, &nc, &err), 0);
    assert_int_equal(nc, 1);
    free(c);
    /* another account's copy of the same body is not one of these */
    assert_int_equal(put(s, ALICE, NULL, m2, NULL, 0, 0, NULL), STORE_OK);
    assert_int_equal(store_message_copies_id(s, STORE_PUBLIC_OWNER, b.id, 1, 1, &c, &nc, &err), 0);
    assert_true(nc == 1 && c[0].mailbox_id == a.id && c[0].copy_uid == 2);
    free(c);
    assert_int_equal(store_message_copies_id(s, ALICE, b.id, 1, 1, &c, &nc, &err), 0);
    assert_int_equal(nc, 0); /* not ALICE's mailbox */
    free(c);
    store_mailbox_free(&a);
    store_mailbox_free(&b);
    store_close(s);
    /* a store of version 10: the ids come from the search records */
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/store.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  UNDO_AFTER_13 UNDO_VERSION_13 UNDO_VERSION_12 UNDO_VERSION_11
                                  "ALTER TABLE blobs DROP COLUMN body;"
                                  /* the index of every body, as before the partial one */
                                  "DROP INDEX blobs_segment;"
                                  "CREATE INDEX blobs_segment ON blobs(segment);"
                                  "PRAGMA user_version = 10;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    s = dir_store(dir);
    /* migrated: blobs_segment leaves out the bodies kept in their rows */
    assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_schema WHERE name = 'blobs_segment'", -1, &q,
                           NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_non_null(strstr((const char *)sqlite3_column_text(q, 0), "WHERE segment >= 0"));
    sqlite3_finalize(q);
    sqlite3_close(db);
    buf_free(&path);
    assert_int_equal(msgid_hits(s, STORE_PUBLIC_OWNER, "<m1@x>", NULL), 3);
    assert_int_equal(msgid_hits(s, STORE_PUBLIC_OWNER, "<m2@x>", &h), 2);
    buf_free(&err);
    store_close(s);
    rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlite_keeps_no_memory_statistics),
        cmocka_unit_test(test_default_folders),
        cmocka_unit_test(test_uid_modseq_rules),
        cmocka_unit_test(test_changes_since),
        cmocka_unit_test(test_counters_migrate),
        cmocka_unit_test(test_search_records_migrate),
        cmocka_unit_test(test_reopen_and_recreate),
        cmocka_unit_test(test_single_instance_and_bytes),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_data_version),
        cmocka_unit_test(test_read_snapshot),
        cmocka_unit_test(test_concurrent_processes),
        cmocka_unit_test(test_crash_between_blob_and_commit),
        cmocka_unit_test(test_crash_after_commit),
        cmocka_unit_test(test_inline_bodies),
        cmocka_unit_test(test_blob_rows_migrate),
        cmocka_unit_test(test_gc_keeps_live_bodies),
        cmocka_unit_test(test_names_and_acl),
        cmocka_unit_test(test_acl_identifier_index),
        cmocka_unit_test(test_acl_rights_and_shares),
        cmocka_unit_test(test_acl_inherited_by_new_mailboxes),
        cmocka_unit_test(test_import_keeps_uids),
        cmocka_unit_test(test_account_state),
        cmocka_unit_test(test_newsgroup_anchors),
        cmocka_unit_test(test_account_state_migrate),
        cmocka_unit_test(test_vacation),
        cmocka_unit_test(test_identities),
        cmocka_unit_test(test_unknown_driver),
        cmocka_unit_test(test_mailbox_ids),
        cmocka_unit_test(test_public_former_names),
        cmocka_unit_test(test_feed_queue),
        cmocka_unit_test(test_msgid_index),
        cmocka_unit_test(test_recent_count),
        cmocka_unit_test(test_mailbox_first_copies),
        cmocka_unit_test(test_wal_gathered_writes),
        cmocka_unit_test(test_checkpoint_deferred),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
