/*
 * import.h - what the `wharf import` readers share (cmd_import.c,
 * cmd_import_imap.c): a batch of messages stored through the store's one
 * write path (store_deliver), with progress and a summary.
 *
 * Memory is bounded by the batch (IMPORT_BATCH_MESSAGES, IMPORT_BATCH_BYTES)
 * plus one message: a reader hands over each message as soon as it has it.
 * Never bypasses the store (no SQL, no segment writes here): the store's
 * write lock and durability order are what make an import safe while
 * wharfd runs.
 */
#ifndef WHARF_CLI_IMPORT_H
#define WHARF_CLI_IMPORT_H

#include "base/buf.h"
#include "base/config.h"
#include "cli/cli.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* One commit (one fdatasync + one WAL fsync) per this many messages or bytes:
 * large enough to amortise the two fsyncs, small enough that the mta's own
 * deliveries never wait long for the store's write lock. */
#define IMPORT_BATCH_MESSAGES 256
#define IMPORT_BATCH_BYTES (16u * 1024 * 1024)
/* The largest single message an import accepts (old mailboxes hold big
 * attachments the SMTP limit would refuse; the store keeps one in memory). */
#define IMPORT_MESSAGE_MAX (512u * 1024 * 1024)

struct import_item {
    struct buf data; /* CRLF line ends */
    char *mailbox;
    char *keywords; /* NULL: none */
    unsigned flags;
    int64_t internaldate;
    uint32_t uid; /* 0: the next one */
};

struct import_batch {
    struct store *store;
    const struct wharf_config *cfg;
    const char *owner;
    struct import_item items[IMPORT_BATCH_MESSAGES];
    size_t n;
    size_t bytes;
    /* totals for progress and the summary */
    uint64_t imported, skipped, failed, imported_bytes, folders;
    int64_t start_us, last_progress_us; /* monotonic_us() */
    const char *what;                   /* current folder, for progress lines */
};

void import_batch_init(struct import_batch *b, struct store *s, const struct wharf_config *cfg,
                       const char *owner);
/*
 * Queues one message (data is taken over and reset; line ends are made CRLF
 * here); flushes when the batch is full. Returns 0, or -1 after printing the
 * store's error (the import stops: nothing of the failed batch is stored).
 */
int import_batch_add(struct import_batch *b, const char *mailbox, struct buf *data, unsigned flags,
                     const char *keywords, int64_t internaldate, uint32_t uid);
/* Stores what is queued (one transaction) and tells IMAP sessions (bus event). */
int import_batch_flush(struct import_batch *b);
/* Prints the summary line on stdout and frees the batch. */
void import_batch_finish(struct import_batch *b, const char *kind);

/* Tells running IMAP/POP3 sessions that owner's mailbox changed (no-op when wharfd is down). */
void import_notify(const struct wharf_config *cfg, const char *owner, const char *mailbox);

/* wharf import imap (cmd_import_imap.c). */
int import_imap(struct cli_ctx *ctx, struct store *s, const char *owner, int argc, char **argv);

#endif
