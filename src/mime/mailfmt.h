/*
 * mailfmt.h - the on-disk mail formats other servers and mail readers write:
 * mbox (mboxo/mboxrd "From " separator lines and their quoting, mutt's
 * Status:/X-Status: flags), Maildir (the ":2," info suffix of a file name)
 * and Dovecot's Maildir side files (dovecot-uidlist, dovecot-keywords,
 * subscriptions).
 *
 * One place for both directions: `wharf import` parses with these and
 * `wharf export` writes with them, so what one writes the other reads.
 * Everything here is a pure function of its input (no I/O, no allocation
 * beyond the caller's buffers). The input is untrusted (a user's old mail
 * files): every parser is total (any bytes give a result or a refusal, never
 * a read past the slice) and is fuzzed (fuzz_mailfmt.c).
 */
#ifndef WHARF_MIME_MAILFMT_H
#define WHARF_MIME_MAILFMT_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>

/* The system flags, with the store's bit values (enum store_flag). */
#define MAILFMT_SEEN (1u << 0)
#define MAILFMT_ANSWERED (1u << 1)
#define MAILFMT_FLAGGED (1u << 2)
#define MAILFMT_DELETED (1u << 3)
#define MAILFMT_DRAFT (1u << 4)

/* Maildir keyword letters a..z name keywords 0..25 of dovecot-keywords. */
#define MAILFMT_KEYWORDS_MAX 26

/* ---- mbox ---- */

/*
 * A separator line "From SENDER DATE" (without its line end). True when line
 * is one: the sender (maybe "MAILER-DAEMON" or empty) into sender_r and the
 * asctime date ("Sat Dec  5 10:11:58 2026", a trailing zone or year first
 * form tolerated) as unix seconds into date_r (0 when it cannot be read).
 * Only lines that begin with "From " are separators; the caller applies
 * the mboxo rule that a separator follows an empty line or starts the file.
 */
bool mailfmt_mbox_from_parse(struct slice line, struct slice *sender_r, int64_t *date_r);
/* Appends "From SENDER DATE\n" (sender "MAILER-DAEMON" when empty). */
void mailfmt_mbox_from_format(struct buf *out, struct slice sender, int64_t date);
/* mboxrd quoting: true for a body line matching ^>*From  (written with one more '>'). */
bool mailfmt_mbox_quoted(struct slice line);
/* Reading mboxrd: a line matching ^>+From  loses its first '>'; other lines are kept. */
struct slice mailfmt_mbox_unquote(struct slice line);
/*
 * Flags from mutt's and Pine's headers: Status: (R seen, O old) and
 * X-Status: (A answered, F flagged, T draft, D deleted). Either may be empty.
 */
unsigned mailfmt_mbox_status_flags(struct slice status, struct slice xstatus);
/* Appends "Status: RO\n" and "X-Status: AF\n" lines for flags (nothing when none). */
void mailfmt_mbox_status_format(struct buf *out, unsigned flags);
/* A header line that mailfmt_mbox_status_format writes (Status:, X-Status:, case-insensitive). */
bool mailfmt_mbox_status_header(struct slice line);

/*
 * Dovecot's and UW-IMAP's mbox UID headers: "X-IMAPbase: UIDVALIDITY UIDNEXT
 * [KEYWORD...]" (first message) and "X-UID: UID". Values without the header
 * name; false when malformed.
 */
bool mailfmt_mbox_imapbase(struct slice value, uint32_t *uidvalidity_r, uint32_t *uidnext_r);
bool mailfmt_mbox_uid(struct slice value, uint32_t *uid_r);

/* ---- Maildir ---- */

struct mailfmt_maildir_name {
    struct slice base; /* the unique part (before ":2," / ":1," / Dovecot's ",S=") */
    unsigned flags;    /* MAILFMT_* */
    uint32_t keywords; /* bit i: keyword letter 'a' + i */
    bool has_info;     /* ":2," was present */
};
/*
 * Parses a Maildir file name "BASE[,S=..][,W=..][:2,FLAGS]": P passed (kept
 * by no IMAP flag), R answered, S seen, T deleted, D draft, F flagged, a..z
 * keywords. Unknown letters are ignored. False for a name that cannot be a
 * Maildir message (empty, starting with '.', or containing '/').
 */
bool mailfmt_maildir_name_parse(struct slice name, struct mailfmt_maildir_name *r);
/* Appends ":2," and the flag letters in ASCII order, as Maildir requires. */
void mailfmt_maildir_info_format(struct buf *out, unsigned flags, uint32_t keywords);

/* ---- Dovecot side files ---- */

/*
 * dovecot-uidlist's first line: "3 V<uidvalidity> N<nextuid> ..." (version
 * 3) or "1 <uidvalidity> <nextuid>" (version 1). False when unreadable.
 */
bool mailfmt_uidlist_header(struct slice line, uint32_t *uidvalidity_r, uint32_t *nextuid_r);
/* A record "UID [fields] :BASE" (version 3) or "UID BASE" (version 1). */
bool mailfmt_uidlist_record(struct slice line, uint32_t *uid_r, struct slice *base_r);
/* dovecot-keywords: "INDEX NAME" with INDEX < MAILFMT_KEYWORDS_MAX. */
bool mailfmt_keywords_line(struct slice line, unsigned *index_r, struct slice *name_r);
/*
 * A Maildir++ folder ".A.B" as a store name "A/B" into out (reset first),
 * decoded from modified UTF-7 as Dovecot and Courier write it
 * (".Entw&APw-rfe" is "Entwürfe"; a name that is not strict modified UTF-7
 * is kept as written); false for names that are not folders ("..", "",
 * names with an empty level).
 */
bool mailfmt_maildir_folder(struct slice dirname, char sep, struct buf *out);
/* A folder name as Dovecot and Courier keep it on disk (Maildir++ folders,
 * the subscriptions file), decoded in place from modified UTF-7 when it is
 * strict modified UTF-7, else left as written. Export writes the other way
 * with mutf7_encode. */
void mailfmt_name_decode(struct buf *name);

#endif
