/*
 * pop3_maildrop.h - one POP3 session's view of a user's INBOX.
 *
 * At login the maildrop is locked (one POP3 session per account at a time,
 * across every pop3 worker process: RFC 1939 "exclusive-access lock") and a
 * snapshot of INBOX is taken; message numbers index that snapshot. DELE only
 * marks; pop3_maildrop_commit (QUIT in the TRANSACTION state) expunges the
 * marked messages in one store transaction. A dropped connection commits
 * nothing. The lock is an flock on a file in DATA/run/pop3/, so a crashed
 * worker can never leave a maildrop locked.
 */
#ifndef WHARF_POP3_POP3_MAILDROP_H
#define WHARF_POP3_POP3_MAILDROP_H

#include "base/buf.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct pop3_msg {
    uint32_t uid;
    uint64_t size;
    bool deleted;
};

struct pop3_maildrop {
    char *account;
    int lock_fd;
    uint32_t uidvalidity;
    int64_t inbox_id; /* the store's INBOX, resolved at open: later calls take the id */
    struct pop3_msg *msgs;
    size_t n;
};

enum pop3_open_result {
    POP3_OPEN_OK,
    POP3_OPEN_IN_USE, /* another POP3 session holds the lock */
    POP3_OPEN_TEMP,   /* store trouble */
};

/* Creates DATA/run/pop3 (call once per worker, after dropping privileges). */
int pop3_maildrop_init(const struct wharf_config *cfg, struct buf *err);

enum pop3_open_result pop3_maildrop_open(struct pop3_maildrop *md, struct store *store,
                                         const struct wharf_config *cfg, const char *account,
                                         struct buf *err);
/* Releases the lock and frees; marks are forgotten. */
void pop3_maildrop_close(struct pop3_maildrop *md);

/* 1-based message number to message, NULL when out of range or deleted. */
struct pop3_msg *pop3_maildrop_get(struct pop3_maildrop *md, uint32_t number);
void pop3_maildrop_stat(const struct pop3_maildrop *md, size_t *count_r, uint64_t *bytes_r);
/* The unique-id listing string of a message (stable forever, IMAP UID based). */
void pop3_maildrop_uidl(const struct pop3_maildrop *md, const struct pop3_msg *m, struct buf *out);
/* Expunges every marked message in one transaction; *deleted_r counts them. */
int pop3_maildrop_commit(struct pop3_maildrop *md, struct store *store, size_t *deleted_r,
                         struct buf *err);

#endif
