/*
 * mime.h - RFC 5322 / MIME message parser: the structure of a message held in
 * memory, with exact byte offsets, plus field access, decoders, addresses and
 * the IMAP wire forms (ENVELOPE, BODYSTRUCTURE, sections) built on it.
 *
 * The parser works over a complete message (struct slice) that the caller
 * keeps alive and unchanged while the struct mime_message is in use: every
 * offset and most slices point into it. It makes one pass over the bytes,
 * copies no body, and allocates in proportion to the number of parts and
 * header fields, both bounded by struct mime_limits. It never fails: any
 * input, however malformed, gives a best-effort tree (see doc/mime.md).
 * It must never recurse deeper than limits.max_depth nor read outside data.
 *
 * Offsets are byte offsets into the original data. Line breaks may be CRLF or
 * bare LF; sizes meant for IMAP (*_crlf helpers) count each bare LF as two
 * octets, as a server that sends the message in CRLF form must.
 */
#ifndef WHARF_MIME_MIME_H
#define WHARF_MIME_MIME_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Default limits; the options mime_max_depth, mime_max_parts and
 * mime_max_header_fields in options.def say why. */
#define MIME_DEFAULT_MAX_DEPTH 32
#define MIME_DEFAULT_MAX_PARTS 5000
#define MIME_DEFAULT_MAX_FIELDS 5000

struct mime_limits {
    unsigned max_depth;  /* nesting of multipart and message/rfc822 parts */
    unsigned max_parts;  /* parts in the whole tree, the root included */
    unsigned max_fields; /* header fields indexed in the whole tree */
};

/* Flags on struct mime_message: what the parser had to repair or cut. */
enum {
    MIME_MSG_DEPTH_LIMIT = 1 << 0,  /* a part nested too deep was kept as a leaf */
    MIME_MSG_PARTS_LIMIT = 1 << 1,  /* part limit hit: the rest is one body */
    MIME_MSG_FIELDS_LIMIT = 1 << 2, /* some header fields were not indexed */
    MIME_MSG_UNTERMINATED = 1 << 3, /* a multipart had no close delimiter */
    MIME_MSG_NO_BOUNDARY = 1 << 4,  /* multipart/ without a usable boundary */
};

enum mime_kind {
    MIME_LEAF,      /* any single-part body */
    MIME_MULTIPART, /* children are the body parts */
    MIME_MESSAGE,   /* message/rfc822 (or global): one child, the encapsulated message */
};

/* One header field; offsets into the message data. */
struct mime_field {
    size_t start;       /* first byte of the name */
    size_t name_len;    /* name without white space before the colon */
    size_t value_start; /* first byte after the colon */
    size_t value_len;   /* raw value, folding kept, final line break excluded */
};

struct mime_part {
    struct mime_part *parent;
    struct mime_part *children;   /* first child */
    struct mime_part *next;       /* next sibling */
    struct mime_part *last_child; /* private to the parser */
    unsigned nchildren;
    unsigned depth; /* root = 0 */
    enum mime_kind kind;
    bool has_ctype; /* a parsable Content-Type was present */

    /* Header: from hdr_start up to body_start, the empty line included. A
     * header without an empty line (cut by EOF or a boundary) still ends
     * where the body starts; the body is then empty. */
    size_t hdr_start, hdr_len;
    size_t body_start, body_len;
    size_t hdr_bare_lf, body_bare_lf; /* LFs not preceded by CR */
    size_t body_lines;                /* LFs in the body (IMAP body-fld-lines) */

    /* Media type from Content-Type (not case-folded), pointing into the
     * data; "text"/"plain" (or "message"/"rfc822" in multipart/digest) when
     * absent or unparsable. */
    struct slice type, subtype;

    /* Index range in struct mime_message.fields. */
    size_t field_first, field_count;
    /* private to the parser: counters at the body start */
    size_t lf_at_body, bare_at_body;
};

struct mime_message {
    struct slice data;
    struct mime_part *root;
    size_t nparts;
    struct mime_field *fields;
    size_t nfields;
    unsigned flags;
    struct mime_part_block *blocks; /* private: storage of the parts */
    size_t fields_cap;              /* private */
};

/* ---- structure (mime_parse.c) ---- */

