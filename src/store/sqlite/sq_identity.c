/*
 * sq_identity.c - the identities an account made (SQLite driver; tables of
 * the 8 -> 9 migration): rows with the account state of their last change
 * and creation, and the log of those destroyed, for Identity/changes.
 *
 * Never checks what an identity may say (the JMAP engine applies the sender
 * rule); every write takes a fresh account state in its own transaction.
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

int sq_identity_list(struct store *s, const char *owner, uint64_t since,
                     struct store_identity **list_r, size_t *n_r, struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT id, email, name, reply_to, bcc, text_signature,"
                               " html_signature, state, created_state FROM identities"
                               " WHERE owner = ? AND state > ? ORDER BY id",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)since);
    struct store_identity *v = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = xreallocarray(v, n + 1, sizeof(*v));
        struct store_identity *d = &v[n++];
        d->id = sqlite3_column_int64(st, 0);
        d->email = sq_col_text(st, 1);
        d->name = sq_col_text(st, 2);
        d->reply_to = sq_col_text(st, 3);
        d->bcc = sq_col_text(st, 4);
        d->text_signature = sq_col_text(st, 5);
        d->html_signature = sq_col_text(st, 6);
        d->state = (uint64_t)sqlite3_column_int64(st, 7);
        d->created_state = (uint64_t)sqlite3_column_int64(st, 8);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_identity_list_free(v, n);
        return sq_db_error(s, "identities", err);
    }
    *list_r = v;
    *n_r = n;
    return 0;
}

int sq_identity_put(struct store *s, const char *owner, struct store_identity *v, struct buf *err)
{
    int64_t state;
    if (sq_begin(s, true, err) != 0)
        return -1;
    if (sq_account_state_next(s, owner, &state, err) != 0)
        goto fail;
    sqlite3_stmt *st = sq_stmt(
        s,
        v->id ? "UPDATE identities SET email = ?3, name = ?4, reply_to = ?5, bcc = ?6,"
                " text_signature = ?7, html_signature = ?8, state = ?9"
                " WHERE owner = ?1 AND id = ?2"
              : "INSERT INTO identities(owner, email, name, reply_to, bcc, text_signature,"
                " html_signature, state, created_state) VALUES(?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        err);
    if (st == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    if (v->id)
        sqlite3_bind_int64(st, 2, v->id);
    sqlite3_bind_text(st, 3, v->email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, v->name ? v->name : "", -1, SQLITE_STATIC);
    sq_bind_text_or_null(st, 5, v->reply_to);
    sq_bind_text_or_null(st, 6, v->bcc);
    sqlite3_bind_text(st, 7, v->text_signature ? v->text_signature : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, v->html_signature ? v->html_signature : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, state);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        sq_db_error(s, "identities", err);
        goto fail;
    }
    if (v->id && sqlite3_changes(sq(s)->db) == 0) {
        sq_rollback(s);
        return 1;
    }
    if (v->id == 0)
        v->id = sqlite3_last_insert_rowid(sq(s)->db);
    v->state = (uint64_t)state;
    return sq_commit(s, err);
fail:
    sq_rollback(s);
    return -1;
}

int sq_identity_delete(struct store *s, const char *owner, int64_t id, struct buf *err)
{
    int64_t state;
    if (sq_begin(s, true, err) != 0)
        return -1;
    sqlite3_stmt *st = sq_stmt(s, "DELETE FROM identities WHERE owner = ? AND id = ?", err);
    if (st == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        sq_db_error(s, "identities", err);
        goto fail;
    }
    if (sqlite3_changes(sq(s)->db) == 0) {
        sq_rollback(s);
        return 1;
    }
    if (sq_account_state_next(s, owner, &state, err) != 0)
        goto fail;
    st = sq_stmt(s, "INSERT OR REPLACE INTO identities_gone VALUES(?, ?, ?)", err);
    if (st == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int64(st, 3, state);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        sq_db_error(s, "identities", err);
        goto fail;
    }
    return sq_commit(s, err);
fail:
    sq_rollback(s);
    return -1;
}

int sq_identity_gone(struct store *s, const char *owner, uint64_t since, int64_t **ids_r,
                     uint64_t **states_r, size_t *n_r, struct buf *err)
{
    *ids_r = NULL;
    *states_r = NULL;
    *n_r = 0;
    sqlite3_stmt *st = sq_stmt(
        s, "SELECT id, state FROM identities_gone WHERE owner = ? AND state > ? ORDER BY id", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)since);
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *ids_r = xreallocarray(*ids_r, n + 1, sizeof(**ids_r));
        *states_r = xreallocarray(*states_r, n + 1, sizeof(**states_r));
        (*ids_r)[n] = sqlite3_column_int64(st, 0);
        (*states_r)[n++] = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    *n_r = n;
    if (rc != SQLITE_DONE) {
        free(*ids_r);
        free(*states_r);
        *ids_r = NULL;
        *states_r = NULL;
        *n_r = 0;
        return sq_db_error(s, "identities gone", err);
    }
    return 0;
}
