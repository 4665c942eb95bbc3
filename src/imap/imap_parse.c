/*
 * imap_parse.c - the IMAP command reader (resumable, literal-aware) and the
 * argument parser; see imap_parse.h.
 * Must never: trust an announced literal size for anything but a comparison
 * with the limit, or read outside the command buffer.
 */
#include "imap/imap_parse.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

enum reader_state {
    RD_LINE,      /* reading a line into cmd */
    RD_LITERAL,   /* copying literal bytes into cmd */
    RD_SKIP_LINE, /* dropping the rest of an overlong line */
    RD_DONE,      /* cmd holds a finished or dropped command; next feed wipes it */
    RD_DONE_SKIP, /* same, and then the rest of the line is skipped */
};

void imap_reader_init(struct imap_reader *r, size_t max_line, uint64_t max_literal)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->cmd);
    r->state = RD_LINE;
    r->max_line = max_line;
    r->max_literal = max_literal;
}

void imap_reader_reset(struct imap_reader *r)
{
    if (r->cmd.data != NULL)
        explicit_bzero(r->cmd.data, r->cmd.len);
    buf_reset(&r->cmd);
    /* A huge APPEND buffer is not kept for an idle connection. */
    if (r->cmd.cap > 65536) {
        buf_free(&r->cmd);
        buf_init(&r->cmd);
    }
    r->line_start = 0;
    r->literal_left = 0;
    r->literals = 0;
    r->state = RD_LINE;
}

void imap_reader_free(struct imap_reader *r)
{
    imap_reader_reset(r);
    buf_free(&r->cmd);
}

struct slice imap_reader_command(const struct imap_reader *r)
{
    return slice_make(r->cmd.data, r->cmd.len);
}

/*
 * Does the line [start, end) end with a literal announcement "{N}" or
 * "{N+}"? size_r gets N (UINT64_MAX when it does not fit).
 */
static bool line_literal(const char *start, const char *end, uint64_t *size_r, bool *sync_r)
{
    if (end - start < 3 || end[-1] != '}')
        return false;
    const char *p = end - 1;
    *sync_r = true;
    if (p[-1] == '+') {
        *sync_r = false;
        p--;
    }
    const char *digits_end = p;
    while (p > start && p[-1] >= '0' && p[-1] <= '9')
        p--;
    if (p == digits_end || p == start || p[-1] != '{')
        return false;
    uint64_t n = 0;
    for (const char *d = p; d < digits_end; d++) {
        if (n > (UINT64_MAX - 9) / 10) {
            n = UINT64_MAX;
            break;
        }
        n = n * 10 + (uint64_t)(*d - '0');
    }
    *size_r = n;
    return true;
}

size_t imap_reader_feed(struct imap_reader *r, const char *data, size_t len,
                        enum imap_read_result *res)
{
    size_t i = 0;
    *res = IMAP_READ_NEED_MORE;
    if (r->state == RD_DONE || r->state == RD_DONE_SKIP) {
        bool skip = r->state == RD_DONE_SKIP;
        imap_reader_reset(r);
        if (skip)
            r->state = RD_SKIP_LINE;
    }
    while (i < len) {
        if (r->state == RD_LITERAL) {
            size_t take = len - i;
            if (take > r->literal_left)
                take = (size_t)r->literal_left;
            buf_append(&r->cmd, data + i, take);
            i += take;
            r->literal_left -= take;
            if (r->literal_left == 0) {
                r->state = RD_LINE;
                r->line_start = r->cmd.len;
            }
            continue;
        }
        const char *nl = memchr(data + i, '\n', len - i);
        size_t chunk = nl ? (size_t)(nl - (data + i)) : len - i;
        if (r->state == RD_SKIP_LINE) {
            if (nl == NULL)
                return len;
            i += chunk + 1;
            r->state = RD_LINE;
            continue;
        }
        /* RD_LINE; max_line + 1 leaves room for the CR before the LF. */
        if (r->cmd.len - r->line_start + chunk > r->max_line + 1) {
            /* Keep the start of a first line so that the reply can name the tag. */
            if (r->line_start == 0 && r->cmd.len < IMAP_MAX_TAG + 32) {
                size_t keep = IMAP_MAX_TAG + 32 - r->cmd.len;
                buf_append(&r->cmd, data + i, chunk < keep ? chunk : keep);
            }
            i += nl ? chunk + 1 : chunk;
            r->state = nl ? RD_DONE : RD_DONE_SKIP;
            *res = IMAP_READ_LINE_TOO_LONG;
            return i;
        }
        buf_append(&r->cmd, data + i, chunk);
        i += chunk;
        if (nl == NULL)
            return i;
        i++; /* the LF */
        if (r->cmd.len > r->line_start && r->cmd.data[r->cmd.len - 1] == '\r')
            r->cmd.len--;
        uint64_t size;
        bool sync;
        if (!line_literal(r->cmd.data + r->line_start, r->cmd.data + r->cmd.len, &size, &sync)) {
            r->state = RD_DONE;
            *res = IMAP_READ_COMMAND;
            return i;
        }
        if (++r->literals > IMAP_MAX_LITERALS || size > r->max_literal ||
            r->cmd.len + size > (uint64_t)r->max_line + r->max_literal) {
            /* Nothing of the literal has been read, nothing allocated for it. */
            r->state = RD_DONE;
            *res = sync ? IMAP_READ_LITERAL_TOO_BIG : IMAP_READ_LITERAL_FATAL;
            return i;
        }
        buf_append(&r->cmd, "\r\n", 2);
        r->literal_left = size;
        r->state = size > 0 ? RD_LITERAL : RD_LINE;
        r->line_start = r->cmd.len;
        if (sync) {
            *res = IMAP_READ_CONTINUE;
            return i;
        }
    }
    return i;
}