/* Fills limits with the defaults. */
void mime_limits_default(struct mime_limits *limits_r);
/* Fills limits from the mime_* options of a loaded configuration. */
struct wharf_config;
void mime_limits_from_config(struct mime_limits *limits_r, const struct wharf_config *cfg);
/* Parses data (kept alive by the caller). limits NULL: defaults. Never fails. */
void mime_parse(struct mime_message *msg_r, struct slice data, const struct mime_limits *limits);
void mime_message_free(struct mime_message *msg);
/* Sizes as IMAP reports them (each bare LF counted as CRLF). */
static inline size_t mime_part_body_size_crlf(const struct mime_part *p)
{
    return p->body_len + p->body_bare_lf;
}
static inline size_t mime_part_hdr_size_crlf(const struct mime_part *p)
{
    return p->hdr_len + p->hdr_bare_lf;
}
/* Part header/body as slices of the data. */
struct slice mime_part_header(const struct mime_message *msg, const struct mime_part *p);
struct slice mime_part_body(const struct mime_message *msg, const struct mime_part *p);

/* ---- header fields (mime_header.c) ---- */

struct slice mime_field_name(const struct mime_message *msg, const struct mime_field *f);
struct slice mime_field_value(const struct mime_message *msg, const struct mime_field *f);
/* First field of part p named name (ASCII case-insensitive), NULL if none. */
const struct mime_field *mime_part_field(const struct mime_message *msg, const struct mime_part *p,
                                         const char *name);
/* Last field of part p named name, NULL if none. (ENVELOPE takes Date,
 * Subject, Message-ID, In-Reply-To and Content-Disposition from the last
 * occurrence and Content-* from the first, as Dovecot does.) */
const struct mime_field *mime_part_field_last(const struct mime_message *msg,
                                              const struct mime_part *p, const char *name);
/* The msg-ids "<...>" of a field value (Message-ID, In-Reply-To,
 * References), at most max, each normalized (quotes, backslashes and white
 * space dropped; one without '@' skipped) and malloc'd into out; returns how
 * many. */
size_t mime_msgids_parse(struct slice value, char **out, size_t max);
/* Appends the unfolded value (every CR and LF removed, leading and trailing
 * white space trimmed) to out. */
void mime_unfold(struct slice raw, struct buf *out);
/* Appends raw (an unfolded or folded value) with RFC 2047 encoded-words
 * decoded to UTF-8; white space between adjacent encoded-words is dropped.
 * Words in charsets iconv does not know, and malformed words, are kept as
 * they are; bytes that are not valid UTF-8 outside encoded-words are kept. */
void mime_decode_words(struct slice raw, struct buf *out);

/*
 * The base subject of a raw Subject value into out (reset first; RFC 5256
 * 2.1): encoded words decoded, white space collapsed, Re:/Fwd:/[blob]/(fwd)
 * removed. Returns true when something showing a reply or forward was
 * removed. (IMAP SORT and THREAD, the store's JMAP threads.)
 */
bool mime_base_subject(struct slice subject, struct buf *out);

/* References of one message a thread assignment looks at (a hostile header
 * may list thousands; the nearest ancestors are the last ones). */
#define MIME_THREAD_MAX_IDS 64
/*
 * What the store's thread assignment (JMAP threads, RFC 8621 3) reads of a
 * message: its own Message-ID, the msg-ids of In-Reply-To and References
 * (the last MIME_THREAD_MAX_IDS), and the base subject, which a reply must
 * share with the thread it joins (as Cyrus and Gmail require).
 */
struct mime_thread_keys {
    char *msgid;                     /* NULL: none */
    char *refs[MIME_THREAD_MAX_IDS]; /* In-Reply-To first, then References, last first */
    size_t n_refs;
    char *subject; /* the base subject, "" when none */
};
void mime_thread_keys_build(const struct mime_message *msg, struct mime_thread_keys *k);
void mime_thread_keys_free(struct mime_thread_keys *k);

/* Parameters of Content-Type / Content-Disposition. */
struct mime_param {
    struct slice name;  /* without the RFC 2231 "*N*" suffixes */
    struct slice value; /* see enum mime_params_mode */
    bool extended;      /* came from RFC 2231 name* / name*N* sections */
};
struct mime_params {
    struct mime_param *v;
    size_t n;
    struct buf store; /* owns the bytes the slices point to */
};
enum mime_params_mode {
    /* Continuations joined and charset'lang'%XX decoded to UTF-8 (search,
     * JMAP, file names). */
    MIME_PARAMS_DECODE,
    /* Continuations joined, extended values left encoded as
     * charset'lang'%XX and named "name*" (what IMAP BODYSTRUCTURE shows,
     * as Dovecot does); plain parameters first, then extended ones. */
    MIME_PARAMS_JOIN,
};
/* Parses "value; a=b; c*0*=..." (a raw field value). value_r gets the first
 * token (e.g. "text/plain", "attachment"), trimmed, pointing into raw.
 * At most MIME_MAX_PARAMS parameters are kept. */
