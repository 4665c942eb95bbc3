/*
 * mime_struct.c - the parsed structure of a message as bytes the store can
 * keep (struct mime_struct in mime.h): written once at delivery or APPEND,
 * read back by FETCH (and later JMAP, NNTP, webmail) instead of parsing the
 * message again. It holds what the message says, never a protocol's text:
 * IMAP's BODYSTRUCTURE and ENVELOPE are rendered from it in mime_imap.c.
 *
 * Format (integers are unsigned LEB128 varints, at most 10 bytes; a "str" is
 * a varint length then the bytes; an "nstr" is a varint length + 1 then the
 * bytes, 0 meaning NIL; "params" is a varint count then, for each, str name,
 * str value and a byte 0/1 for extended):
 *
 *   tag       "\0WS" then the version byte (MIME_STRUCT_VERSION)
 *   varint    number of parts (>= 1), then each part in preorder:
 *     byte    kind (enum mime_kind)
 *     byte    flags: 1 has_ctype, 2 an envelope follows
 *     varint  (not for the root) index minus the parent's index (>= 1)
 *     varint  hdr_start, hdr_len, body_len, hdr_bare_lf, body_bare_lf,
 *             body_lines (body_start is hdr_start + hdr_len)
 *     str     type, subtype
 *     params  of the Content-Type
 *     nstr    disposition, then its params when it is not NIL
 *     nstr    id, description, encoding, md5, language, location
 *     [envelope: nstr date, subject, in_reply_to, message_id, then for each
 *      of From, Sender, Reply-To, To, Cc, Bcc a varint count and per
 *      address nstr name, adl, mailbox, host]
 *
 * Bump the version when the format or what a field means changes: a blob of
 * another version is refused by the decoder and the message is parsed again
 * (the store then writes the new form). Must never: read outside the blob it
 * decodes, accept a tree a renderer could not walk (a leaf with children, a
 * message/rfc822 part with two, depth past MIME_STRUCT_MAX_DEPTH), or
 * allocate more than in proportion to the blob's length.
 */
#include "base/alloc.h"
#include "mime/mime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIME_STRUCT_VERSION 1
#define TAG_LEN 4
static const char tag[TAG_LEN] = {'\0', 'W', 'S', MIME_STRUCT_VERSION};

enum { FLAG_CTYPE = 1, FLAG_ENV = 2 };

static const char *const addr_fields[MIME_ADDR_COUNT] = {"From", "Sender", "Reply-To",
                                                         "To",   "Cc",     "Bcc"};

/* ---- writing ---- */

static void put_varint(struct buf *out, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            b[n] |= 0x80;
        n++;
    } while (v != 0);
    buf_append(out, b, n);
}

static void put_str(struct buf *out, struct slice s)
{
    put_varint(out, s.len);
    buf_append(out, s.ptr, s.len);
}

static void put_nstr(struct buf *out, struct slice s)
{
    if (s.ptr == NULL) {
        put_varint(out, 0);
        return;
    }
    put_varint(out, (uint64_t)s.len + 1);
    buf_append(out, s.ptr, s.len);
}

static void put_params(struct buf *out, const struct mime_params *params)
{
    put_varint(out, params->n);
    for (size_t i = 0; i < params->n; i++) {
        put_str(out, params->v[i].name);
        put_str(out, params->v[i].value);
        buf_append_byte(out, params->v[i].extended ? 1 : 0);
    }
}

/* The first field name of p, unfolded, as an nstr. */
static void put_field_unfolded(struct buf *out, const struct mime_message *msg,
                               const struct mime_part *p, const char *name, struct buf *tmp)
{
    const struct mime_field *f = mime_part_field(msg, p, name);
    if (f == NULL) {
        put_nstr(out, SLICE_NULL);
        return;
    }
    buf_reset(tmp);
    mime_unfold(mime_field_value(msg, f), tmp);
    put_nstr(out, slice_make(tmp->data != NULL ? tmp->data : "", tmp->len));
}

