/*
 * mime_parse.c - one pass over a message in memory that builds the tree of
 * MIME parts with exact offsets, sizes and line counts.
 *
 * The scan is line by line (memchr for LF). Open multiparts sit on a stack
 * of frames, one per nesting level, so that a boundary line closes every
 * part opened below the multipart it belongs to (a truncated inner multipart
 * ends where an outer boundary appears). Offsets are in the original bytes;
 * LF and bare-LF counters taken at line starts give line counts and CRLF
 * sizes without a second pass.
 *
 * Must never: recurse, read outside data, copy a body, allocate more than a
 * few bytes per part and per header field, or fail on any input.
 */
#include "mime/mime.h"
#include "mime/mime_chars.h"

#include "base/alloc.h"
#include "base/config.h"

#include <stdlib.h>
#include <string.h>

struct mime_part_block {
    struct mime_part_block *next;
    size_t used, cap;
    struct mime_part parts[];
};

struct frame {
    struct mime_part *mp;
    char *boundary;
    size_t blen;
    bool closed; /* close delimiter seen: in the epilogue */
};

struct parser {
    struct mime_message *msg;
    const char *d;
    size_t len;
    size_t pos;  /* start of the current line */
    size_t lf;   /* LFs before pos */
    size_t bare; /* bare LFs before pos */
    struct mime_limits lim;
    struct frame *frames;
    size_t nframes;
    struct mime_part *cur; /* deepest open part */
};

void mime_limits_default(struct mime_limits *limits_r)
{
    limits_r->max_depth = MIME_DEFAULT_MAX_DEPTH;
    limits_r->max_parts = MIME_DEFAULT_MAX_PARTS;
    limits_r->max_fields = MIME_DEFAULT_MAX_FIELDS;
}

void mime_limits_from_config(struct mime_limits *limits_r, const struct wharf_config *cfg)
{
    limits_r->max_depth = (unsigned)cfg->mime_max_depth;
    limits_r->max_parts = (unsigned)cfg->mime_max_parts;
    limits_r->max_fields = (unsigned)cfg->mime_max_header_fields;
}

static struct mime_part *part_new(struct parser *ps, struct mime_part *parent)
{
    struct mime_message *msg = ps->msg;
    if (msg->nparts >= ps->lim.max_parts) {
        msg->flags |= MIME_MSG_PARTS_LIMIT;
        return NULL;
    }
    struct mime_part_block *b = msg->blocks;
    if (b == NULL || b->used == b->cap) {
        size_t cap = b == NULL ? 4 : b->cap * 2;
        if (cap > 1024)
            cap = 1024;
        struct mime_part_block *nb = xmalloc(sizeof(*nb) + cap * sizeof(struct mime_part));
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        msg->blocks = nb;
        b = nb;
    }
    struct mime_part *p = &b->parts[b->used++];
    memset(p, 0, sizeof(*p));
    msg->nparts++;
    p->parent = parent;
    if (parent != NULL) {
        p->depth = parent->depth + 1;
        if (parent->last_child == NULL)
            parent->children = p;
        else
            parent->last_child->next = p;
        parent->last_child = p;
        parent->nchildren++;
    }
    return p;
}

/* End of the line starting at pos: index after its LF, or len. */
static size_t line_end(const struct parser *ps, size_t pos)
{
    const char *nl = memchr(ps->d + pos, '\n', ps->len - pos);
    return nl == NULL ? ps->len : (size_t)(nl - ps->d) + 1;
}

/* Length of the line content without its CRLF / LF. */
static size_t line_content_end(const struct parser *ps, size_t pos, size_t end)
{
    if (end > pos && ps->d[end - 1] == '\n') {
        end--;
        if (end > pos && ps->d[end - 1] == '\r')
            end--;
    }
    return end;
}

static void advance(struct parser *ps, size_t end)
{
    if (end > ps->pos && ps->d[end - 1] == '\n') {
        ps->lf++;
        if (end - 1 == ps->pos || ps->d[end - 2] != '\r')
            ps->bare++;
    }
    ps->pos = end;
}

/* Index of the frame whose boundary the line [pos, cend) is, or -1. */
static long boundary_match(const struct parser *ps, size_t pos, size_t cend, bool *close_r)
{
    size_t n = cend - pos;
    if (ps->nframes == 0 || n < 2 || ps->d[pos] != '-' || ps->d[pos + 1] != '-')
        return -1;
    for (size_t i = ps->nframes; i-- > 0;) {
        const struct frame *f = &ps->frames[i];
        if (f->closed || n - 2 < f->blen || memcmp(ps->d + pos + 2, f->boundary, f->blen) != 0)
            continue;
        size_t rest = pos + 2 + f->blen;
        *close_r = cend - rest >= 2 && ps->d[rest] == '-' && ps->d[rest + 1] == '-';
        return (long)i;
    }
    return -1;
}

