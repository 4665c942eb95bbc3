/*
 * conntab.c - the shared connection-count table (see conntab.h).
 *
 * Layout of the mapping: a header (magic, sizes, service names), then one row
 * per slot. A row holds the slot's connections per service and an open-address
 * hash of cells, each one 64-bit word: the key in the high 40 bits, the count
 * in the low 24, so a reader always sees a key with its own count. Cells never
 * go back to empty: a cell whose count fell to 0 is reused by the next new key
 * of its probe window, so a lookup stops at the first empty cell or after
 * CONNTAB_MAX_PROBE cells.
 */
#include "base/conntab.h"
#include "base/alloc.h"
#include "base/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONNTAB_MAGIC 0x57434e54u /* "WCNT" */
#define CONNTAB_VERSION 2u
#define COUNT_BITS 24
#define COUNT_MASK ((UINT64_C(1) << COUNT_BITS) - 1)
#define KEY_BITS (64 - COUNT_BITS)

struct conntab_row {
    _Atomic uint32_t in_use;
    _Atomic uint32_t services[CONNTAB_MAX_SERVICES];
    uint32_t pad0;
    _Atomic int64_t idlest[CONNTAB_MAX_SERVICES]; /* conntab_set_idlest; 0: none */
    uint32_t pad[14];                             /* cells start on their own cache line */
    _Atomic uint64_t cells[CONNTAB_ADDRS_PER_SLOT];
};
_Static_assert(offsetof(struct conntab_row, cells) % 64 == 0, "cells on a cache line");

struct conntab_shm {
    uint32_t magic, version, n_slots, n_services;
    char services[CONNTAB_MAX_SERVICES][CONNTAB_SERVICE_NAME_MAX];
    struct conntab_row rows[];
};

/*
 * Sizes and names are copied out of the mapping once: every worker can write
 * to it, and wharfd (root) must never size a loop or read a string by what a
 * worker may have scribbled there.
 */
struct conntab {
    int fd;
    size_t size;
    unsigned n_slots, n_services;
    char services[CONNTAB_MAX_SERVICES][CONNTAB_SERVICE_NAME_MAX];
    struct conntab_shm *shm;
};

static size_t shm_size(unsigned n_slots)
{
    return sizeof(struct conntab_shm) + (size_t)n_slots * sizeof(struct conntab_row);
}

/* Takes the sizes and names of the header into private memory. */
static void copy_header(struct conntab *t)
{
    t->n_slots = t->shm->n_slots;
    t->n_services = t->shm->n_services;
    memcpy(t->services, t->shm->services, sizeof(t->services));
    for (unsigned i = 0; i < CONNTAB_MAX_SERVICES; i++)
        t->services[i][CONNTAB_SERVICE_NAME_MAX - 1] = '\0';
}

static struct conntab *map_fd(int fd, size_t size, struct buf *err)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        buf_printf(err, "connection table: mmap: %s", strerror(errno));
        return NULL;
    }
    struct conntab *t = xcalloc(1, sizeof(*t));
    t->fd = fd;
    t->size = size;
    t->shm = p;
    return t;
}

struct conntab *conntab_create(unsigned n_slots, const char *const *services, size_t n_services,
                               struct buf *err)
{
    if (n_slots == 0 || n_slots > CONNTAB_MAX_SLOTS || n_services > CONNTAB_MAX_SERVICES) {
        buf_printf(err, "connection table: %u slots, %zu services is out of range", n_slots,
                   n_services);
        return NULL;
    }
    int fd = memfd_create("wharf-conntab", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        buf_printf(err, "connection table: memfd_create: %s", strerror(errno));
        return NULL;
    }
    size_t size = shm_size(n_slots);
    struct conntab *t = NULL;
    /* Sealed at its size: a worker that shrank it would make wharfd fault (SIGBUS). */
    if (ftruncate(fd, (off_t)size) != 0)
        buf_printf(err, "connection table: ftruncate: %s", strerror(errno));
    else if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        buf_printf(err, "connection table: sealing: %s", strerror(errno));
    else
        t = map_fd(fd, size, err);
    if (t == NULL) {
        close(fd);
        return NULL;
    }
    t->shm->magic = CONNTAB_MAGIC;
    t->shm->version = CONNTAB_VERSION;
    t->shm->n_slots = n_slots;
    t->shm->n_services = (uint32_t)n_services;
    for (size_t i = 0; i < n_services; i++) {
        if (strlen(services[i]) >= CONNTAB_SERVICE_NAME_MAX) {
            buf_printf(err, "connection table: service name '%s' is too long", services[i]);
            conntab_free(t);
            return NULL;
        }
        memcpy(t->shm->services[i], services[i], strlen(services[i]) + 1);
    }
    copy_header(t);
    return t;
}

