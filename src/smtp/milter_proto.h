/*
 * milter_proto.h - the wire format of the Sendmail/Postfix mail filter
 * ("milter") protocol, version 6, from the MTA's side: the packets Wharf
 * sends to a filter (rspamd, OpenDKIM, ClamAV's milter...) and a strict
 * decoder of the packets a filter sends back.
 *
 * A packet is a 32-bit big-endian length, then one command byte, then
 * length-1 bytes of data. Strings inside are NUL-terminated.
 *
 * Pure code, no I/O: smtp_milter.c drives the conversation. The decoder
 * must never read past what it was given nor accept a packet longer than
 * the limit (a filter that sends one is cut off, never trusted).
 */
#ifndef WHARF_SMTP_MILTER_PROTO_H
#define WHARF_SMTP_MILTER_PROTO_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MILTER_VERSION 6u
#define MILTER_CHUNK_MAX 65535u /* largest body chunk a filter must accept */
#define MILTER_PACKET_MAX (1u << 20)

/* Commands, MTA to filter. */
enum {
    MILTER_C_ABORT = 'A',
    MILTER_C_BODY = 'B',
    MILTER_C_CONNECT = 'C',
    MILTER_C_MACRO = 'D',
    MILTER_C_BODYEOB = 'E',
    MILTER_C_HELO = 'H',
    MILTER_C_HEADER = 'L',
    MILTER_C_MAIL = 'M',
    MILTER_C_EOH = 'N',
    MILTER_C_OPTNEG = 'O',
    MILTER_C_QUIT = 'Q',
    MILTER_C_RCPT = 'R',
    MILTER_C_DATA = 'T',
};

/* Replies, filter to MTA. */
enum {
    MILTER_R_ADDRCPT = '+',
    MILTER_R_DELRCPT = '-',
    MILTER_R_ACCEPT = 'a',
    MILTER_R_REPLBODY = 'b',
    MILTER_R_CONTINUE = 'c',
    MILTER_R_DISCARD = 'd',
    MILTER_R_CHGFROM = 'e',
    MILTER_R_ADDHEADER = 'h',
    MILTER_R_INSHEADER = 'i',
    MILTER_R_SETSYMLIST = 'l',
    MILTER_R_CHGHEADER = 'm',
    MILTER_R_OPTNEG = 'O',
    MILTER_R_PROGRESS = 'p',
    MILTER_R_QUARANTINE = 'q',
    MILTER_R_REJECT = 'r',
    MILTER_R_SKIP = 's',
    MILTER_R_TEMPFAIL = 't',
    MILTER_R_REPLYCODE = 'y',
};

/* Actions a filter may take (offered in OPTNEG). */
#define MILTER_F_ADDHDRS 0x01u
#define MILTER_F_CHGHDRS 0x10u
#define MILTER_F_QUARANTINE 0x20u

/* Protocol flags: steps the filter does not want, replies it will not send. */
#define MILTER_P_NOCONNECT 0x01u
#define MILTER_P_NOHELO 0x02u
#define MILTER_P_NOMAIL 0x04u
#define MILTER_P_NORCPT 0x08u
#define MILTER_P_NOBODY 0x10u
#define MILTER_P_NOHDRS 0x20u
#define MILTER_P_NOEOH 0x40u
#define MILTER_P_NR_HDR 0x80u
#define MILTER_P_NODATA 0x200u
#define MILTER_P_SKIP 0x400u
#define MILTER_P_NR_CONN 0x1000u
#define MILTER_P_NR_HELO 0x2000u
#define MILTER_P_NR_MAIL 0x4000u
#define MILTER_P_NR_RCPT 0x8000u
#define MILTER_P_NR_DATA 0x10000u
#define MILTER_P_NR_EOH 0x40000u
#define MILTER_P_NR_BODY 0x80000u
#define MILTER_P_HDR_LEADSPC 0x100000u
/* What Wharf can do: skip any step, do without any reply, send header
 * values as they are (leading space included) when asked. */
#define MILTER_P_OFFERED 0x1FF7FFu

/* Appends one packet: length, cmd, data. */
void milter_packet(struct buf *out, char cmd, const void *data, size_t len);
/* Appends a packet whose data is the NUL-terminated strings given, ended by
 * a NULL (each string is written with its NUL). */
void milter_packet_strings(struct buf *out, int cmd, ...);
/* Appends the macros (name, value, name, value..., NULL) of a stage: the
 * command letter they go with (C, H, M, R, E...). */
void milter_packet_macros(struct buf *out, int stage, ...);

enum milter_take { MILTER_TAKE_MORE, MILTER_TAKE_OK, MILTER_TAKE_BAD };
/* One whole packet from the start of in (not consumed): its command, its
 * data, and in *used the bytes to consume. BAD: an empty or oversized one. */
enum milter_take milter_take(struct slice in, char *cmd, struct slice *data, size_t *used);

/* A filter's reply, decoded. Slices point into the packet's data. */
struct milter_reply {
    char cmd;
    uint32_t version, actions, protocol; /* OPTNEG */
    uint32_t index;                      /* INSHEADER, CHGHEADER */
    struct slice name, value;            /* header replies */
    struct slice text;                   /* REPLYCODE: "550 5.7.1 ...", QUARANTINE: reason */
};

/* False when the packet is malformed for its command (a missing NUL, a
 * REPLYCODE that is not a 4xx/5xx reply, a header name that is not a field
 * name...) or the command is unknown. */
bool milter_reply_parse(char cmd, struct slice data, struct milter_reply *r);

#endif
