/*
 * routing_proto.h - the wire protocol of the routing engine on port 691.
 *
 * TLS from the first byte (certificates may be self-signed: trust comes from
 * the organization key). Inside it, the frames of ipc/frame.h (u32 length,
 * u16 type, u16 flags = 0, payload), types 600..699, payload fields written
 * with ipc_put_* (strings and bytes as u32 length + data, u64 big-endian):
 *
 *   HELLO      str org, str server, bytes nonce (32), u64 config serial
 *   AUTH       bytes mac (32): HMAC-SHA256(org key, "wharf-ls v1\0" ||
 *              TLS exporter("EXPORTER-wharf-ls", 32) || client nonce || server nonce ||
 *              client name "\0" || server name "\0" || role of the sender ('C' or 'S'))
 *   UPDATE     str JSON array of link-state records (route.h), 1..64
 *   ACK        str group, u64 seq
 *   KEEPALIVE  (empty)
 *   CONFIG     str the organization's configuration record (org.h)
 *   REPORT     str JSON array of the sender's live peers (member -> its group's master)
 *   ERROR      str code, str text; the sender closes after it
 *
 * The exporter binds the proof to this TLS session: it cannot be relayed to
 * another connection. Before AUTH verifies only HELLO and AUTH are accepted.
 * A frame over ROUTING_MAX_FRAME, with flags set, of an unknown type, with a
 * field short, missing or left over, ends the connection (ERROR BAD_FRAME).
 *
 * routing_msg_decode only reads; it never allocates beyond the JSON it parses
 * and never trusts a length it has not checked.
 */
#ifndef WHARF_ROUTING_ROUTING_PROTO_H
#define WHARF_ROUTING_ROUTING_PROTO_H

#include "base/buf.h"
#include "ipc/frame.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define ROUTING_MAX_FRAME (256 * 1024)
#define ROUTING_NONCE_LEN 32
#define ROUTING_MAC_LEN 32
#define ROUTING_MAX_RECORDS 64

enum routing_type {
    ROUTING_HELLO = 600,
    ROUTING_AUTH = 601,
    ROUTING_UPDATE = 602,
    ROUTING_ACK = 603,
    ROUTING_KEEPALIVE = 604,
    ROUTING_CONFIG = 605,
    ROUTING_REPORT = 606,
    ROUTING_ERROR = 607,
};

struct routing_msg {
    uint16_t type;
    struct slice a, b;                      /* org/server (HELLO), group (ACK), code/text (ERROR),
                                             * record (CONFIG) */
    unsigned char nonce[ROUTING_NONCE_LEN]; /* HELLO */
    unsigned char mac[ROUTING_MAC_LEN];     /* AUTH */
    uint64_t u;                             /* config serial (HELLO), seq (ACK) */
    json_t *json; /* UPDATE: the validated records; REPORT: the names (decref it) */
};

/* Decodes one frame strictly; false with err (the connection then closes). */
bool routing_msg_decode(const struct ipc_frame *f, struct routing_msg *m, struct buf *err);
void routing_msg_clear(struct routing_msg *m);

/* Encoders: one frame appended to out. */
void routing_put_hello(struct buf *out, const char *org, const char *server,
                       const unsigned char nonce[ROUTING_NONCE_LEN], uint64_t serial);
void routing_put_auth(struct buf *out, const unsigned char mac[ROUTING_MAC_LEN]);
void routing_put_str(struct buf *out, uint16_t type, const char *s); /* UPDATE, CONFIG, REPORT */
void routing_put_ack(struct buf *out, const char *group, uint64_t seq);
void routing_put_empty(struct buf *out, uint16_t type);
void routing_put_error(struct buf *out, const char *code, const char *text);

#endif