/* The last field name of p, raw, leading blanks gone, as an nstr. */
static void put_field_last(struct buf *out, const struct mime_message *msg,
                           const struct mime_part *p, const char *name)
{
    const struct mime_field *f = mime_part_field_last(msg, p, name);
    if (f == NULL) {
        put_nstr(out, SLICE_NULL);
        return;
    }
    struct slice v = mime_field_value(msg, f);
    while (v.len > 0 && (v.ptr[0] == ' ' || v.ptr[0] == '\t')) {
        v.ptr++;
        v.len--;
    }
    put_nstr(out, v);
}

/* The addresses of every field called name, at most MIME_MAX_ADDRESSES. */
static void put_addresses(struct buf *out, const struct mime_message *msg,
                          const struct mime_part *p, const char *name, struct buf *tmp)
{
    size_t n = strlen(name), total = 0;
    buf_reset(tmp);
    for (size_t k = 0; k < p->field_count && total < MIME_MAX_ADDRESSES; k++) {
        const struct mime_field *f = &msg->fields[p->field_first + k];
        if (f->name_len != n || !slice_eq_cstr_nocase(mime_field_name(msg, f), name))
            continue;
        struct mime_address_list list;
        mime_address_parse(mime_field_value(msg, f), &list);
        for (size_t i = 0; i < list.n && total < MIME_MAX_ADDRESSES; i++, total++) {
            put_nstr(tmp, list.v[i].name);
            put_nstr(tmp, list.v[i].adl);
            put_nstr(tmp, list.v[i].mailbox);
            put_nstr(tmp, list.v[i].host);
        }
        mime_address_list_free(&list);
    }
    put_varint(out, total);
    buf_append(out, tmp->data, tmp->len);
}

static void put_part(struct buf *out, const struct mime_message *msg, const struct mime_part *p,
                     size_t parent_delta, bool env, struct buf *tmp)
{
    buf_append_byte(out, (char)p->kind);
    buf_append_byte(out, (char)((p->has_ctype ? FLAG_CTYPE : 0) | (env ? FLAG_ENV : 0)));
    if (p->parent != NULL)
        put_varint(out, parent_delta);
    const size_t sizes[] = {p->hdr_start,   p->hdr_len,      p->body_len,
                            p->hdr_bare_lf, p->body_bare_lf, p->body_lines};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        put_varint(out, sizes[k]);
    put_str(out, p->type);
    put_str(out, p->subtype);

    struct mime_params params = {0};
    struct slice v;
    bool ctype = p->has_ctype || p->kind == MIME_MULTIPART;
    if (ctype)
        mime_params_parse(mime_field_value(msg, mime_part_field(msg, p, "Content-Type")),
                          MIME_PARAMS_JOIN, &v, &params);
    put_params(out, &params);
    if (ctype)
        mime_params_free(&params);

    const struct mime_field *f = mime_part_field_last(msg, p, "Content-Disposition");
    if (f == NULL) {
        put_nstr(out, SLICE_NULL);
    } else {
        mime_params_parse(mime_field_value(msg, f), MIME_PARAMS_JOIN, &v, &params);
        if (v.len > 0) {
            put_nstr(out, v);
            put_params(out, &params);
        } else {
            put_nstr(out, SLICE_NULL);
        }
        mime_params_free(&params);
    }
    static const char *const unfolded[] = {
        "Content-ID",  "Content-Description", "Content-Transfer-Encoding",
        "Content-MD5", "Content-Language",    "Content-Location"};
    for (size_t i = 0; i < sizeof(unfolded) / sizeof(unfolded[0]); i++)
        put_field_unfolded(out, msg, p, unfolded[i], tmp);
    if (!env)
        return;
    put_field_last(out, msg, p, "Date");
    put_field_last(out, msg, p, "Subject");
    put_field_last(out, msg, p, "In-Reply-To");
    put_field_last(out, msg, p, "Message-ID");
    for (size_t k = 0; k < MIME_ADDR_COUNT; k++)
        put_addresses(out, msg, p, addr_fields[k], tmp);
}

