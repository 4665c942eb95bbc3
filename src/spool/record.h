/*
 * record.h - length-prefixed records, the framing of the spool and maildrop
 * files: u8 type, u32 big-endian length, that many bytes.
 *
 * Never a text format: attacker data (addresses, message bytes) can only
 * ever be the bytes of one record. The reader never trusts a length beyond
 * the bytes it was handed; a short record is damage, not "need more".
 */
#ifndef WHARF_SPOOL_RECORD_H
#define WHARF_SPOOL_RECORD_H

#include "base/buf.h"

#include <stdint.h>
#include <sys/uio.h>

/* Bytes a record adds around its value: type and length. */
#define RECORD_HEAD 5

void record_put(struct buf *b, char type, const void *p, size_t len);
/* A string record; nothing at all when s is NULL. */
void record_put_str(struct buf *b, char type, const char *s);
void record_put_u8(struct buf *b, char type, uint8_t v);
void record_put_u32(struct buf *b, char type, uint32_t v);
void record_put_u64(struct buf *b, char type, uint64_t v);

uint32_t record_get_u32(const void *p);
uint64_t record_get_u64(const void *p);

struct record_reader {
    const unsigned char *p, *end;
};

static inline struct record_reader record_reader_make(const void *data, size_t len)
{
    return (struct record_reader){data, (const unsigned char *)data + len};
}

/* 1: the next record is in *type_r, *value_r (pointing into the input);
 * 0: the input is used up; -1: a truncated record (the file is damaged). */
int record_next(struct record_reader *r, char *type_r, struct slice *value_r);

/* Reads the whole of fd into out; -1 with err when reading fails or the file
 * is larger than max (never allocates more than max). */
int record_read_fd(int fd, uint64_t max, struct buf *out, struct buf *err);

#endif
