/*
 * test_store_text.c - unit tests of the store's full-text index
 * (sq_text.c): a delivered message is found at once by a substring of its
 * subject, addresses or body text (case-insensitive, non-ASCII too),
 * whatever its transfer encoding and charset, its HTML rendered to text; one
 * body shared by two accounts is indexed once and found by each, never by a
 * third; the row goes with the body's last reference; delivery never
 * indexes, the search tops up what came since (a message delivered just
 * before a search is found); a store of the version before the index gets
 * its bodies indexed by the first search.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "store/store.h"
#include "store/test_store_util.h"

#include <sqlite3.h>

#define ALICE "alice@example.test"
#define BOB "bob@example.test"
#define CAROL "carol@example.test"

static const char plain[] = "From: Ann Example <ann@example.test>\r\n"
                            "To: =?UTF-8?Q?Z=C3=BCrich_Office?= <office@example.test>\r\n"
                            "Subject: Quarterly Figures\r\n\r\n"
                            "The turnover rose by a little.\r\n";
/* base64 text/plain in ISO-8859-1, quoted-printable HTML with a script */
static const char encoded[] =
    "From: bob@example.test\r\n"
    "Subject: =?ISO-8859-1?Q?Men=FC?=\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
    "--b1\r\n"
    "Content-Type: text/plain; charset=ISO-8859-1\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\n"
    "Q3LobWUgYnL7bOllIGF1IGNhZuk=\r\n" /* "Crème brûlée au café", latin-1 */
    "--b1\r\n"
    "Content-Type: text/html; charset=UTF-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    "<html><head><script>var hidden=3D'scriptword';</script></head>\r\n"
    "<body><p>Flamb=C3=A9<b>ed</b> &amp; serv=C3=A9d</p></body></html>\r\n"
    "--b1--\r\n";

static uint32_t put(struct store *s, const char *owner, const char *body)
{
    struct store_target t = {.owner = owner};
    struct store_delivery d = {.data = slice_from_cstr(body), .targets = &t, .n_targets = 1};
    struct buf err = BUF_INIT;
    if (store_deliver(s, &d, 1, &err) != 0 || t.status != STORE_OK)
        fail_msg("deliver: %s", buf_cstr(&err));
    buf_free(&err);
    return t.uid;
}

/* How many of owner's messages have text in fields (-1: not indexed). */
static int hits(struct store *s, const char *owner, unsigned fields, const char *text)
{
    struct store_text_hit *v;
    size_t n;
    struct buf err = BUF_INIT;
    int rc = store_text_search(s, owner, 0, fields, slice_from_cstr(text), &v, &n, &err);
    if (rc < 0)
        fail_msg("search: %s", buf_cstr(&err));
    buf_free(&err);
    free(v);
    return rc == 1 ? -1 : (int)n;
}

#define ALL_FIELDS 0x7f

static void test_fields_and_case(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    put(s, ALICE, plain);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_SUBJECT, "quarterly fig"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_SUBJECT, "QUARTERLY"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "quarterly"), 0); /* the subject only */
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "turnover ROSE"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "urnov"), 1); /* a substring, not a word */
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "turnover  rose"), 0);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_FROM, "ann@example"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_FROM, "Ann Example"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_TO, "ann@example"), 0);
    /* the To name was an encoded-word: found decoded, case folded beyond ASCII */
    assert_int_equal(hits(s, ALICE, STORE_TEXT_TO, "zürich"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_TO, "ZÜRICH"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_HEADER, "Subject: Quarterly"), 1);
    assert_int_equal(hits(s, ALICE, ALL_FIELDS, "little."), 1);
    /* FTS5 syntax in the text is only text */
    assert_int_equal(hits(s, ALICE, ALL_FIELDS, "\"rose\" OR x"), 0);
    assert_int_equal(hits(s, ALICE, ALL_FIELDS, "by \"a"), 0);
    assert_int_equal(hits(s, ALICE, ALL_FIELDS, "NEAR(rose"), 0);
    /* shorter than three characters: the caller scans */
    assert_int_equal(hits(s, ALICE, ALL_FIELDS, "by"), -1);
    assert_int_equal(hits(s, ALICE, ALL_FIELDS, "ü"), -1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_TO, "üri"), 1);
    store_close(s);
}

static void test_encoded_and_html(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    put(s, ALICE, encoded);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_SUBJECT, "menü"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "crème brûlée"), 1); /* base64, latin-1 */
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "CRÈME"), 1);
    /* the HTML part as text: tags gone, references decoded, script dropped */
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "flambéed & servéd"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "scriptword"), 0);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "<b>"), 0);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "Q3LobWU"), 0); /* not the encoded bytes */
    store_close(s);
}

