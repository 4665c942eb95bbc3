/*
 * slab.c - the heap of connection-long objects (slab.h): size classes, each
 * served from 64 kB chunks of its own, carved out of one reserved range.
 *
 * A chunk starts with its header; its slots follow, handed out first from
 * the freed ones (a list through the slots), then from the never-used tail.
 * Each class keeps a list of its chunks that have a free slot. A chunk whose
 * last object goes is given back (MADV_DONTNEED) and its index kept for any
 * class. Under ASan, free slots are poisoned and the range is a root region
 * of the leak checker (pointers to malloc's objects are kept in it).
 */
#include "base/slab.h"

#include "base/alloc.h"
#include "base/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define SLAB_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
/* The leak checker scans the whole range at exit: keep it small. */
#define SLAB_RANGE ((size_t)64 << 20)
#else
#define SLAB_POISON(p, n) ((void)(p), (void)(n))
#define SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
/* Address space only (MAP_NORESERVE): 16,384 chunks, ~100,000 parked sessions. */
#define SLAB_RANGE ((size_t)1 << 30)
#endif

#define SLAB_CHUNK ((size_t)64 * 1024)
#define SLAB_CHUNKS (SLAB_RANGE / SLAB_CHUNK)
#define SLAB_HEADER 64

static const uint16_t class_size[] = {16,  32,  48,  64,  80,  96,  112, 128,  160,  192,  224, 256,
                                      320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 2048};
#define SLAB_CLASSES (sizeof(class_size) / sizeof(class_size[0]))

struct slab_chunk {
    struct slab_chunk *prev, *next; /* the class's chunks with a free slot */
    void *free;                     /* freed slots, linked through their first bytes */
    uint32_t cls, size, live, bump; /* bump: offset of the first never-used slot */
    bool listed;
};

static char *range;        /* SLAB_RANGE bytes, SLAB_CHUNK-aligned; NULL: not yet */
static bool unavailable;   /* the range could not be reserved: malloc only */
static size_t chunks_used; /* chunks ever carved (bump over the range) */
static uint32_t *spare;    /* indexes of chunks given back, reusable by any class */
static size_t n_spare;
static struct slab_chunk *partial[SLAB_CLASSES];
static size_t live_objects, live_chunks;
static size_t class_objects[SLAB_CLASSES], class_chunks[SLAB_CLASSES];

static bool slab_reserve(void)
{
    if (range)
        return true;
    if (unavailable)
        return false;
    size_t len = SLAB_RANGE + SLAB_CHUNK;
    char *m =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        log_warning("slab: cannot reserve %zu MB of address space; objects come from malloc",
                    SLAB_RANGE >> 20);
        unavailable = true;
        return false;
    }
    uintptr_t start = ((uintptr_t)m + SLAB_CHUNK - 1) & ~(uintptr_t)(SLAB_CHUNK - 1);
    if (start > (uintptr_t)m)
        munmap(m, start - (uintptr_t)m);
    munmap((char *)start + SLAB_RANGE, (uintptr_t)m + len - start - SLAB_RANGE);
    range = (char *)start;
    spare = xcalloc(SLAB_CHUNKS, sizeof(*spare));
#if defined(__SANITIZE_ADDRESS__)
    __lsan_register_root_region(range, SLAB_RANGE);
#endif
    return true;
}

bool slab_owns(const void *p)
{
    return range && (const char *)p >= range && (const char *)p < range + SLAB_RANGE;
}

static int size_class(size_t size)
{
    for (size_t i = 0; i < SLAB_CLASSES; i++) {
        if (size <= class_size[i])
            return (int)i;
    }
    return -1;
}

static void list_add(struct slab_chunk *ch)
{
    ch->prev = NULL;
    ch->next = partial[ch->cls];
    if (ch->next)
        ch->next->prev = ch;
    partial[ch->cls] = ch;
    ch->listed = true;
}

static void list_remove(struct slab_chunk *ch)
{
    if (ch->prev)
        ch->prev->next = ch->next;
    else
        partial[ch->cls] = ch->next;
    if (ch->next)
        ch->next->prev = ch->prev;
    ch->prev = ch->next = NULL;
    ch->listed = false;
}

