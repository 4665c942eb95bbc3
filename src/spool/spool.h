/*
 * spool.h - the mail queue on disk: one file per accepted message.
 *
 * A spool file holds the envelope and the message, written as length-prefixed
 * records (never text that attacker data could break), fsync'd, and renamed
 * into place before the SMTP server answers 250: a file that exists under its
 * final name is complete. The mta reads it, delivers, and removes it only
 * after the delivery is durable. Layout: DATA_DIRECTORY/spool/ (the smtp
 * workers write, the mta reads): tmp/, queue/, and corrupt/ for files the
 * mta refused (damaged maildrop files, see maildrop.h). Queue ids are unique, sortable by arrival,
 * and safe as file names ([0-9A-Za-z] only).
 */
#ifndef WHARF_SPOOL_SPOOL_H
#define WHARF_SPOOL_SPOOL_H

#include "base/buf.h"
#include "base/config.h"
#include "base/hex.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* DSN NOTIFY bits (RFC 3461). */
#define SPOOL_NOTIFY_NEVER 0x1
#define SPOOL_NOTIFY_SUCCESS 0x2
#define SPOOL_NOTIFY_FAILURE 0x4
#define SPOOL_NOTIFY_DELAY 0x8

enum spool_body {
    SPOOL_BODY_7BIT,
    SPOOL_BODY_8BITMIME,
    SPOOL_BODY_BINARYMIME,
};

enum spool_rcpt_state {
    SPOOL_RCPT_PENDING,   /* still to be delivered */
    SPOOL_RCPT_DELIVERED, /* done: never deliver again */
    SPOOL_RCPT_FAILED,    /* permanently failed; bounce owed or sent */
    SPOOL_RCPT_EXPANDED,  /* an alias replaced by its expansion (version 3): the recipients
                             made from it follow, each with this one as its ORCPT */
};

struct spool_rcpt {
    char *address;   /* as given in RCPT TO, without <> */
    char *orcpt;     /* DSN ORCPT, or NULL */
    unsigned notify; /* SPOOL_NOTIFY_* bits; 0 = not given */
    enum spool_rcpt_state state;
    /* Version 3: a local account reached by alias expansion. It is delivered
     * to that account as is, never resolved again (its alias is done). */
    bool account;
    char *folder; /* with account: the +detail folder, or NULL for INBOX */
    /* Its queue (records V and Y, written when set): the next hop of its last outbound
     * attempt, moved to the new one at each attempt ("org:rg-b/b1", "smarthost:HOST:PORT",
     * "mx:example.com", "unreachable:rg-d"; doc/mta-out.md), and why it waits there
     * ("no route: ...", "connector down: ...", "deferred: 451 4.3.0 ..."); NULL: none yet. */
    char *via;
    char *waits;
};

struct spool_envelope {
    char id[32];
    char *sender; /* "" for the null sender <> */
    struct spool_rcpt *rcpts;
    size_t n_rcpts;
    enum spool_body body;
    bool smtputf8;
    bool dsn_ret_hdrs; /* RET=HDRS (else FULL or not given) */
    char *dsn_envid;   /* ENVID or NULL */
    char *auth_user;   /* authenticated submitter, or NULL */
    char *client;      /* "name[addr]" of the SMTP client, or "local" */
    char *helo;
    int64_t arrival; /* unix time, seconds */
    /* outbound retry state (record version 2; zero in version 1 files) */
    int64_t next_attempt; /* unix ms of the next outbound attempt; 0: at once */
    uint32_t attempts;    /* outbound attempts that failed temporarily */
    char *last_reason;    /* why the last attempt was deferred, or NULL */
    char *last_tls;       /* "DOMAIN: POLICY; ..." of the last attempt, or NULL (record 'Q') */
    bool warned;          /* a delay DSN was sent */
    bool hold;            /* on hold (`wharf queue hold`): not delivered until released */
    bool junk; /* a check on arrival said quarantine: local recipients get it in their Junk
                  folder (record 'J', written only when set) */
};

struct spool_message {
    struct spool_envelope env;
    struct buf data; /* the message as it will be stored: CRLF line ends, trace headers added */
};

/* Creates DATA/spool and its subfolders if needed. */
int spool_init(const struct wharf_config *cfg, struct buf *err);

/* A new unique queue id into id (at least 32 bytes). */
void spool_new_id(char id[32]);
/* The arrival second a queue id of spool_new_id starts with (9 hex digits); 0 when malformed. */
static inline int64_t spool_id_arrival(const char *id)
{
    int64_t t = 0;
    for (int i = 0; i < 9; i++) {
        int d = hex_value(id[i]);
        if (d < 0)
            return 0;
        t = t * 16 + d;
    }
    return t;
}