static void test_shared_body_and_delete(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct buf err = BUF_INIT;
    struct store *s = store_open_dir(dir, NULL, &err);
    assert_non_null(s);
    /* one delivery to two accounts: one body, one index row, found by each */
    struct store_target t[2] = {{.owner = ALICE}, {.owner = BOB}};
    struct store_delivery d = {.data = slice_from_cstr(plain), .targets = t, .n_targets = 2};
    assert_int_equal(store_deliver(s, &d, 1, &err), 0);
    put(s, BOB, plain); /* a second copy for bob */
    put(s, CAROL, encoded);
    /* delivery never indexes: the first search does, for the mailboxes it looks in */
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM text_docs"), 0);
    assert_int_equal(hits(s, ALICE, ALL_FIELDS, "turnover"), 1);
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM text_docs"), 1);
    size_t looked;
    assert_int_equal(store_text_topup(s, 0, &looked, &err), 0);
    assert_int_equal(looked, 3); /* bob's two copies, carol's one; alice's was done */
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM text_docs"), 2);
    assert_int_equal(store_text_topup(s, 0, &looked, &err), 0);
    assert_int_equal(looked, 0);
    assert_int_equal(hits(s, BOB, ALL_FIELDS, "turnover"), 2);
    assert_int_equal(hits(s, CAROL, ALL_FIELDS, "turnover"), 0); /* no mixing of accounts */
    assert_int_equal(hits(s, ALICE, ALL_FIELDS, "brûlée"), 0);
    /* by mailbox: the copies there only */
    int64_t inbox;
    assert_int_equal(store_mailbox_resolve(s, BOB, "INBOX", &inbox, &err), 0);
    struct store_text_hit *v;
    size_t n;
    assert_int_equal(
        store_text_search(s, BOB, inbox, STORE_TEXT_BODY, slice_from_cstr("rose by"), &v, &n, &err),
        0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].uid, 1);
    assert_int_equal(v[1].uid, 2);
    assert_int_equal(v[0].mailbox_id, inbox);
    char hash[65];
    store_body_id(slice_from_cstr(plain), hash);
    assert_string_equal(v[0].blob, hash);
    free(v);
    /* expunged: not found at once; the row goes with the last reference */
    uint32_t one = 1, two = 2;
    assert_int_equal(store_message_expunge(s, ALICE, "INBOX", &one, 1, &err), 0);
    assert_int_equal(hits(s, ALICE, ALL_FIELDS, "turnover"), 0);
    assert_int_equal(hits(s, BOB, ALL_FIELDS, "turnover"), 2);
    assert_int_equal(store_message_expunge(s, BOB, "INBOX", &one, 1, &err), 0);
    assert_int_equal(store_message_expunge(s, BOB, "INBOX", &two, 1, &err), 0);
    assert_int_equal(hits(s, BOB, ALL_FIELDS, "turnover"), 0);
    assert_int_equal(store_gc(s, &err), 0);
    int64_t left = sql_int(dir, "SELECT COUNT(*) FROM text_docs");
    int64_t blobs = sql_int(dir, "SELECT COUNT(*) FROM blobs");
    assert_int_equal(left, blobs); /* one row per body still stored */
    if (blobs == 1)                /* the expunge hold let the body go */
        assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM text_index"), 1);
    assert_int_equal(sql_int(dir, "SELECT COUNT(*) FROM text_index WHERE text_index MATCH "
                                  "'\"brûlée\"'"),
                     1);
    store_close(s);
    buf_free(&err);
    rm_dir(dir);
}

/* A store from before the index: the first search indexes what it holds. */
static void test_migration_backfill(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct buf err = BUF_INIT;
    struct store *s = store_open_dir(dir, NULL, &err);
    assert_non_null(s);
    put(s, ALICE, plain);
    put(s, BOB, encoded);
    store_close(s);
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/store.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_int64(st, 0) > 15); /* past the index step */
    sqlite3_finalize(st);
    /* undo the index step (15 -> 16); the later steps run again */
    struct buf sql = BUF_INIT;
    buf_printf(&sql, UNDO_DUPES UNDO_BLOB_ROWS UNDO_TEXT_INDEX "PRAGMA user_version = %d;", 15);
    assert_int_equal(sqlite3_exec(db, sql.data, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    s = store_open_dir(dir, NULL, &err);
    assert_non_null(s);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "turnover"), 1);
    assert_int_equal(hits(s, BOB, STORE_TEXT_BODY, "brûlée"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "brûlée"), 0);
    store_close(s);
    buf_free(&sql);
    buf_free(&path);
    buf_free(&err);
    rm_dir(dir);
}