#define MIME_MAX_PARAMS 64
void mime_params_parse(struct slice raw, enum mime_params_mode mode, struct slice *value_r,
                       struct mime_params *params_r);
void mime_params_free(struct mime_params *params);
/* Value of parameter name (case-insensitive), or SLICE_NULL (ptr NULL). */
struct slice mime_params_get(const struct mime_params *params, const char *name);

/* ---- decoders (mime_decode.c) ---- */

/* Base64 bodies and encoded words: base64_decode_lenient (base/base64.h). */
/* Quoted-printable: soft breaks removed, =XX decoded, a malformed '=' kept
 * literally, trailing white space before a line break dropped. */
void mime_decode_qp(struct slice in, struct buf *out);
/* Decodes a body by its Content-Transfer-Encoding value (base64,
 * quoted-printable; anything else is copied). Returns false for an unknown
 * encoding (IMAP BINARY answers UNKNOWN-CTE) after copying. */
bool mime_decode_cte(struct slice cte, struct slice in, struct buf *out);
/* The length mime_decode_cte would give, and its result, without decoding (a
 * part's size in JMAP, IMAP BINARY.SIZE): a 50 MB attachment is counted, not copied. */
bool mime_decoded_size(struct slice cte, struct slice in, size_t *size_r);
/* Converts in from charset to UTF-8 and appends it. Returns false (and
 * appends nothing) when iconv does not know charset or the text is not valid
 * in it. us-ascii and utf-8 are checked, not converted. */
bool mime_charset_to_utf8(struct slice charset, struct slice in, struct buf *out);
/* The same, as far as it goes: a byte that does not convert (in an unknown charset: one
 * that is not UTF-8) becomes U+FFFD, and the rest follows; false when one did. out always
 * gets valid UTF-8. */
bool mime_charset_to_utf8_lossy(struct slice charset, struct slice in, struct buf *out);

/* The body of part p as UTF-8 text for SEARCH and previews: the transfer
 * encoding undone, then converted from the Content-Type charset (default
 * us-ascii). When the charset is unknown or the bytes are not valid in it,
 * what does not convert is U+FFFD (mime_charset_to_utf8_lossy) and false is
 * returned: out always gets valid UTF-8. */
bool mime_part_text(const struct mime_message *msg, const struct mime_part *p, struct buf *out);

/* ---- the text a search looks in (mime_text.c) ---- */

/* Appends the search text of the message's body: the text of each leaf part
 * of media type text (mime_part_text), text/html rendered by mime_html_text, each
 * part followed by a newline. The store's full-text index holds it and the
 * scans of JMAP and IMAP search look in it, so both answer alike. */
void mime_body_text(const struct mime_message *msg, struct buf *out);
/* Whether the message has a leaf part that is not text (an attachment: what
 * mime_body_text leaves out). */
bool mime_body_other(const struct mime_message *msg);
/* Appends HTML as a reader sees its text: tags dropped, the content of
 * style, script, title, head and comments dropped, a block element's tag a
 * space, the common entities decoded, white space runs one space, no
 * leading space. */
void mime_html_text(struct slice html, struct buf *out);

/* ---- addresses (mime_address.c) ---- */

/* One element in the IMAP ENVELOPE shape. A group is a start marker
 * (mailbox = group name, host NULL) followed by its members and an end
 * marker (everything NULL). Slices point into owner storage. */
struct mime_address {
    struct slice name, adl, mailbox, host; /* ptr NULL = NIL */
};
struct mime_address_list {
    struct mime_address *v;
    size_t n;
    struct buf store;
};
#define MIME_MAX_ADDRESSES 1000
/* Parses an RFC 5322 address list (raw field value, folding allowed),
 * tolerating obsolete syntax; never fails, keeps at most MIME_MAX_ADDRESSES. */
void mime_address_parse(struct slice raw, struct mime_address_list *list_r);
void mime_address_list_free(struct mime_address_list *list);

/* ---- the parsed structure, serialized (mime_struct.c) ---- */