static void field_add(struct parser *ps, size_t start, size_t name_len, size_t value_start,
                      size_t value_len)
{
    struct mime_message *msg = ps->msg;
    if (msg->nfields >= ps->lim.max_fields) {
        msg->flags |= MIME_MSG_FIELDS_LIMIT;
        return;
    }
    if (msg->nfields == msg->fields_cap) {
        msg->fields_cap = msg->fields_cap == 0 ? 16 : msg->fields_cap * 2;
        msg->fields = xreallocarray(msg->fields, msg->fields_cap, sizeof(*msg->fields));
    }
    msg->fields[msg->nfields++] = (struct mime_field){start, name_len, value_start, value_len};
}

/* Reads the header of p, which starts at ps->pos; leaves pos at the body. */
static void header_parse(struct parser *ps, struct mime_part *p)
{
    size_t bare0 = ps->bare;
    bool open = false; /* the last indexed field may take continuation lines */
    p->hdr_start = ps->pos;
    p->field_first = ps->msg->nfields;
    while (ps->pos < ps->len) {
        size_t pos = ps->pos, end = line_end(ps, pos);
        size_t cend = line_content_end(ps, pos, end);
        bool close;
        if (cend == pos && end > pos && ps->d[end - 1] == '\n') {
            advance(ps, end); /* the empty line ends the header */
            break;
        }
        if (boundary_match(ps, pos, cend, &close) >= 0)
            break;
        char c = ps->d[pos];
        if (c == ' ' || c == '\t') {
            if (open) {
                struct mime_field *f = &ps->msg->fields[ps->msg->nfields - 1];
                f->value_len = cend - f->value_start;
            }
        } else {
            const char *colon = memchr(ps->d + pos, ':', cend - pos);
            open = false;
            if (colon != NULL) {
                size_t name_end = (size_t)(colon - ps->d);
                while (name_end > pos &&
                       (ps->d[name_end - 1] == ' ' || ps->d[name_end - 1] == '\t'))
                    name_end--;
                if (name_end > pos) {
                    size_t before = ps->msg->nfields;
                    size_t vstart = (size_t)(colon - ps->d) + 1;
                    field_add(ps, pos, name_end - pos, vstart, cend - vstart);
                    open = ps->msg->nfields > before;
                }
            }
        }
        advance(ps, end);
    }
    p->field_count = ps->msg->nfields - p->field_first;
    p->hdr_len = ps->pos - p->hdr_start;
    p->hdr_bare_lf = ps->bare - bare0;
    p->body_start = ps->pos;
    p->lf_at_body = ps->lf;
    p->bare_at_body = ps->bare;
}

/* type "/" subtype from a raw Content-Type value; false when unusable. */
static bool ctype_split(struct slice raw, struct slice *type_r, struct slice *sub_r)
{
    size_t i = 0, n = raw.len;
    const unsigned char *s = (const unsigned char *)raw.ptr;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    size_t t0 = i;
    while (i < n && mime_is_token_char(s[i]))
        i++;
    size_t t1 = i;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (t1 == t0 || i >= n || s[i] != '/')
        return false;
    i++;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t s0 = i;
    while (i < n && mime_is_token_char(s[i]))
        i++;
    if (i == s0)
        return false;
    *type_r = slice_make(raw.ptr + t0, t1 - t0);
    *sub_r = slice_make(raw.ptr + s0, i - s0);
    return true;
}

static void frame_push(struct parser *ps, struct mime_part *p, struct slice boundary)
{
    struct frame *f = &ps->frames[ps->nframes++];
    f->mp = p;
    f->boundary = xmemdup(boundary.ptr, boundary.len);
    f->blen = boundary.len;
    f->closed = false;
}

static void frames_pop_to(struct parser *ps, size_t n)
{
    while (ps->nframes > n)
        free(ps->frames[--ps->nframes].boundary);
}

/* Sets the media type of p from its header and decides its kind; for a
 * multipart pushes a frame. Returns the encapsulated message part to parse
 * next for message/rfc822, else NULL. */
static struct mime_part *part_classify(struct parser *ps, struct mime_part *p)
{
    const struct mime_part *parent = p->parent;
    const struct mime_field *ct = mime_part_field(ps->msg, p, "Content-Type");
    if (ct != NULL && ctype_split(mime_field_value(ps->msg, ct), &p->type, &p->subtype)) {
        p->has_ctype = true;
    } else if (parent != NULL && parent->kind == MIME_MULTIPART &&
               slice_eq_cstr_nocase(parent->subtype, "digest")) {
        p->type = SLICE_LIT("message");
        p->subtype = SLICE_LIT("rfc822");
    } else {
        p->type = SLICE_LIT("text");
        p->subtype = SLICE_LIT("plain");
    }

