/*
 * store_blob.h - message bodies in append-only segment files (store internal).
 *
 * DIR/blobs/SEGMENT (16 hex digits) holds records appended one after the
 * other: a 48-byte header ("WBLB", u32 0, u64 length, SHA-256) and the body.
 * The metadata (which body lives at which segment and offset) is in the
 * database; a record the database does not name is dead space, reclaimed by
 * store_gc. Appends happen only while the caller holds the database's write
 * lock, so two processes never append at once. This file never decides what
 * is live: that is the database's job.
 */
#ifndef WHARF_STORE_BLOB_H
#define WHARF_STORE_BLOB_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>

#define BLOB_HEADER_SIZE 48
#define BLOB_HASH_HEX 65

struct blob_dir {
    char *path; /* DIR/blobs */
    bool fsync;
    int fd;         /* open segment for appends, or -1 */
    int64_t fd_seg; /* its number */
    bool dirty;     /* appended since the last sync */
    bool dir_dirty; /* a segment file was created since the last sync */
};

int blob_dir_open(struct blob_dir *b, const char *store_dir, bool fsync, struct buf *err);
void blob_dir_close(struct blob_dir *b);

/* Hex SHA-256 of data (OpenSSL EVP). */
void blob_hash_hex(struct slice data, char hex[BLOB_HASH_HEX]);

/* Size of a segment file; 0 when missing. */
uint64_t blob_segment_size(struct blob_dir *b, int64_t seg);
/* Appends one record to segment seg; *offset_r is where the body starts. */
int blob_append(struct blob_dir *b, int64_t seg, struct slice data, const char *hex,
                uint64_t *offset_r, struct buf *err);
/*
 * Makes every append since the last call durable (one fdatasync, plus the
 * folder if a segment was created) and closes the append fd: it is never
 * kept across transactions, since store_gc in another process may unlink
 * the segment between them.
 */
int blob_sync(struct blob_dir *b, struct buf *err);
/* Closes the append fd without syncing (after a rollback). */
void blob_release(struct blob_dir *b);
/* Reads a body; -1 with err when the segment is missing or short (errno kept). */
int blob_read(struct blob_dir *b, int64_t seg, uint64_t offset, uint64_t len, struct buf *out,
              struct buf *err);
void blob_segment_remove(struct blob_dir *b, int64_t seg);
/* Segment numbers present on disk, ascending (caller frees). */
int blob_segments(struct blob_dir *b, int64_t **segs_r, size_t *n_r, struct buf *err);

#endif