/*
 * What a parse yields that FETCH, JMAP Email/get, NNTP OVER and webmail need
 * without the message: the tree of parts with offsets, sizes and line
 * counts, each part's Content-* fields and the envelope fields of the
 * message and of every message/rfc822 part. Values are kept as the message
 * says them (protocol-neutral): header values unfolded (Content-*) or raw
 * (envelope fields: folding kept, leading white space gone), addresses parsed
 * but not decoded, parameters as MIME_PARAMS_JOIN gives them (RFC 2231
 * values still charset'lang'%XX, names "name*"). Each protocol renders
 * (IMAP: mime_imap_struct_*) or decodes (mime_decode_words) them itself.
 * A NIL value has ptr NULL; an empty one a non-NULL ptr and len 0.
 */
enum mime_struct_addr {
    MIME_ADDR_FROM,
    MIME_ADDR_SENDER,
    MIME_ADDR_REPLY_TO,
    MIME_ADDR_TO,
    MIME_ADDR_CC,
    MIME_ADDR_BCC,
    MIME_ADDR_COUNT,
};
struct mime_struct_envelope {
    /* the last field of each name (RFC 5322 allows one; Dovecot takes the last) */
    struct slice date, subject, in_reply_to, message_id;
    /* every field of each name, their addresses in order (at most
     * MIME_MAX_ADDRESSES a name); group markers as in struct mime_address */
    struct mime_address *addr[MIME_ADDR_COUNT];
    size_t naddr[MIME_ADDR_COUNT];
};
#define MIME_STRUCT_NONE ((size_t)-1)
struct mime_struct_part {
    enum mime_kind kind;
    bool has_ctype;
    unsigned depth;                   /* root = 0 */
    size_t parent, first_child, next; /* indexes; MIME_STRUCT_NONE when none */
    size_t nchildren;
    /* as in struct mime_part */
    size_t hdr_start, hdr_len, body_start, body_len, hdr_bare_lf, body_bare_lf, body_lines;
    struct slice type, subtype; /* as in struct mime_part */
    struct mime_param *params;  /* of the first Content-Type (when has_ctype) */
    size_t nparams;
    struct slice disposition;       /* Content-Disposition's value (last field); NIL: none */
    struct mime_param *disp_params; /* its parameters */
    size_t ndisp_params;
    /* the first field of each, unfolded; NIL when absent */
    struct slice id, description, encoding, md5, language, location;
    struct mime_struct_envelope *env; /* the root and message/rfc822 children; else NULL */
};
struct mime_struct {
    struct mime_struct_part *parts; /* preorder; parts[0] is the root */
    size_t nparts;
    /* private: the arrays the parts point to (in the block parts heads) */
    struct mime_param *param_pool;
    struct mime_address *addr_pool;
    struct mime_struct_envelope *env_pool;
    struct buf own; /* the blob, when mime_struct_from_message made it */
};
/* Deepest part a blob may hold (the bound of the mime_max_depth option). */
#define MIME_STRUCT_MAX_DEPTH 256
/* Appends the serialized structure of msg: a version tag, then the parts
 * (format in mime_struct.c). */
void mime_struct_encode(struct buf *out, const struct mime_message *msg);
/* Reads a blob that mime_struct_encode wrote; st_r's slices point into blob,
 * which the caller keeps alive. Strict: false (st_r left empty) for another
 * version (older stores kept IMAP text here: re-parse the message), a blob
 * cut short, trailing bytes, or anything out of place; never reads outside
 * blob, and recursion over a decoded tree is bounded by MIME_STRUCT_MAX_DEPTH. */
bool mime_struct_decode(struct slice blob, struct mime_struct *st_r);
/* The structure of a parsed message (its own copy: msg may go after). */
void mime_struct_from_message(struct mime_struct *st_r, const struct mime_message *msg);
void mime_struct_free(struct mime_struct *st);

/* ---- IMAP wire forms (mime_imap.c) ---- */

/* Appends s as an IMAP string: quoted (with \\ escapes) when it is at most
 * 1024 bytes of ASCII without CR, LF or other controls but TAB, otherwise a
 * {N}\r\n literal. NUL bytes, which no IMAP string may hold, are dropped. */
void mime_imap_string(struct buf *out, struct slice s);
/* The ENVELOPE form of text meant for people (subject, names, dates), as
 * Dovecot writes it: runs of white space and line breaks become one space,
 * leading and trailing ones go, NUL becomes 0x80; a quoted string when
 * nothing changed and s has no '"', '\\', control or 8-bit byte, else a
 * literal. */
void mime_imap_string_human(struct buf *out, struct slice s);
/* Like mime_imap_string, but NIL when s.ptr is NULL. */
void mime_imap_nstring(struct buf *out, struct slice s);
/* ENVELOPE of part `part` of st (the root, or the child of a message/rfc822
 * part: one with env), with the parentheses. */