/* A fresh chunk for class cls, or NULL when the range is full. */
static struct slab_chunk *chunk_new(unsigned cls)
{
    char *base;
    if (n_spare > 0)
        base = range + (size_t)spare[--n_spare] * SLAB_CHUNK;
    else if (chunks_used < SLAB_CHUNKS)
        base = range + chunks_used++ * SLAB_CHUNK;
    else
        return NULL;
    SLAB_UNPOISON(base, SLAB_CHUNK);
    struct slab_chunk *ch = (void *)base; /* chunks are SLAB_CHUNK-aligned */
    memset(ch, 0, sizeof(*ch));
    ch->cls = cls;
    ch->size = class_size[cls];
    ch->bump = SLAB_HEADER;
    live_chunks++;
    class_chunks[cls]++;
    list_add(ch);
    return ch;
}

static void *slot_take(struct slab_chunk *ch)
{
    void *p;
    if (ch->free) {
        p = ch->free;
        SLAB_UNPOISON(p, ch->size);
        ch->free = *(void **)p;
    } else {
        p = (char *)ch + ch->bump;
        ch->bump += ch->size;
    }
    ch->live++;
    live_objects++;
    class_objects[ch->cls]++;
    if (ch->free == NULL && ch->bump + ch->size > SLAB_CHUNK)
        list_remove(ch); /* full */
    return p;
}

void *slab_malloc(size_t size)
{
    int cls = size == 0 ? 0 : size_class(size);
    if (cls < 0 || !slab_reserve())
        return xmalloc(size);
    struct slab_chunk *ch = partial[cls];
    if (ch == NULL && (ch = chunk_new((unsigned)cls)) == NULL)
        return xmalloc(size); /* the range is full */
    return slot_take(ch);
}

void *slab_calloc(size_t nmemb, size_t size)
{
    if (size != 0 && nmemb > SIZE_MAX / size)
        log_panic("slab_calloc: %zu * %zu overflows", nmemb, size);
    size_t n = nmemb * size;
    void *p = slab_malloc(n);
    memset(p, 0, n);
    return p;
}

void slab_free(void *p)
{
    if (p == NULL)
        return;
    if (!slab_owns(p)) {
        free(p);
        return;
    }
    struct slab_chunk *ch = (struct slab_chunk *)((uintptr_t)p & ~(uintptr_t)(SLAB_CHUNK - 1));
    WHARF_ASSERT((char *)p >= (char *)ch + SLAB_HEADER && ch->live > 0 &&
                 ((char *)p - (char *)ch - SLAB_HEADER) % ch->size == 0);
    *(void **)p = ch->free;
    ch->free = p;
    SLAB_POISON(p, ch->size);
    ch->live--;
    live_objects--;
    class_objects[ch->cls]--;
    if (ch->live == 0) { /* the whole chunk goes back to the kernel */
        if (ch->listed)
            list_remove(ch);
        live_chunks--;
        class_chunks[ch->cls]--;
        spare[n_spare++] = (uint32_t)(((char *)ch - range) / SLAB_CHUNK);
        madvise(ch, SLAB_CHUNK, MADV_DONTNEED);
        SLAB_POISON(ch, SLAB_CHUNK);
        return;
    }
    if (!ch->listed)
        list_add(ch);
}

void *slab_realloc(void *p, size_t size)
{
    if (p == NULL)
        return slab_malloc(size);
    if (!slab_owns(p))
        return xrealloc(p, size);
    struct slab_chunk *ch = (struct slab_chunk *)((uintptr_t)p & ~(uintptr_t)(SLAB_CHUNK - 1));
    if (size <= ch->size)
        return p;
    void *n = slab_malloc(size); /* a larger class, or malloc beyond SLAB_MAX */
    memcpy(n, p, ch->size);
    slab_free(p);
    return n;
}

size_t slab_bytes(void)
{
    return live_chunks * SLAB_CHUNK;
}

size_t slab_objects(void)
{
    return live_objects;
}

bool slab_class_stats(size_t i, size_t *size_r, size_t *objects_r, size_t *chunks_r)
{
    if (i >= SLAB_CLASSES)
        return false;
    *size_r = class_size[i];
    *objects_r = class_objects[i];
    *chunks_r = class_chunks[i];
    return true;
}