/* ---- argument parsing ---- */

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool is_tag_char(unsigned char c)
{
    return !is_ctl(c) && c != ' ' && c != '(' && c != ')' && c != '{' && c != '%' && c != '*' &&
           c != '"' && c != '\\' && c != '+' && c < 0x80;
}

static size_t tag_len(const char *p, const char *end)
{
    size_t n = 0;
    while (p + n < end && is_tag_char((unsigned char)p[n]))
        n++;
    return n;
}

void imap_peek_tag(struct slice cmd, struct slice *tag_r, struct slice *name_r)
{
    const char *p = cmd.ptr, *end = cmd.ptr + cmd.len;
    size_t n = cmd.ptr ? tag_len(p, end) : 0;
    *name_r = SLICE_NULL;
    if (n == 0 || n > IMAP_MAX_TAG || p + n >= end || p[n] != ' ') {
        *tag_r = SLICE_LIT("*");
        return;
    }
    *tag_r = slice_make(p, n);
    const char *q = p + n + 1, *e = q;
    while (e < end && *e != ' ' && !is_ctl((unsigned char)*e))
        e++;
    *name_r = slice_make(q, (size_t)(e - q));
}

struct parser {
    char *p, *end;
    struct imap_command *cmd;
    const char *error;
};

static bool fail(struct parser *ps, const char *text)
{
    if (ps->error == NULL)
        ps->error = text;
    return false;
}

static struct imap_arg *push(struct parser *ps, struct imap_arg **v, size_t *n, size_t *cap)
{
    if (++ps->cmd->n_nodes > IMAP_MAX_ARGS) {
        fail(ps, "Too many arguments");
        return NULL;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *v = xreallocarray(*v, *cap, sizeof(**v));
    }
    struct imap_arg *a = &(*v)[(*n)++];
    memset(a, 0, sizeof(*a));
    return a;
}

static bool parse_quoted(struct parser *ps, struct imap_arg *a)
{
    char *out = ++ps->p, *start = out;
    while (ps->p < ps->end) {
        char c = *ps->p++;
        if (c == '"') {
            a->type = IMAP_ARG_STRING;
            a->str = slice_make(start, (size_t)(out - start));
            return true;
        }
        if (c == '\r' || c == '\n' || c == '\0')
            return fail(ps, "Invalid character in quoted string");
        if (c == '\\') {
            if (ps->p == ps->end || (*ps->p != '"' && *ps->p != '\\'))
                return fail(ps, "Invalid escape in quoted string");
            c = *ps->p++;
        }
        *out++ = c;
    }
    return fail(ps, "Unterminated quoted string");
}