static const char attached[] = "From: ann@example.test\r\n"
                               "Subject: with a file\r\n"
                               "MIME-Version: 1.0\r\n"
                               "Content-Type: multipart/mixed; boundary=\"b2\"\r\n\r\n"
                               "--b2\r\n"
                               "Content-Type: text/plain\r\n\r\n"
                               "see the file\r\n"
                               "--b2\r\n"
                               "Content-Type: application/octet-stream\r\n\r\n"
                               "attachedword\r\n"
                               "--b2--\r\n";

/* A message delivered after a search is found by the next one (the top-up);
 * STORE_TEXT_OTHER lists the copies with parts the index does not hold. */
static void test_lazy_and_other(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "turnover"), 0);
    put(s, ALICE, plain);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "turnover"), 1);
    put(s, ALICE, attached);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "see the file"), 1);
    assert_int_equal(hits(s, ALICE, STORE_TEXT_BODY, "attachedword"), 0);
    struct store_text_hit *v;
    size_t n;
    struct buf err = BUF_INIT;
    assert_int_equal(store_text_search(s, ALICE, 0, STORE_TEXT_BODY | STORE_TEXT_OTHER,
                                       slice_from_cstr("attachedword"), &v, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].uid, 2);
    assert_true(v[0].other);
    free(v);
    assert_int_equal(store_text_search(s, ALICE, 0, STORE_TEXT_BODY | STORE_TEXT_OTHER,
                                       slice_from_cstr("see the"), &v, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_false(v[0].other);
    free(v);
    buf_free(&err);
    store_close(s);
}

/* store_text_emails: the Emails sorted as Email/query sorts them, by mailbox. */
static void test_emails_sorted(void **state)
{
    (void)state;
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    char body[3][256];
    for (int i = 0; i < 3; i++) {
        snprintf(body[i], sizeof(body[i]), "Subject: n%d\r\n\r\nmatchword %d\r\n", i, i);
        put(s, ALICE, body[i]);
    }
    put(s, ALICE, plain);
    char(*h)[65];
    size_t n;
    assert_int_equal(store_text_emails(s, ALICE, 0, STORE_TEXT_BODY, slice_from_cstr("matchword"),
                                       true, &h, &n, &err),
                     0);
    assert_int_equal(n, 3);
    char want[65];
    for (int i = 0; i < 3; i++) { /* same second: by arrival, newest first */
        store_body_id(slice_from_cstr(body[2 - i]), want);
        assert_string_equal(h[i], want);
    }
    free(h);
    assert_int_equal(store_text_emails(s, ALICE, 0, STORE_TEXT_BODY, slice_from_cstr("matchword"),
                                       false, &h, &n, &err),
                     0);
    assert_int_equal(n, 3);
    store_body_id(slice_from_cstr(body[0]), want);
    assert_string_equal(h[0], want);
    free(h);
    int64_t inbox;
    assert_int_equal(store_mailbox_resolve(s, ALICE, "INBOX", &inbox, &err), 0);
    assert_int_equal(store_text_emails(s, ALICE, inbox, STORE_TEXT_BODY,
                                       slice_from_cstr("matchword"), true, &h, &n, &err),
                     0);
    assert_int_equal(n, 3);
    free(h);
    assert_int_equal(store_text_emails(s, ALICE, inbox + 1000, STORE_TEXT_BODY,
                                       slice_from_cstr("matchword"), true, &h, &n, &err),
                     0);
    assert_int_equal(n, 0);
    free(h);
    assert_int_equal(store_text_emails(s, BOB, 0, STORE_TEXT_BODY, slice_from_cstr("matchword"),
                                       true, &h, &n, &err),
                     0);
    assert_int_equal(n, 0);
    free(h);
    assert_int_equal(
        store_text_emails(s, ALICE, 0, STORE_TEXT_BODY, slice_from_cstr("ma"), true, &h, &n, &err),
        1);
    buf_free(&err);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_case),        cmocka_unit_test(test_encoded_and_html),
        cmocka_unit_test(test_shared_body_and_delete), cmocka_unit_test(test_migration_backfill),
        cmocka_unit_test(test_lazy_and_other),         cmocka_unit_test(test_emails_sorted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