struct conntab *conntab_attach(int fd, unsigned slot, struct buf *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct conntab_shm)) {
        buf_printf(err, "connection table: fd %d is not one", fd);
        return NULL;
    }
    struct conntab *t = map_fd(fd, (size_t)st.st_size, err);
    if (t == NULL)
        return NULL;
    copy_header(t);
    if (t->shm->magic != CONNTAB_MAGIC || t->shm->version != CONNTAB_VERSION ||
        t->n_slots > CONNTAB_MAX_SLOTS || t->n_services > CONNTAB_MAX_SERVICES ||
        shm_size(t->n_slots) != t->size || slot >= t->n_slots) {
        buf_printf(err, "connection table: fd %d has a bad header or no slot %u", fd, slot);
        munmap(t->shm, t->size); /* the fd stays the caller's */
        free(t);
        return NULL;
    }
    return t;
}

void conntab_free(struct conntab *t)
{
    if (t == NULL)
        return;
    munmap(t->shm, t->size);
    close(t->fd);
    free(t);
}

int conntab_fd(const struct conntab *t)
{
    return t->fd;
}

int conntab_service(const struct conntab *t, const char *name)
{
    for (unsigned i = 0; i < t->n_services; i++) {
        if (strcmp(t->services[i], name) == 0)
            return (int)i;
    }
    return -1;
}

size_t conntab_n_services(const struct conntab *t)
{
    return t->n_services;
}

const char *conntab_service_name(const struct conntab *t, size_t i)
{
    return t->services[i];
}

/* ---- slots (supervisor) ---- */

static void row_zero(struct conntab_row *r)
{
    for (size_t i = 0; i < CONNTAB_MAX_SERVICES; i++) {
        atomic_store_explicit(&r->services[i], 0, memory_order_relaxed);
        atomic_store_explicit(&r->idlest[i], 0, memory_order_relaxed);
    }
    for (size_t i = 0; i < CONNTAB_ADDRS_PER_SLOT; i++) {
        if (atomic_load_explicit(&r->cells[i], memory_order_relaxed) != 0)
            atomic_store_explicit(&r->cells[i], 0, memory_order_relaxed);
    }
    atomic_thread_fence(memory_order_release);
}

int conntab_slot_claim(struct conntab *t)
{
    for (unsigned s = 0; s < t->n_slots; s++) {
        struct conntab_row *r = &t->shm->rows[s];
        if (atomic_load(&r->in_use) == 0) {
            row_zero(r);
            atomic_store(&r->in_use, 1);
            return (int)s;
        }
    }
    return -1;
}

void conntab_slot_clear(struct conntab *t, unsigned slot)
{
    row_zero(&t->shm->rows[slot]);
}

void conntab_slot_release(struct conntab *t, unsigned slot)
{
    row_zero(&t->shm->rows[slot]);
    atomic_store(&t->shm->rows[slot].in_use, 0);
}

/* ---- keys and cells ---- */

