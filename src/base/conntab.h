/*
 * conntab.h - connection counts shared by every worker process of wharfd:
 * totals per service and per client address, so that <service>_max_connections
 * and <service>_max_connections_per_ip hold for the whole server (what
 * Postfix's anvil and nginx's limit_conn zone do).
 *
 * The supervisor creates the table (a memfd, mmap'd MAP_SHARED) before it
 * starts any worker and hands each worker process the fd and a slot number
 * across the re-exec (base/component.h). A slot is one row of counters with a
 * single writer: the worker that holds it. Readers sum a key over every row
 * that is in use. Because a row is only ever written by its owner, a crashed
 * worker's counts are cleared at once by the supervisor (conntab_slot_clear)
 * once its process is gone: no count leaks, and a reload's new generation
 * takes fresh slots while the draining one keeps its own, so nothing is
 * counted twice or lost.
 *
 * Admission is optimistic and lock-free: the worker adds its connection to its
 * own row, then sums all rows; over the limit, it takes it back and refuses.
 * Two workers racing for the last place may both refuse; none ever admits past
 * the limit.
 *
 * Must never: hold a lock, make a syscall while counting, or trust a row it
 * does not own to stay still while it reads it.
 */
#ifndef WHARF_BASE_CONNTAB_H
#define WHARF_BASE_CONNTAB_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Rows: one per worker process, current and draining generations together. */
#define CONNTAB_MAX_SLOTS 1024
/* Inbound services named in the table (the services table has 12). */
#define CONNTAB_MAX_SERVICES 16
#define CONNTAB_SERVICE_NAME_MAX 16
/*
 * Distinct (service, address) pairs one worker process tracks at once: more
 * than the default max_connections of any component's services together
 * (http + https: 4000), so with defaults the table is never full. A power of two.
 */
#define CONNTAB_ADDRS_PER_SLOT 8192
/* Cells looked at for one key in one row: bounds the cost of a lookup. */
#define CONNTAB_MAX_PROBE 32

struct conntab;

/* What conntab_acquire decided. */
enum conntab_verdict {
    CONNTAB_OK,           /* admitted and counted */
    CONNTAB_OK_UNTRACKED, /* admitted, but this worker's address cells are full (fail open) */
    CONNTAB_TOO_MANY,     /* the service's total is at max_connections */
    CONNTAB_TOO_MANY_ADDR /* the address's total is at max_connections_per_ip */
};

/* What one admitted connection holds, given back with conntab_release. */
struct conntab_hold {
    int service; /* -1: nothing held */
    int cell;    /* index in the owner's row, -1: the address is not tracked */
};

/*
 * Supervisor: creates a table of n_slots rows (at most CONNTAB_MAX_SLOTS) for
 * the named services (at most CONNTAB_MAX_SERVICES, names shorter than
 * CONNTAB_SERVICE_NAME_MAX). NULL with err set on failure.
 */
struct conntab *conntab_create(unsigned n_slots, const char *const *services, size_t n_services,
                               struct buf *err);
/*
 * Worker: maps the table passed as fd, to write row slot; the table owns fd
 * from then on. NULL with err set if fd is not one (fd is left open).
 */
struct conntab *conntab_attach(int fd, unsigned slot, struct buf *err);
void conntab_free(struct conntab *t);
/* The table's memfd, to hand to a worker. */
int conntab_fd(const struct conntab *t);

/* The index of a service, or -1. */
int conntab_service(const struct conntab *t, const char *name);
size_t conntab_n_services(const struct conntab *t);
const char *conntab_service_name(const struct conntab *t, size_t i);

/* Supervisor: a free slot, zeroed and marked in use, or -1 when all are taken. */
int conntab_slot_claim(struct conntab *t);
/* Supervisor: zeroes a slot's counts once its process has exited; it stays in use. */
void conntab_slot_clear(struct conntab *t, unsigned slot);
/* Supervisor: zeroes and frees a slot. */
void conntab_slot_release(struct conntab *t, unsigned slot);

/*
 * The key of a client address for a service: IPv4 addresses whole, IPv6
 * addresses by their /64 (one customer's network, which can hand out 2^64
 * addresses), IPv4-mapped IPv6 as IPv4, anything else (unix sockets) as one
 * key. Never 0.
 */
uint64_t conntab_key(unsigned service, const struct sockaddr *sa);

/*
 * Worker: admits one connection of service from key in slot, against max
 * (the service's total) and per_addr (the key's total); 0 means no limit.
 */
enum conntab_verdict conntab_acquire(struct conntab *t, unsigned slot, unsigned service,
                                     uint64_t key, unsigned max, unsigned per_addr,
                                     struct conntab_hold *hold_r);
/* Worker: gives back what conntab_acquire counted. */
void conntab_release(struct conntab *t, unsigned slot, const struct conntab_hold *hold);

/*
 * After login: the key of (name, client address), name being e.g.
 * "imap\nalice@example.com", for per-(user, address) limits (Dovecot's
 * mail_max_userip_connections). The address part as in conntab_key. Never 0.
 */
uint64_t conntab_key_named(const char *name, const struct sockaddr *sa);
/*
 * Worker: counts one more on key alone (no service total) against max (0: no
 * limit). CONNTAB_OK with *cell_r >= 0 to give back with conntab_release_key;
 * CONNTAB_OK_UNTRACKED (fail open, *cell_r -1) when the row is full;
 * CONNTAB_TOO_MANY_ADDR when key is at max (nothing counted).
 */
enum conntab_verdict conntab_acquire_key(struct conntab *t, unsigned slot, uint64_t key,
                                         unsigned max, int *cell_r);
void conntab_release_key(struct conntab *t, unsigned slot, int cell);

/*
 * Eviction across workers. Each worker publishes, per service, the progress
 * stamp (monotonic_ms: CLOCK_MONOTONIC is one clock for every process) of its
 * pre-login connection that has made no progress for longest, or 0 for none;
 * a full worker with no idle stranger of its own finds the row holding the
 * oldest one, at most `before`, and asks that worker (over the bus) to close
 * it. -1 when no other row has one; else the slot, with *stamp_r.
 */
void conntab_set_idlest(struct conntab *t, unsigned slot, unsigned service, int64_t stamp);
int conntab_idlest_elsewhere(const struct conntab *t, unsigned slot, unsigned service,
                             int64_t before, int64_t *stamp_r);

/* Totals over all rows: of a service, and of a key. */
unsigned conntab_service_total(const struct conntab *t, unsigned service);
unsigned conntab_key_total(const struct conntab *t, uint64_t key);

#endif