static bool parse_literal(struct parser *ps, struct imap_arg *a)
{
    char *p = ps->p + 1;
    uint64_t n = 0;
    const char *digits = p;
    while (p < ps->end && *p >= '0' && *p <= '9') {
        if (n > (UINT64_MAX - 9) / 10)
            return fail(ps, "Invalid literal");
        n = n * 10 + (uint64_t)(*p++ - '0');
    }
    if (p == digits)
        return fail(ps, "Invalid literal");
    if (p < ps->end && *p == '+')
        p++;
    /* The reader put CRLF after every announcement it accepted. */
    if (ps->end - p < 3 || p[0] != '}' || p[1] != '\r' || p[2] != '\n')
        return fail(ps, "Invalid literal");
    p += 3;
    if ((uint64_t)(ps->end - p) < n)
        return fail(ps, "Literal shorter than announced");
    a->type = IMAP_ARG_STRING;
    a->literal = true;
    a->str = slice_make(p, (size_t)n);
    ps->p = p + n;
    return true;
}

/*
 * The atom so far names a fetch attribute with a section (RFC 3501 fetch-att,
 * RFC 3516): only there does "[" open a section that may hold spaces and
 * parentheses. Anywhere else "[" is an ASTRING-CHAR like any other (a
 * mailbox may be called "a[b").
 */
static bool section_name(const char *start, const char *p)
{
    static const char *const names[] = {"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
                                        "BINARY.SIZE"};
    struct slice w = slice_make(start, (size_t)(p - start));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (slice_eq_cstr_nocase(w, names[i]))
            return true;
    return false;
}

/* An atom, with BODY[...] sections (which may hold spaces and parentheses) kept whole. */
static bool parse_atom(struct parser *ps, struct imap_arg *a)
{
    char *start = ps->p;
    while (ps->p < ps->end) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '[' && section_name(start, ps->p)) {
            char *close = memchr(ps->p, ']', (size_t)(ps->end - ps->p));
            if (close == NULL)
                return fail(ps, "Missing ']'");
            for (char *q = ps->p; q < close; q++)
                if (*q == '\r' || *q == '\n' || *q == '\0')
                    return fail(ps, "Invalid character in section");
            ps->p = close + 1;
            continue;
        }
        if (c == ' ' || c == '(' || c == ')' || c == '{' || c == '"' || is_ctl(c))
            break;
        ps->p++;
    }
    if (ps->p == start)
        return fail(ps, ps->p < ps->end && *ps->p == ')' ? "Unexpected ')'"
                                                         : "Invalid character in argument");
    a->type = IMAP_ARG_ATOM;
    a->str = slice_make(start, (size_t)(ps->p - start));
    return true;
}

static bool parse_args(struct parser *ps, unsigned depth, struct imap_arg **v, size_t *n);

static bool parse_arg(struct parser *ps, unsigned depth, struct imap_arg *a)
{
    switch (*ps->p) {
    case '"':
        return parse_quoted(ps, a);
    case '{':
        return parse_literal(ps, a);
    case '~': /* literal8 (RFC 3516 APPEND): binary content, NUL allowed */
        if (ps->end - ps->p > 1 && ps->p[1] == '{') {
            ps->p++;
            if (!parse_literal(ps, a))
                return false;
            a->literal8 = true;
            return true;
        }
        return parse_atom(ps, a);
    case '(': {
        if (depth >= IMAP_MAX_DEPTH)
            return fail(ps, "Lists nested too deeply");
        ps->p++;
        a->type = IMAP_ARG_LIST;
        if (!parse_args(ps, depth + 1, &a->list, &a->n_list))
            return false;
        if (ps->p == ps->end || *ps->p != ')')
            return fail(ps, "Missing ')'");
        ps->p++;
        return true;
    }
    default:
        return parse_atom(ps, a);
    }
}

/* Space-separated arguments up to the end (depth 0) or up to ')' (in a list). */
static bool parse_args(struct parser *ps, unsigned depth, struct imap_arg **v, size_t *n)
{
    size_t cap = 0;
    *v = NULL;
    *n = 0;
    bool first = true;
    for (;;) {
        if (ps->p == ps->end)
            return depth == 0 || fail(ps, "Missing ')'");
        if (depth > 0 && *ps->p == ')')
            return true;
        if (!first) {
            if (*ps->p != ' ')
                return fail(ps,
                            *ps->p == ')' ? "Unexpected ')'" : "Missing space between arguments");
            ps->p++;
            if (ps->p == ps->end || *ps->p == ' ' || (depth > 0 && *ps->p == ')'))
                return fail(ps, "Extra space");
        } else if (*ps->p == ' ')
            return fail(ps, "Extra space");
        first = false;
        struct imap_arg *a = push(ps, v, n, &cap);
        if (a == NULL || !parse_arg(ps, depth, a))
            return false;
    }
}

