/*
 * test_store_util.h - what the store's unit tests share: a temporary store, a
 * store directory made and removed, one number read from its database with
 * SQL, and the SQL that undoes a schema step
 * (for the migration tests, which roll a store back and open it again).
 * Test code only: never included by the store itself. Include after
 * <cmocka.h> and its prerequisites.
 */
#ifndef WHARF_STORE_TEST_STORE_UTIL_H
#define WHARF_STORE_TEST_STORE_UTIL_H

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "store/store.h"

/* What the keyword index step (21 -> 22) added. */
#define UNDO_KEYWORD_INDEX "DROP INDEX IF EXISTS messages_keywords;"
/* What the duplicate copies step (20 -> 21) added. */
#define UNDO_DUPES                                                                                 \
    "DROP TRIGGER message_dupes_insert; DROP TRIGGER message_dupes_delete;"                        \
    " DROP TABLE message_dupes;"
/* What the date index step (19 -> 20) added: an index on columns the older undos drop. */
#define UNDO_DATE_INDEX "DROP INDEX IF EXISTS messages_date;"
/* What the body rows step (17 -> 18) did: the bodies back into blobs.body. */
#define UNDO_BLOB_ROWS                                                                             \
    "UPDATE blobs SET body = (SELECT bb.body FROM blob_bodies bb WHERE bb.id = blobs.offset),"     \
    " offset = 0 WHERE segment < 0;"                                                               \
    "DROP TRIGGER blob_bodies_delete; DROP TABLE blob_bodies;"
/* What the full-text index step (15 -> 16) added (test_store_text.c tests it). */
#define UNDO_TEXT_INDEX                                                                            \
    "DROP TRIGGER text_blob_delete; DROP TRIGGER text_mailbox_delete; DROP TABLE text_index;"      \
    " DROP TABLE text_docs; DROP TABLE text_marks;"
/* What the JMAP threads step (13 -> 14) added (test_store_thread.c tests it). */
#define UNDO_THREADS                                                                               \
    "DROP TRIGGER jmap_thread_delete; DROP TABLE thread_ids; DROP TABLE threads_touched;"          \
    "DROP INDEX messages_thread; ALTER TABLE messages DROP COLUMN thread;"                         \
    "DELETE FROM meta WHERE key = 'thread_id_next';"

static inline struct store *tmp_store(void)
{
    struct buf err = BUF_INIT;
    struct store *s = store_open_temporary(&err);
    if (s == NULL)
        fail_msg("%s", buf_cstr(&err));
    buf_free(&err);
    return s;
}

static inline char *make_dir(void)
{
    char tmpl[] = "/tmp/wharf-test-store-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

/* Every step after version 13, newest first: what a test that takes a store back to 13 or
 * older runs before its own undos (a new step goes here, not into each test). */
#define UNDO_AFTER_13                                                                              \
    UNDO_KEYWORD_INDEX UNDO_DUPES UNDO_DATE_INDEX UNDO_BLOB_ROWS UNDO_TEXT_INDEX UNDO_THREADS

/* Removes dir and frees the name. */
static inline void rm_dir(char *dir)
{
    char *argv[] = {"rm", "-rf", dir, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
    free(dir);
}

/* One integer (the first column of the first row) of sql on dir's store.db. */
static inline int64_t sql_int(const char *dir, const char *sql)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/store.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    buf_free(&path);
    return v;
}

#endif