/* Preorder; recursion follows the tree, whose depth the parser bounded. */
static void put_tree(struct buf *out, const struct mime_message *msg, const struct mime_part *p,
                     size_t parent_index, size_t *index, struct buf *tmp)
{
    size_t me = (*index)++;
    bool env = p->parent == NULL || p->parent->kind == MIME_MESSAGE;
    put_part(out, msg, p, me - parent_index, env, tmp);
    for (const struct mime_part *c = p->children; c != NULL; c = c->next)
        put_tree(out, msg, c, me, index, tmp);
}

void mime_struct_encode(struct buf *out, const struct mime_message *msg)
{
    struct buf tmp = BUF_INIT;
    buf_init(&tmp);
    buf_append(out, tag, TAG_LEN);
    put_varint(out, msg->nparts);
    size_t index = 0;
    put_tree(out, msg, msg->root, 0, &index, &tmp);
    buf_free(&tmp);
}

/* ---- reading ---- */

struct reader {
    const unsigned char *p;
    size_t n;
    bool ok;
    /* pass 1 counts what pass 2 stores (pools NULL in pass 1) */
    size_t nparams, naddr, nenv;
    struct mime_struct *st;
    size_t *last_child; /* pass 1: per part, its latest child */
};

static uint64_t get_varint(struct reader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; r->ok; shift += 7) {
        if (r->n == 0 || shift > 63) {
            r->ok = false;
            break;
        }
        unsigned char b = *r->p++;
        r->n--;
        if (shift == 63 && b > 1) { /* past 64 bits */
            r->ok = false;
            break;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    return 0;
}

static size_t get_size(struct reader *r)
{
    uint64_t v = get_varint(r);
    if (v > SIZE_MAX / 2) /* no size the parser gives; keeps sums from overflowing */
        r->ok = false;
    return r->ok ? (size_t)v : 0;
}

static unsigned char get_byte(struct reader *r)
{
    if (!r->ok || r->n == 0) {
        r->ok = false;
        return 0;
    }
    r->n--;
    return *r->p++;
}

static struct slice get_bytes(struct reader *r, size_t len)
{
    if (!r->ok || len > r->n) {
        r->ok = false;
        return SLICE_NULL;
    }
    struct slice s = slice_make(r->p, len);
    r->p += len;
    r->n -= len;
    return s;
}

static struct slice get_str(struct reader *r)
{
    return get_bytes(r, get_size(r));
}

static struct slice get_nstr(struct reader *r)
{
    size_t len = get_size(r);
    return len == 0 ? SLICE_NULL : get_bytes(r, len - 1);
}

static struct mime_param *get_params(struct reader *r, size_t *n_r)
{
    size_t n = get_size(r);
    if (n > MIME_MAX_PARAMS || n > r->n / 3) /* each takes 3 bytes at least */
        r->ok = false;
    *n_r = 0;
    if (!r->ok || n == 0)
        return NULL;
    struct mime_param *v = r->st->param_pool ? r->st->param_pool + r->nparams : NULL;
    for (size_t i = 0; i < n && r->ok; i++) {
        struct slice name = get_str(r), value = get_str(r);
        unsigned char ext = get_byte(r);
        if (ext > 1)
            r->ok = false;
        if (v != NULL)
            v[i] = (struct mime_param){name, value, ext == 1};
    }
    r->nparams += n;
    *n_r = n;
    return v;
}

static struct mime_struct_envelope *get_envelope(struct reader *r)
{
    struct mime_struct_envelope *e = r->st->env_pool ? &r->st->env_pool[r->nenv] : NULL;
    struct mime_struct_envelope tmp;
    if (e == NULL)
        e = &tmp;
    r->nenv++;
    e->date = get_nstr(r);
    e->subject = get_nstr(r);
    e->in_reply_to = get_nstr(r);
    e->message_id = get_nstr(r);
    for (size_t k = 0; k < MIME_ADDR_COUNT; k++) {
        size_t n = get_size(r);
        if (n > MIME_MAX_ADDRESSES || n > r->n / 4) /* 4 bytes at least each */
            r->ok = false;
        if (!r->ok)
            n = 0;
        e->naddr[k] = n;
        e->addr[k] = r->st->addr_pool && n > 0 ? r->st->addr_pool + r->naddr : NULL;
        for (size_t i = 0; i < n && r->ok; i++) {
            struct mime_address a;
            a.name = get_nstr(r);
            a.adl = get_nstr(r);
            a.mailbox = get_nstr(r);
            a.host = get_nstr(r);
            if (e->addr[k] != NULL)
                e->addr[k][i] = a;
        }
        r->naddr += n;
    }
    return e == &tmp ? NULL : e;
}

/* One part; links (pass 1 only) and checks the tree as it goes. */
static void get_part(struct reader *r, size_t i, bool link)
{
    struct mime_struct *st = r->st;
    struct mime_struct_part *p = &st->parts[i];
    if (link) {
        p->first_child = p->next = MIME_STRUCT_NONE;
        p->nchildren = 0;
    }
    unsigned char kind = get_byte(r), flags = get_byte(r);
    if (kind > MIME_MESSAGE || (flags & ~(FLAG_CTYPE | FLAG_ENV)) != 0) {
        r->ok = false;
        return;
    }
    p->kind = (enum mime_kind)kind;
    p->has_ctype = (flags & FLAG_CTYPE) != 0;
    bool env_wanted = true;
    if (i > 0) {
        size_t delta = get_size(r);
        if (!r->ok || delta == 0 || delta > i) {
            r->ok = false;
            return;
        }
        size_t parent = i - delta;
        struct mime_struct_part *pp = &st->parts[parent];
        if (link) {
            if (pp->kind == MIME_LEAF || (pp->kind == MIME_MESSAGE && pp->nchildren > 0) ||
                pp->depth >= MIME_STRUCT_MAX_DEPTH) {
                r->ok = false;
                return;
            }
            p->parent = parent;
            p->depth = pp->depth + 1;
            if (pp->first_child == MIME_STRUCT_NONE)
                pp->first_child = i;
            else
                st->parts[r->last_child[parent]].next = i;
            r->last_child[parent] = i;
            pp->nchildren++;
        }
        env_wanted = pp->kind == MIME_MESSAGE;
    } else if (link) {
        p->parent = MIME_STRUCT_NONE;
        p->depth = 0;
    }
    if (((flags & FLAG_ENV) != 0) != env_wanted) {
        r->ok = false;
        return;
    }
    size_t *const sizes[] = {&p->hdr_start,   &p->hdr_len,      &p->body_len,
                             &p->hdr_bare_lf, &p->body_bare_lf, &p->body_lines};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        *sizes[k] = get_size(r);
    p->body_start = p->hdr_start + p->hdr_len; /* both below SIZE_MAX / 2 */
    if (p->hdr_bare_lf > p->hdr_len || p->body_bare_lf > p->body_len ||
        p->body_lines > p->body_len || p->body_start > SIZE_MAX / 2 ||
        p->body_len > SIZE_MAX / 2 - p->body_start)
        r->ok = false;
    p->type = get_str(r);
    p->subtype = get_str(r);
    p->params = get_params(r, &p->nparams);
    p->disposition = get_nstr(r);
    p->disp_params = NULL;
    p->ndisp_params = 0;
    if (p->disposition.ptr != NULL)
        p->disp_params = get_params(r, &p->ndisp_params);
    struct slice *const unfolded[] = {&p->id,  &p->description, &p->encoding,
                                      &p->md5, &p->language,    &p->location};
    for (size_t k = 0; k < sizeof(unfolded) / sizeof(unfolded[0]); k++)
        *unfolded[k] = get_nstr(r);
    p->env = (flags & FLAG_ENV) ? get_envelope(r) : NULL;
}

static bool get_all(struct reader *r, struct slice blob, bool link)
{
    r->p = (const unsigned char *)blob.ptr + TAG_LEN;
    r->n = blob.len - TAG_LEN;
    r->ok = true;
    r->nparams = r->naddr = r->nenv = 0;
    size_t n = get_size(r);
    if (!r->ok || n != r->st->nparts)
        return false;
    for (size_t i = 0; i < n && r->ok; i++)
        get_part(r, i, link);
    return r->ok && r->n == 0;
}

/* Blobs up to this size are read in one pass into pools sized for the most
 * the length allows (a few kB); longer ones are counted first. FETCH reads
 * one blob per message: one allocation and one pass keep it cheap. */
#define ONE_PASS_MAX 1024

/* One allocation: parts, the linking scratch, then the pools. */
static void *block_alloc(void *old, size_t nparts, size_t nparams, size_t naddr, size_t nenv)
{
    size_t size = nparts * (sizeof(struct mime_struct_part) + sizeof(size_t)) +
                  nparams * sizeof(struct mime_param) + naddr * sizeof(struct mime_address) +
                  nenv * sizeof(struct mime_struct_envelope);
    return xrealloc(old, size); /* all counts are bounded by the blob's length */
}

static void block_layout(struct mime_struct *st, struct reader *r, bool pools)
{
    /* every element type is 8-byte aligned: each array starts aligned */
    r->last_child = (size_t *)(void *)(st->parts + st->nparts);
    if (!pools)
        return;
    st->env_pool = (struct mime_struct_envelope *)(void *)(r->last_child + st->nparts);
    st->addr_pool = (struct mime_address *)(void *)(st->env_pool + r->nenv);
    st->param_pool = (struct mime_param *)(void *)(st->addr_pool + r->naddr);
}

bool mime_struct_decode(struct slice blob, struct mime_struct *st_r)
{
    static const struct buf empty = BUF_INIT;
    memset(st_r, 0, sizeof(*st_r));
    st_r->own = empty;
    if (blob.len < TAG_LEN || memcmp(blob.ptr, tag, TAG_LEN) != 0)
        return false;
    struct reader r = {.st = st_r};
    r.p = (const unsigned char *)blob.ptr + TAG_LEN;
    r.n = blob.len - TAG_LEN;
    r.ok = true;
    size_t n = get_size(&r);
    if (!r.ok || n == 0 || n > r.n / 16) /* a part takes 16 bytes at least */
        return false;
    st_r->nparts = n;
    bool one_pass = blob.len <= ONE_PASS_MAX;
    if (one_pass) {
        /* a parameter takes 3 bytes at least, an address 4, an envelope a part */
        r.nparams = r.n / 3;
        r.naddr = r.n / 4;
        r.nenv = n;
    }
    st_r->parts = block_alloc(NULL, n, r.nparams, r.naddr, r.nenv);
    block_layout(st_r, &r, one_pass);
    /* pass 1 checks everything, links the tree and counts (and fills, when
     * the pools are there); pass 2 fills */
    bool ok = get_all(&r, blob, true);
    if (ok && !one_pass) {
        st_r->parts = block_alloc(st_r->parts, n, r.nparams, r.naddr, r.nenv);
        block_layout(st_r, &r, true);
        ok = get_all(&r, blob, false); /* cannot fail: the same bytes */
    }
    if (!ok) {
        mime_struct_free(st_r);
        return false;
    }
    return true;
}

void mime_struct_from_message(struct mime_struct *st_r, const struct mime_message *msg)
{
    struct buf blob = BUF_INIT;
    buf_init(&blob);
    mime_struct_encode(&blob, msg);
    bool ok = mime_struct_decode(buf_slice(&blob), st_r);
    if (!ok) /* what the encoder writes the decoder reads: a bug */
        abort();
    st_r->own = blob; /* the slices point into it */
}

void mime_struct_free(struct mime_struct *st)
{
    free(st->parts); /* and the pools, in the same block */
    buf_free(&st->own);
    struct buf own = st->own; /* empty again */
    memset(st, 0, sizeof(*st));
    st->own = own;
}
