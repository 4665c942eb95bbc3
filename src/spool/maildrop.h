/*
 * maildrop.h - the local maildrop: where `wharf sendmail` leaves a message
 * when wharfd is not running, until the mta's pickup (mta/mta_pickup.h)
 * moves it into the spool. Postfix's maildrop, without a setgid helper.
 *
 * DATA/maildrop is owned by the wharf user, group wharf, mode 3733
 * (sticky, setgid, -wx for everyone else): any local user may create a file
 * in it but cannot list it, read another's file (0640, group wharf by the
 * setgid bit) or remove or rename it (sticky). No privileged code runs for
 * the user: the file's owner, which the kernel sets and the user cannot
 * change, is the honest submitter. DATA itself is 0751 so users can reach
 * the maildrop and nothing else. The spool is never writable by them.
 *
 * A file is written as "t" NAME, fsync'd, renamed to NAME (never replacing
 * a file), and the directory synced: a file under a NAME is complete. NAME
 * is a spool_new_id() (23 upper-case hex digits: time, microseconds, pid,
 * counter). Format (integers big-endian, records as record.h):
 *     "WMDR" u32 version (1)
 *     U uid (u32): the writer's real uid; the pickup refuses a file whose
 *       owner is someone else
 *     S envelope sender ("" for <>)
 *     R recipient (one record each, at least one)
 *     M the message: CRLF line ends, not dot-stuffed
 *     Z end (length 0); nothing may follow.
 * The records come in exactly this order, each once but R. Anything else is
 * a damaged file. Everything in a file is the user's claim: the pickup checks
 * it all again (addresses, limits) and adds the trace headers itself.
 */
#ifndef WHARF_SPOOL_MAILDROP_H
#define WHARF_SPOOL_MAILDROP_H

#include "base/buf.h"
#include "base/config.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Length of a maildrop file name (a spool_new_id()). */
#define MAILDROP_NAME_LEN 23
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets; no address is longer. */
#define MAILDROP_MAX_ADDRESS 256
/* A temporary file this old was left by a writer that died. */
#define MAILDROP_TMP_MAX_AGE_S (24 * 3600)

struct maildrop_entry {
    uint32_t uid; /* the submitter's real uid */
    char *sender; /* "" for the null sender <> */
    char **rcpts;
    size_t n_rcpts;
    struct buf data; /* CRLF line ends, not dot-stuffed */
};

/* What a file may hold: more recipients or message bytes make it damaged. */
struct maildrop_limits {
    size_t max_rcpts;  /* smtp_max_recipients */
    uint64_t max_data; /* smtp_max_message_size */
};

void maildrop_limits_from_config(struct maildrop_limits *lim_r, const struct wharf_config *cfg);

/* DATA/maildrop (the caller frees). */
char *maildrop_dir(const struct wharf_config *cfg);

/* A complete file's name (else a temporary file or something a user put there). */
bool maildrop_name_valid(const char *name);

/*
 * The spool id of file name owned by uid: NAME "m" uid-in-base-36, at most
 * 31 characters. The same file always gets the same id (a pickup cut short
 * by a crash finds its entry again); it never equals an id that smtp makes
 * (those have no lower-case letter), nor one of another user's files.
 */
void maildrop_spool_id(const char *name, uid_t uid, char id_r[32]);

/* Encodes e into out (the whole file). */
void maildrop_encode(const struct maildrop_entry *e, struct buf *out);

/* Decodes a file's bytes; -1 with *why_r (static text) if it is damaged or past lim. */
int maildrop_decode(const void *data, size_t len, const struct maildrop_limits *lim,
                    struct maildrop_entry *e, const char **why_r);

/*
 * Writes e durably into the maildrop of cfg as a new file (as any user) and
 * puts its name into name_r. Returns 0 only when the file and its name are
 * on disk; -1 with err otherwise (nothing is left behind).
 */
int maildrop_write(const struct wharf_config *cfg, const struct maildrop_entry *e, char name_r[32],
                   struct buf *err);

/*
 * Reads file name of the maildrop open as dirfd, the way the pickup must:
 * never through a symbolic link, only a regular file with one link, no
 * larger than lim allows, and only if its U record is its owner. Returns 0
 * with e and *st_r; 1 when the file is gone; -1 with err when it is damaged
 * or unreadable (the caller sets it aside).
 */
int maildrop_read(int dirfd, const char *name, const struct maildrop_limits *lim,
                  struct maildrop_entry *e, struct stat *st_r, struct buf *err);

/*
 * Lists the entries of the maildrop open as dirfd in name order: complete
 * files, and with junk also everything else but temporary files younger
 * than MAILDROP_TMP_MAX_AGE_S. Free with spool_list_free.
 */
int maildrop_list(int dirfd, bool junk, char ***names_r, size_t *n_r, struct buf *err);

void maildrop_entry_free(struct maildrop_entry *e);

#endif