/* Hashes the address part of a key onto h. */
static uint64_t key_addr(uint64_t h, const struct sockaddr *sa)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned char fam = 0;
    const void *addr = NULL;
    size_t len = 0;
    if (sa->sa_family == AF_INET) {
        fam = 4;
        /* by offset: a struct sockaddr * carries no promise of sockaddr_in alignment */
        addr = (const unsigned char *)sa + offsetof(struct sockaddr_in, sin_addr);
        len = 4;
    } else if (sa->sa_family == AF_INET6) {
        const unsigned char *a =
            (const unsigned char *)sa + offsetof(struct sockaddr_in6, sin6_addr);
        if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
            fam = 4;
            addr = a + 12;
            len = 4;
        } else {
            fam = 6;
            addr = a;
            len = 8; /* the /64 */
        }
    }
    h = hash_fnv1a(h, &fam, 1);
    h = hash_fnv1a(h, addr, len);
    return h;
}

uint64_t conntab_key(unsigned service, const struct sockaddr *sa)
{
    uint64_t h = hash_fnv1a(HASH_FNV1A_BASIS, &service, sizeof(service));
    uint64_t key = key_addr(h, sa) >> COUNT_BITS;
    return key ? key : 1;
}

uint64_t conntab_key_named(const char *name, const struct sockaddr *sa)
{
    /* A different basis from conntab_key's: a name never hashes like a service number. */
    uint64_t h = hash_fnv1a(UINT64_C(0x9e3779b97f4a7c15), name, strlen(name) + 1);
    uint64_t key = key_addr(h, sa) >> COUNT_BITS;
    return key ? key : 1;
}

static uint64_t cell_key(uint64_t word)
{
    return word >> COUNT_BITS;
}

static unsigned cell_count(uint64_t word)
{
    return (unsigned)(word & COUNT_MASK);
}

static size_t probe_start(uint64_t key)
{
    return (size_t)(key % CONNTAB_ADDRS_PER_SLOT);
}

/* The cell of key in row r, or -1. Safe on a row another process writes. */
static int row_find(const struct conntab_row *r, uint64_t key)
{
    size_t at = probe_start(key);
    for (size_t i = 0; i < CONNTAB_MAX_PROBE; i++) {
        size_t c = (at + i) % CONNTAB_ADDRS_PER_SLOT;
        uint64_t w = atomic_load_explicit(&r->cells[c], memory_order_acquire);
        if (w == 0)
            return -1;
        if (cell_key(w) == key)
            return (int)c;
    }
    return -1;
}

/* Owner only: the cell of key in its row, taking an empty or zero cell; -1 when full. */
static int row_take(struct conntab_row *r, uint64_t key)
{
    int c = row_find(r, key);
    if (c >= 0)
        return c;
    size_t at = probe_start(key);
    for (size_t i = 0; i < CONNTAB_MAX_PROBE; i++) {
        size_t idx = (at + i) % CONNTAB_ADDRS_PER_SLOT;
        uint64_t w = atomic_load_explicit(&r->cells[idx], memory_order_relaxed);
        if (cell_count(w) == 0) {
            atomic_store_explicit(&r->cells[idx], key << COUNT_BITS, memory_order_release);
            return (int)idx;
        }
    }
    return -1;
}

/* Owner only: adds d (+1 or -1) to a cell's count. */
static void cell_add(struct conntab_row *r, int c, int d)
{
    uint64_t w = atomic_load_explicit(&r->cells[c], memory_order_relaxed);
    atomic_store_explicit(&r->cells[c], (uint64_t)((int64_t)w + d), memory_order_release);
}

unsigned conntab_service_total(const struct conntab *t, unsigned service)
{
    unsigned n = 0;
    for (unsigned s = 0; s < t->n_slots; s++) {
        const struct conntab_row *r = &t->shm->rows[s];
        if (atomic_load_explicit(&r->in_use, memory_order_acquire))
            n += atomic_load_explicit(&r->services[service], memory_order_acquire);
    }
    return n;
}