void mime_imap_struct_envelope(struct buf *out, const struct mime_struct *st, size_t part);
/* BODY (extended false) or BODYSTRUCTURE (extended true) of part `part` of st
 * (usually 0, the root), with the parentheses. */
void mime_imap_struct_bodystructure(struct buf *out, const struct mime_struct *st, size_t part,
                                    bool extended);
/* The same from a parsed message (through mime_struct_from_message). */
void mime_imap_envelope(struct buf *out, const struct mime_message *msg, const struct mime_part *p);
void mime_imap_bodystructure(struct buf *out, const struct mime_message *msg,
                             const struct mime_part *p, bool extended);

/* ---- what the store keeps per message (mime_cache.c) ---- */

/* Parsed once at delivery or APPEND, so that FETCH ENVELOPE/BODY/BODYSTRUCTURE
 * and the header searches never parse the message again. */
struct mime_cache {
    struct buf structure;           /* mime_struct_encode of the message */
    struct buf record;              /* the search record (mime_cache_record) */
    struct mime_thread_keys thread; /* for the store's thread assignment */
};
/* Fills c (initialised here) from the message data; limits NULL: defaults. */
void mime_cache_build(struct slice data, const struct mime_limits *limits, struct mime_cache *c);
void mime_cache_free(struct mime_cache *c);
/* The search record of the header of part p: every From, Sender, Reply-To,
 * To, Cc, Bcc, Subject, Date, Message-ID and In-Reply-To field, in order,
 * unfolded and RFC 2047-decoded, names lower-case; each address field once
 * more as its parsed addresses without comments ("Name <l@d>, ..."). */
void mime_cache_record(struct buf *rec, const struct mime_message *msg, const struct mime_part *p);
/* Whether the record holds every field of this name (else: read the message). */
bool mime_cache_covers(struct slice name);
/* A record this version writes and reads. */
bool mime_cache_record_valid(struct slice rec);
/* Iteration: rest starts as the record minus its version byte; false at the
 * end or where the record is cut short. */
bool mime_cache_record_next(struct slice *rest, struct slice *name_r, struct slice *value_r);
/* The record's first Message-ID field, trimmed (the store's Message-ID
 * index and NNTP's history read it so); false when it has none. */
bool mime_cache_record_msgid(struct slice rec, struct slice *id_r);

/* ---- writing MIME (mime_compose.c) ---- */

/* Appends UTF-8 text for a header field: as it is when it is printable
 * ASCII, else as RFC 2047 "=?UTF-8?B?...?=" words (folded between words). */
void mime_header_encode(struct slice text, struct buf *out);
/* Whether a body needs a transfer encoding (8-bit bytes, NUL, bare CR or
 * LF, lines over 998 octets). */
bool mime_body_needs_encoding(struct slice body);
/* Appends body in CRLF lines: as it is (7bit) or in base64 lines; returns
 * the Content-Transfer-Encoding value it used. */
const char *mime_body_encode(struct slice body, struct buf *out);
/* Appends "Content-Transfer-Encoding: X", the empty line and body encoded
 * (mime_body_encode); text: its bare LFs become CRLF first (text from JSON). */
void mime_body_write(struct slice body, bool text, struct buf *out);
/* mime_body_write for a part of a multipart, followed by a delimiter: a body ending in a line
 * break keeps it (the CRLF before "--boundary" belongs to the delimiter). */
void mime_part_body_write(struct slice body, bool text, struct buf *out);
/* A fresh multipart boundary ("=_wharf_" and 24 random hex digits) into out. */
void mime_boundary_make(char out[40]);

/* ---- sections (mime_section.c) ---- */

enum mime_section_result {
    MIME_SECTION_RANGE, /* the section is data[start .. start+len) */
    MIME_SECTION_BUILT, /* the section was constructed into built (CRLF) */
    MIME_SECTION_NONE,  /* no such part: IMAP answers with an empty string */
    MIME_SECTION_BAD,   /* the spec is not valid section syntax */
};
struct mime_section {
    size_t start, len;
    struct buf built;
};
/* spec is what is between the brackets of BODY[...], e.g. "", "TEXT",
 * "1.2.HEADER", "3.MIME", "HEADER.FIELDS (From To)". Caller does
 * buf_init(&r->built) first and buf_free() after. */
enum mime_section_result mime_section_locate(const struct mime_message *msg, struct slice spec,
                                             struct mime_section *r);

#endif
