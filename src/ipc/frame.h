/*
 * frame.h - typed, length-prefixed frames between Wharf's processes.
 *
 * Wire format of one frame (all integers big-endian):
 *     u32 length   of the payload, not counting this 8-byte header
 *     u16 type     one of enum ipc_type
 *     u16 flags    must be 0 (reserved)
 *     payload      length bytes
 * A frame longer than the receiver's limit, a non-zero flags field or a short
 * read at end of stream ends the connection: frames are never guessed at.
 *
 * Payloads are sequences of fields written with ipc_put_* and read back in
 * the same order with ipc_get_*; a reader that runs past the end fails and the
 * whole frame is rejected. Control requests from the wharf command carry JSON.
 */
#ifndef WHARF_IPC_FRAME_H
#define WHARF_IPC_FRAME_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_HEADER_SIZE 8

enum ipc_type {
    /* supervisor <-> component (1..99) */
    IPC_HELLO = 1,          /* component -> supervisor: str component, u64 pid */
    IPC_STATUS_REQUEST = 2, /* supervisor -> component: empty */
    IPC_STATUS = 3,         /* component -> supervisor: JSON object (connections, ...) */
    IPC_SHUTDOWN = 4,       /* supervisor -> component: u64 deadline_ms; stop accepting, drain */
    IPC_EVENT = 5,          /* either way: a typed event (ipc/event.h); relayed to subscribers */
    IPC_SUBSCRIBE = 6,      /* component -> supervisor: which events it wants (ipc/event.h) */
    IPC_STATUS_ALL_REQUEST = 7, /* component -> supervisor: u64 id (http's /metrics) */
    IPC_STATUS_ALL = 8,         /* supervisor -> component: u64 id, str `wharf status --json` */
    IPC_ADMIN_REQUEST = 9,      /* http -> supervisor: u64 id, str JSON admin API request */
    IPC_ADMIN_REPLY = 10, /* supervisor -> http: u64 id, str JSON {"status": N, "body": ...} */
    /* wharf command <-> supervisor over the control socket (100..199) */
    IPC_CTL_REQUEST = 100, /* JSON {"cmd": "...", ...} */
    IPC_CTL_REPLY = 101,   /* JSON {"ok": true, ...} or {"ok": false, "error": "..."} */
    /* worker <-> auth (200..299) */
    IPC_AUTH_REQUEST = 200,
    IPC_AUTH_REPLY = 201,
    IPC_AUTH_ADMIN_REQUEST = 202, /* wharf auth -> auth: JSON {"cmd": "bans"|"unban", ...} */
    IPC_AUTH_ADMIN_REPLY = 203,   /* JSON {"ok": true, ...} or {"ok": false, "error": "..."} */
    /* deliver / mta (300..399) */
    IPC_DELIVER_REQUEST = 300,
    IPC_DELIVER_REPLY = 301,
    /* worker <-> directory (400..499): directory/directory_proto.h */
    IPC_DIRECTORY_LOOKUP = 400,
    IPC_DIRECTORY_ANSWER = 401,
    /* routing peers on 691, inside TLS (600..699): routing/routing_proto.h */
};

struct ipc_frame {
    uint16_t type;
    const char *payload; /* points into the receive buffer */
    size_t len;
};

enum ipc_parse_result {
    IPC_PARSE_NEED_MORE,
    IPC_PARSE_OK,
    IPC_PARSE_ERROR, /* oversized or malformed: close the connection */
};

/* Appends one frame to out. */
void ipc_frame_encode(struct buf *out, uint16_t type, const void *payload, size_t len);

/*
 * Looks for one complete frame at the start of data. On IPC_PARSE_OK fills
 * frame and *consumed_r (header plus payload).
 */
enum ipc_parse_result ipc_frame_parse(const void *data, size_t len, size_t max_payload,
                                      struct ipc_frame *frame, size_t *consumed_r);

/* Blocking helpers for simple clients (the wharf command, tests). */
int ipc_send(int fd, uint16_t type, const void *payload, size_t len);
/* Reads one frame into payload (reset first). Returns 0, or -1 on EOF/error/oversize. */
int ipc_recv(int fd, size_t max_payload, uint16_t *type_r, struct buf *payload);

/* A blocking connection to the unix socket at path (close-on-exec); -1 with errno. */
int ipc_connect(const char *path);

/* Field writers and readers for payloads. */
void ipc_put_u64(struct buf *b, uint64_t v);
void ipc_put_str(struct buf *b, const char *s);
void ipc_put_bytes(struct buf *b, const void *p, size_t len);

struct ipc_reader {
    const unsigned char *p;
    size_t left;
    bool failed; /* sticky: any short read sets it */
};

void ipc_reader_init(struct ipc_reader *r, const void *payload, size_t len);
uint64_t ipc_get_u64(struct ipc_reader *r);
/* The slice points into the payload; it is not NUL-terminated. */
struct slice ipc_get_bytes(struct ipc_reader *r);
/* True when every field was read and nothing is left over. */
bool ipc_reader_done(const struct ipc_reader *r);

#endif