unsigned conntab_key_total(const struct conntab *t, uint64_t key)
{
    unsigned n = 0;
    for (unsigned s = 0; s < t->n_slots; s++) {
        const struct conntab_row *r = &t->shm->rows[s];
        if (!atomic_load_explicit(&r->in_use, memory_order_acquire))
            continue;
        int c = row_find(r, key);
        if (c >= 0)
            n += cell_count(atomic_load_explicit(&r->cells[c], memory_order_acquire));
    }
    return n;
}

enum conntab_verdict conntab_acquire(struct conntab *t, unsigned slot, unsigned service,
                                     uint64_t key, unsigned max, unsigned per_addr,
                                     struct conntab_hold *hold_r)
{
    struct conntab_row *r = &t->shm->rows[slot];
    *hold_r = (struct conntab_hold){.service = -1, .cell = -1};
    /* Count first, then look: the sum then includes everyone who got in before us. */
    atomic_fetch_add_explicit(&r->services[service], 1, memory_order_relaxed);
    /* Our add is visible before we read the others' (store-load order, both sides). */
    atomic_thread_fence(memory_order_seq_cst);
    if (max && conntab_service_total(t, service) > max) {
        atomic_fetch_sub_explicit(&r->services[service], 1, memory_order_release);
        return CONNTAB_TOO_MANY;
    }
    hold_r->service = (int)service;
    int c = row_take(r, key);
    if (c < 0)
        return CONNTAB_OK_UNTRACKED;
    cell_add(r, c, +1);
    atomic_thread_fence(memory_order_seq_cst);
    if (per_addr && conntab_key_total(t, key) > per_addr) {
        cell_add(r, c, -1);
        atomic_fetch_sub_explicit(&r->services[service], 1, memory_order_release);
        hold_r->service = -1;
        return CONNTAB_TOO_MANY_ADDR;
    }
    hold_r->cell = c;
    return CONNTAB_OK;
}

void conntab_release(struct conntab *t, unsigned slot, const struct conntab_hold *hold)
{
    struct conntab_row *r = &t->shm->rows[slot];
    if (hold->service < 0)
        return;
    if (hold->cell >= 0)
        cell_add(r, hold->cell, -1);
    atomic_fetch_sub_explicit(&r->services[hold->service], 1, memory_order_release);
}

enum conntab_verdict conntab_acquire_key(struct conntab *t, unsigned slot, uint64_t key,
                                         unsigned max, int *cell_r)
{
    struct conntab_row *r = &t->shm->rows[slot];
    *cell_r = -1;
    int c = row_take(r, key);
    if (c < 0)
        return CONNTAB_OK_UNTRACKED;
    cell_add(r, c, +1);
    atomic_thread_fence(memory_order_seq_cst);
    if (max && conntab_key_total(t, key) > max) {
        cell_add(r, c, -1);
        return CONNTAB_TOO_MANY_ADDR;
    }
    *cell_r = c;
    return CONNTAB_OK;
}

void conntab_release_key(struct conntab *t, unsigned slot, int cell)
{
    if (cell >= 0)
        cell_add(&t->shm->rows[slot], cell, -1);
}

/* ---- the idlest stranger of each row ---- */

void conntab_set_idlest(struct conntab *t, unsigned slot, unsigned service, int64_t stamp)
{
    atomic_store_explicit(&t->shm->rows[slot].idlest[service], stamp, memory_order_relaxed);
}

int conntab_idlest_elsewhere(const struct conntab *t, unsigned slot, unsigned service,
                             int64_t before, int64_t *stamp_r)
{
    int best = -1;
    int64_t oldest = before + 1;
    for (unsigned i = 0; i < t->n_slots; i++) {
        const struct conntab_row *r = &t->shm->rows[i];
        if (i == slot || !atomic_load_explicit(&r->in_use, memory_order_relaxed))
            continue;
        int64_t s = atomic_load_explicit(&r->idlest[service], memory_order_relaxed);
        if (s > 0 && s < oldest) {
            best = (int)i;
            oldest = s;
        }
    }
    if (best >= 0)
        *stamp_r = oldest;
    return best;
}
