/*
 * slab.h - a heap of its own for what lives as long as a connection.
 *
 * A quiet connection (IMAP IDLE, an EventSource stream, a front-end's splice)
 * keeps a few small objects for hours: its struct, its parked TLS state, a
 * bufferevent. In glibc's heap they sit between the kilobytes of the TLS
 * handshake that were freed around them, and each keeps a whole page
 * resident (malloc_trim can give back only pages with nothing live on them):
 * ~30 kB a parked session for ~4 kB of objects. Allocated here instead, they
 * are packed in 64 kB chunks of one size class each, away from the
 * handshake's garbage.
 *
 * Objects up to SLAB_MAX bytes come from chunks carved out of one address
 * range reserved at first use (MAP_NORESERVE: only what is touched is
 * resident); a chunk whose last object is freed is given back to the kernel
 * (MADV_DONTNEED) and reused by any class. Larger objects, or all of them
 * when the range cannot be reserved or is full, come from malloc:
 * slab_free() and slab_realloc() tell the two apart by address, so any
 * pointer from either may be given to them.
 *
 * Must never: be used from more than one thread (it takes no lock; the event
 * loop's thread owns it), return NULL (out of memory aborts, as alloc.h), or
 * hand out an object that is still live.
 */
#ifndef WHARF_BASE_SLAB_H
#define WHARF_BASE_SLAB_H

#include <stdbool.h>
#include <stddef.h>

/* The largest object served from the slab's own chunks. */
#define SLAB_MAX 2048

/* nmemb * size zeroed bytes (aborting on overflow and out of memory). */
void *slab_calloc(size_t nmemb, size_t size);
/* Like slab_calloc(1, size), not zeroed. */
void *slab_malloc(size_t size);
/* realloc for a pointer from either heap; a slab object stays in the slab
 * while it fits SLAB_MAX. */
void *slab_realloc(void *p, size_t size);
/* free() for a pointer from either heap; NULL is ignored. */
void slab_free(void *p);
/* p is one of the slab's own objects (not malloc's). */
bool slab_owns(const void *p);
/* Bytes of the slab's chunks in use (resident at most), for status. */
size_t slab_bytes(void);
/* Live objects in the slab's own chunks. */
size_t slab_objects(void);
/* Per size class, for status (where a quiet connection's bytes go): the
 * class's slot size and its live objects and chunks; false past the last
 * class (i from 0). */
bool slab_class_stats(size_t i, size_t *size_r, size_t *objects_r, size_t *chunks_r);

#endif
