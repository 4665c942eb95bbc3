/*
 * sq_vacation.c - the vacation response of an account and the senders its
 * automatic reply went to (SQLite driver; tables of the 7 -> 8 migration).
 *
 * Never decides whether a message deserves a reply (src/mta/vacation.c
 * does); it keeps the settings and answers "not answered within the period"
 * atomically, so that two deliveries never both send one.
 */
#include "store/sqlite/sq_int.h"

#include <string.h>

int sq_vacation_get(struct store *s, const char *owner, struct store_vacation *v, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT enabled, from_date, to_date, subject, text_body, html_body"
                               " FROM vacation WHERE owner = ?",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        v->enabled = sqlite3_column_int(st, 0) != 0;
        v->has_from = sqlite3_column_type(st, 1) != SQLITE_NULL;
        v->from_date = sqlite3_column_int64(st, 1);
        v->has_to = sqlite3_column_type(st, 2) != SQLITE_NULL;
        v->to_date = sqlite3_column_int64(st, 2);
        v->subject = sq_col_text(st, 3);
        v->text_body = sq_col_text(st, 4);
        v->html_body = sq_col_text(st, 5);
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_vacation_free(v);
        return sq_db_error(s, "vacation", err);
    }
    return 0;
}

int sq_vacation_set(struct store *s, const char *owner, const struct store_vacation *v,
                    struct buf *err)
{
    int64_t state;
    int rc;
    if (sq_begin(s, true, err) != 0)
        return -1;
    sqlite3_stmt *st = sq_stmt(s,
                               "INSERT OR REPLACE INTO vacation(owner, enabled, from_date, to_date,"
                               " subject, text_body, html_body) VALUES(?, ?, ?, ?, ?, ?, ?)",
                               err);
    if (st == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, v->enabled);
    if (v->has_from)
        sqlite3_bind_int64(st, 3, v->from_date);
    if (v->has_to)
        sqlite3_bind_int64(st, 4, v->to_date);
    sq_bind_text_or_null(st, 5, v->subject);
    sq_bind_text_or_null(st, 6, v->text_body);
    sq_bind_text_or_null(st, 7, v->html_body);
    if (sqlite3_step(st) != SQLITE_DONE) {
        sq_db_error(s, "vacation", err);
        goto fail;
    }
    st = sq_stmt(s, "DELETE FROM vacation_sent WHERE owner = ?", err);
    if (st == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        sq_db_error(s, "vacation", err);
        goto fail;
    }
    if (sq_account_state_next(s, owner, &state, err) != 0)
        goto fail;
    return sq_commit(s, err);
fail:
    sq_rollback(s);
    return -1;
}

int sq_vacation_claim(struct store *s, const char *owner, const char *sender, int64_t now,
                      int64_t period, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s,
                               "INSERT INTO vacation_sent(owner, sender, at) VALUES(?1, ?2, ?3)"
                               " ON CONFLICT(owner, sender) DO UPDATE SET at = excluded.at"
                               " WHERE vacation_sent.at <= ?3 - ?4",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, period);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_db_error(s, "vacation replies", err);
    return sqlite3_changes(sq(s)->db) > 0 ? 1 : 0;
}