/*
 * Writes a complete spool file durably (temporary name, fsync, rename,
 * directory fsync). Returns 0 once the file is safe on disk; only then may the
 * caller answer 250.
 */
int spool_write(const struct wharf_config *cfg, const struct spool_message *msg, struct buf *err);

/*
 * Group commit: writes n spool files and makes them all durable with one
 * filesystem sync and one directory fsync (instead of two fsyncs each).
 * ok_r[i] says which were written; returns 0 if any was. Same guarantee as
 * spool_write for every ok_r[i] that is true.
 */
int spool_write_batch(const struct wharf_config *cfg, const struct spool_message *const *msgs,
                      size_t n, bool *ok_r, struct buf *err);

/* Decodes a spool file's bytes (exposed for tests and tools); -1 if damaged. */
int spool_decode(const void *data, size_t len, struct spool_message *msg, struct buf *err);

/* Reads a spool file; 1 with err when there is no entry id (never was, or
 * finished and removed since it was listed or announced: no error), -1 with
 * err for one that cannot be read or is damaged. */
int spool_read(const struct wharf_config *cfg, const char *id, struct spool_message *msg,
               struct buf *err);

/* True when entry id is in the queue (complete, under its final name). */
bool spool_exists(const struct wharf_config *cfg, const char *id);

/* Moves file name of directory dirfd (a damaged maildrop file) to
 * DATA/spool/corrupt/, where only the wharf user and root see it. */
int spool_set_aside(const struct wharf_config *cfg, int dirfd, const char *name, struct buf *err);

/* Records recipient states durably (after a delivery), so a restart never redelivers. */
int spool_update_rcpts(const struct wharf_config *cfg, const struct spool_message *msg,
                       struct buf *err);

/* Administrative changes of an entry (`wharf queue`): FLUSH makes it due now,
 * HOLD/RELEASE set or clear hold (RELEASE also makes it due now), REQUEUE
 * forgets the retry state (attempts, reason, warning) and makes it due now. */
enum spool_ctl { SPOOL_CTL_FLUSH, SPOOL_CTL_HOLD, SPOOL_CTL_RELEASE, SPOOL_CTL_REQUEUE };
/* "flush", "hold", "release", "requeue"; false if unknown. */
bool spool_ctl_parse(const char *s, enum spool_ctl *c_r);
/* Reads, changes and rewrites entry id durably. Only its writer may call this
 * (the mta while wharfd runs). */
int spool_control(const struct wharf_config *cfg, const char *id, enum spool_ctl c,
                  struct buf *err);

/*
 * Removes a spool file after every recipient is done, without syncing the
 * directory (as Postfix's qmgr): a removal a crash undoes only makes the
 * entry be tried again -- local recipients are recognised by the store, a
 * remote one may get the message twice -- never lost.
 */
int spool_remove(const struct wharf_config *cfg, const char *id, struct buf *err);
/*
 * The same in two steps, for the mta's loop: spool_retire renames queue/ID to
 * done/ID at once (cheap: a rename frees no block, an unlink may wait for a
 * discard), so no scan takes a delivered entry again and a crash after it
 * does not repeat the delivery; spool_remove_retired unlinks done/ID later,
 * in the remover's thread. Neither is durable, as spool_remove; whatever a
 * crash leaves in done/ is finished (spool_list_retired).
 */
int spool_retire(const struct wharf_config *cfg, const char *id, struct buf *err);
int spool_remove_retired(const struct wharf_config *cfg, const char *id, struct buf *err);
/* Removes a spool file durably (`wharf queue delete`: it must not come back). */
int spool_delete(const struct wharf_config *cfg, const char *id, struct buf *err);

/* Lists queue ids in arrival order; the caller frees with spool_list_free. */
int spool_list(const struct wharf_config *cfg, char ***ids_r, size_t *n_r, struct buf *err);
/* Lists the ids retired and not yet removed (spool_retire). */
int spool_list_retired(const struct wharf_config *cfg, char ***ids_r, size_t *n_r, struct buf *err);
void spool_list_free(char **ids, size_t n);

void spool_message_free(struct spool_message *msg);

/* "pending", "delivered", "failed" or "expanded" (for `wharf queue` and mailq). */
const char *spool_rcpt_state_name(enum spool_rcpt_state s);

#endif