static void args_free(struct imap_arg *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].type == IMAP_ARG_LIST)
            args_free(v[i].list, v[i].n_list);
    free(v);
}

void imap_command_free(struct imap_command *c)
{
    args_free(c->args, c->n_args);
    c->args = NULL;
    c->n_args = 0;
}

bool imap_parse_command(char *cmd, size_t len, struct imap_command *out, const char **error_r)
{
    memset(out, 0, sizeof(*out));
    struct parser ps = {.p = cmd, .end = cmd + len, .cmd = out};
    imap_peek_tag(slice_make(cmd, len), &out->tag, &out->name);
    *error_r = NULL;
    if (out->name.ptr == NULL) {
        *error_r = tag_len(cmd, cmd + len) > IMAP_MAX_TAG ? "Tag too long" : "Invalid tag";
        return false;
    }
    if (out->name.len == 0) {
        *error_r = "Missing command name";
        return false;
    }
    for (size_t i = 0; i < out->name.len; i++) {
        char c = out->name.ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_')) {
            *error_r = "Invalid command name";
            return false;
        }
    }
    ps.p = (char *)out->name.ptr + out->name.len;
    if (ps.p < ps.end) {
        ps.p++; /* the space */
        if (ps.p == ps.end) {
            *error_r = "Extra space";
            return false;
        }
        if (!parse_args(&ps, 0, &out->args, &out->n_args)) {
            imap_command_free(out);
            *error_r = ps.error ? ps.error : "Invalid arguments";
            return false;
        }
    }
    return true;
}

bool imap_arg_astring(const struct imap_arg *a, struct slice *out)
{
    if (a->type == IMAP_ARG_LIST)
        return false;
    *out = a->str;
    return true;
}

bool imap_arg_is_atom(const struct imap_arg *a, const char *word)
{
    return a->type == IMAP_ARG_ATOM && slice_eq_cstr_nocase(a->str, word);
}

bool imap_parse_number(struct slice s, uint64_t max, uint64_t *out)
{
    if (s.len == 0 || s.len > 20)
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c < '0' || c > '9')
            return false;
        uint64_t d = (uint64_t)(c - '0');
        if (n > (max - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

/* seq-number = nz-number / "*" ; 0 stands for "*" */
static bool seq_number(const char **p, const char *end, uint32_t *out)
{
    if (*p < end && **p == '*') {
        (*p)++;
        *out = 0;
        return true;
    }
    const char *s = *p;
    while (*p < end && **p >= '0' && **p <= '9')
        (*p)++;
    uint64_t n;
    if (*p == s || *s == '0' || !imap_parse_number(slice_make(s, (size_t)(*p - s)), UINT32_MAX, &n))
        return false;
    *out = (uint32_t)n;
    return true;
}

bool imap_seqset_parse(struct slice s, struct imap_seqset *out)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    size_t cap = 0;
    out->v = NULL;
    out->n = 0;
    if (s.len == 0)
        return false;
    for (;;) {
        struct imap_seq_range r;
        if (!seq_number(&p, end, &r.lo))
            goto bad;
        r.hi = r.lo;
        if (p < end && *p == ':') {
            p++;
            if (!seq_number(&p, end, &r.hi))
                goto bad;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 4;
            out->v = xreallocarray(out->v, cap, sizeof(*out->v));
        }
        out->v[out->n++] = r;
        if (p == end)
            return true;
        if (*p++ != ',')
            goto bad;
    }
bad:
    imap_seqset_free(out);
    return false;
}

void imap_seqset_free(struct imap_seqset *set)
{
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

void imap_seqset_write(struct buf *out, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        buf_printf(out, i ? ",%u" : "%u", v[i]);
        if (j > i)
            buf_printf(out, ":%u", v[j]);
        i = j + 1;
    }
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star)
{
    for (size_t i = 0; i < set->n; i++) {
        uint32_t lo = set->v[i].lo ? set->v[i].lo : star;
        uint32_t hi = set->v[i].hi ? set->v[i].hi : star;
        if (lo > hi) {
            uint32_t t = lo;
            lo = hi;
            hi = t;
        }
        if (n >= lo && n <= hi)
            return true;
    }
    return false;
}