    if (slice_eq_cstr_nocase(p->type, "multipart")) {
        p->kind = MIME_MULTIPART;
        struct mime_params params;
        struct slice v;
        mime_params_parse(mime_field_value(ps->msg, ct), MIME_PARAMS_DECODE, &v, &params);
        struct slice b = mime_params_get(&params, "boundary");
        if (b.ptr == NULL || b.len == 0 || b.len > 200) {
            ps->msg->flags |= MIME_MSG_NO_BOUNDARY;
        } else if (p->depth + 1 > ps->lim.max_depth) {
            ps->msg->flags |= MIME_MSG_DEPTH_LIMIT;
        } else {
            frame_push(ps, p, b);
        }
        mime_params_free(&params);
        return NULL;
    }
    if (slice_eq_cstr_nocase(p->type, "message") && (slice_eq_cstr_nocase(p->subtype, "rfc822") ||
                                                     slice_eq_cstr_nocase(p->subtype, "global"))) {
        p->kind = MIME_MESSAGE;
        if (p->depth + 1 > ps->lim.max_depth) {
            ps->msg->flags |= MIME_MSG_DEPTH_LIMIT;
            return NULL;
        }
        return part_new(ps, p);
    }
    p->kind = MIME_LEAF;
    return NULL;
}

/* Parses the header of p (at ps->pos) and of any message it encapsulates. */
static void part_begin(struct parser *ps, struct mime_part *p)
{
    while (p != NULL) {
        ps->cur = p;
        header_parse(ps, p);
        p = part_classify(ps, p);
    }
}

/* Ends p at end; lf and bare are the counters at end. */
static void part_close(struct mime_part *p, size_t end, size_t lf, size_t bare)
{
    if (p->body_start > end) {
        /* The header's last line break went to the boundary (RFC 2046:
         * body-part := MIME-part-headers [CRLF *OCTET]): the header ends
         * before it and there is no body. A header that starts after end
         * (an encapsulated message with nothing in it) is empty. */
        if (p->hdr_start <= end)
            p->hdr_bare_lf -= p->bare_at_body - bare;
        else
            p->hdr_start = end;
        p->hdr_len = end - p->hdr_start;
        p->body_start = end;
        p->lf_at_body = lf;
        p->bare_at_body = bare;
    }
    p->body_len = end - p->body_start;
    p->body_lines = lf - p->lf_at_body;
    p->body_bare_lf = bare - p->bare_at_body;
}

/* A boundary line of frame k at ps->pos .. end. */
static void boundary_handle(struct parser *ps, size_t k, bool close, size_t end)
{
    struct frame *f = &ps->frames[k];
    size_t cut = ps->pos, lf = ps->lf, bare = ps->bare;
    /* The line break before the boundary belongs to the boundary, unless
     * the boundary is the first line of the multipart's body. */
    if (cut > f->mp->body_start && ps->d[cut - 1] == '\n') {
        cut--;
        lf--;
        if (cut > f->mp->body_start && ps->d[cut - 1] == '\r')
            cut--;
        else
            bare--;
    }
    for (struct mime_part *q = ps->cur; q != f->mp; q = q->parent)
        part_close(q, cut, lf, bare);
    frames_pop_to(ps, k + 1);
    ps->cur = f->mp;
    advance(ps, end);
    if (close) {
        f->closed = true;
        return;
    }
    struct mime_part *child = part_new(ps, f->mp);
    if (child == NULL) {
        /* Part limit: the rest of the message is the body of f->mp. */
        frames_pop_to(ps, 0);
        return;
    }
    part_begin(ps, child);
}

void mime_parse(struct mime_message *msg_r, struct slice data, const struct mime_limits *limits)
{
    struct parser ps = {0};
    memset(msg_r, 0, sizeof(*msg_r));
    ps.msg = msg_r;
    ps.d = data.ptr != NULL ? data.ptr : "";
    ps.len = data.ptr != NULL ? data.len : 0;
    msg_r->data = slice_make(ps.d, ps.len);
    if (limits != NULL)
        ps.lim = *limits;
    else
        mime_limits_default(&ps.lim);
    if (ps.lim.max_parts < 1)
        ps.lim.max_parts = 1;
    ps.frames = xcalloc((size_t)ps.lim.max_depth + 1, sizeof(*ps.frames));

    msg_r->root = part_new(&ps, NULL);
    part_begin(&ps, msg_r->root);
    while (ps.pos < ps.len) {
        size_t end = line_end(&ps, ps.pos);
        bool close;
        long k = boundary_match(&ps, ps.pos, line_content_end(&ps, ps.pos, end), &close);
        if (k >= 0)
            boundary_handle(&ps, (size_t)k, close, end);
        else
            advance(&ps, end);
    }
    for (size_t i = 0; i < ps.nframes; i++)
        if (!ps.frames[i].closed)
            msg_r->flags |= MIME_MSG_UNTERMINATED;
    for (struct mime_part *q = ps.cur; q != NULL; q = q->parent)
        part_close(q, ps.len, ps.lf, ps.bare);
    frames_pop_to(&ps, 0);
    free(ps.frames);
}

void mime_message_free(struct mime_message *msg)
{
    struct mime_part_block *b = msg->blocks;
    while (b != NULL) {
        struct mime_part_block *next = b->next;
        free(b);
        b = next;
    }
    free(msg->fields);
    memset(msg, 0, sizeof(*msg));
}

struct slice mime_part_header(const struct mime_message *msg, const struct mime_part *p)
{
    return slice_make(msg->data.ptr + p->hdr_start, p->hdr_len);
}

struct slice mime_part_body(const struct mime_message *msg, const struct mime_part *p)
{
    return slice_make(msg->data.ptr + p->body_start, p->body_len);
}
