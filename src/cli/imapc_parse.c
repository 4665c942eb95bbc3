/*
 * imapc_parse.c - parses a remote IMAP server's responses for `wharf import
 * imap` (see imapc_parse.h). A small tokenizer over the response text:
 * atoms, numbers, quoted strings, "{N}" literal references (taken from
 * lits[] in order), NIL and parenthesised lists (skipped to any depth up to
 * IMAPC_DEPTH_MAX). Never reads past the text, never trusts a count.
 */
#include "cli/imapc_parse.h"

#include "base/date.h"

#include <string.h>

/* Nesting a FETCH may carry (BODYSTRUCTURE); deeper is refused. */
#define IMAPC_DEPTH_MAX 64

struct cursor {
    const struct imapc_resp *r;
    size_t pos;
    size_t lit; /* next literal */
};

static bool at_end(const struct cursor *c)
{
    return c->pos >= c->r->text.len;
}

static char peek(const struct cursor *c)
{
    return at_end(c) ? '\0' : c->r->text.ptr[c->pos];
}

static void skip_spaces(struct cursor *c)
{
    while (!at_end(c) && peek(c) == ' ')
        c->pos++;
}

static bool is_atom_char(char ch)
{
    unsigned char u = (unsigned char)ch;
    return u > ' ' && u < 0x7f && ch != '(' && ch != ')' && ch != '{' && ch != '"' && ch != '%' &&
           ch != '*' && ch != '\\' && ch != ']' && ch != '[';
}

/* An atom (also "\Flag" and "BODY[]"); returns its slice (empty if none). */
static struct slice atom(struct cursor *c)
{
    size_t start = c->pos;
    if (peek(c) == '\\')
        c->pos++;
    while (!at_end(c)) {
        char ch = peek(c);
        if (is_atom_char(ch) || (ch == '*' && c->pos > start)) {
            c->pos++;
        } else if (ch == '[') { /* BODY[...] keeps its section */
            const char *close = memchr(c->r->text.ptr + c->pos, ']', c->r->text.len - c->pos);
            if (close == NULL)
                break;
            c->pos = (size_t)(close - c->r->text.ptr) + 1;
        } else
            break;
    }
    return slice_make(c->r->text.ptr + start, c->pos - start);
}

static bool number(struct slice s, uint64_t *v_r)
{
    return slice_to_u64(s, UINT64_MAX, v_r);
}

/*
 * A string: quoted (escapes removed into tmp), literal, or NIL. The value is
 * a slice into the text, a literal, or tmp. False when there is none.
 */
static bool string(struct cursor *c, struct buf *tmp, struct slice *v_r, bool *nil_r)
{
    *nil_r = false;
    char ch = peek(c);
    if (ch == '"') {
        buf_reset(tmp);
        c->pos++;
        while (!at_end(c) && peek(c) != '"') {
            if (peek(c) == '\\' && c->pos + 1 < c->r->text.len)
                c->pos++;
            buf_append_byte(tmp, peek(c));
            c->pos++;
        }
        if (at_end(c))
            return false;
        c->pos++;
        *v_r = buf_slice(tmp);
        return true;
    }
    if (ch == '{') {
        const char *close = memchr(c->r->text.ptr + c->pos, '}', c->r->text.len - c->pos);
        if (close == NULL || c->lit >= c->r->n_lits)
            return false;
        c->pos = (size_t)(close - c->r->text.ptr) + 1;
        *v_r = c->r->lits[c->lit++];
        return true;
    }
    struct slice a = atom(c);
    if (a.len == 3 && slice_eq_cstr_nocase(a, "NIL")) {
        *nil_r = true;
        *v_r = slice_make("", 0);
        return true;
    }
    if (a.len == 0)
        return false;
    *v_r = a; /* an astring */
    return true;
}

/* Skips one value of any kind (nested lists included). */
static bool skip_value(struct cursor *c, struct buf *tmp, int depth)
{
    if (depth > IMAPC_DEPTH_MAX)
        return false;
    skip_spaces(c);
    if (peek(c) == '(') {
        c->pos++;
        for (;;) {
            skip_spaces(c);
            if (at_end(c))
                return false;
            if (peek(c) == ')') {
                c->pos++;
                return true;
            }
            if (!skip_value(c, tmp, depth + 1))
                return false;
        }
    }
    struct slice v;
    bool nil;
    return string(c, tmp, &v, &nil);
}

/* Expects "* " and returns the cursor after it. */
static bool untagged(const struct imapc_resp *r, struct cursor *c)
{
    *c = (struct cursor){r, 0, 0};
    if (r->text.len < 2 || r->text.ptr[0] != '*' || r->text.ptr[1] != ' ')
        return false;
    c->pos = 2;
    return true;
}

static unsigned system_flag(struct slice f)
{
    static const struct {
        const char *name;
        unsigned bit;
    } flags[] = {{"\\Seen", 1u << 0},
                 {"\\Answered", 1u << 1},
                 {"\\Flagged", 1u << 2},
                 {"\\Deleted", 1u << 3},
                 {"\\Draft", 1u << 4}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (slice_eq_cstr_nocase(f, flags[i].name))
            return flags[i].bit;
    return 0;
}

static bool flag_list(struct cursor *c, struct imapc_fetch *f)
{
    skip_spaces(c);
    if (peek(c) != '(')
        return false;
    c->pos++;
    for (;;) {
        skip_spaces(c);
        if (at_end(c))
            return false;
        if (peek(c) == ')') {
            c->pos++;
            return true;
        }
        struct slice fl = atom(c);
        if (fl.len == 0)
            return false;
        if (fl.ptr[0] == '\\')
            f->flags |= system_flag(fl);
        else {
            if (f->keywords.len)
                buf_append_byte(&f->keywords, ' ');
            buf_append_slice(&f->keywords, fl);
        }
    }
}

bool imapc_parse_fetch(const struct imapc_resp *r, struct imapc_fetch *f)
{
    struct buf kw = f->keywords;
    memset(f, 0, sizeof(*f));
    f->keywords = kw;
    buf_reset(&f->keywords);
    struct cursor c;
    if (!untagged(r, &c))
        return false;
    uint64_t seq;
    if (!number(atom(&c), &seq) || seq == 0 || seq > UINT32_MAX)
        return false;
    f->seq = (uint32_t)seq;
    skip_spaces(&c);
    if (!slice_eq_cstr_nocase(atom(&c), "FETCH"))
        return false;
    skip_spaces(&c);
    if (peek(&c) != '(')
        return false;
    c.pos++;
    struct buf tmp = BUF_INIT;
    bool ok = false;
    for (;;) {
        skip_spaces(&c);
        if (at_end(&c))
            break;
        if (peek(&c) == ')') {
            ok = true;
            break;
        }
        struct slice key = atom(&c);
        if (key.len == 0)
            break;
        skip_spaces(&c);
        uint64_t v;
        struct slice s;
        bool nil;
        if (slice_eq_cstr_nocase(key, "UID")) {
            if (!number(atom(&c), &v) || v == 0 || v > UINT32_MAX)
                break;
            f->uid = (uint32_t)v;
        } else if (slice_eq_cstr_nocase(key, "RFC822.SIZE")) {
            if (!number(atom(&c), &v))
                break;
            f->size = v;
        } else if (slice_eq_cstr_nocase(key, "FLAGS")) {
            if (!flag_list(&c, f))
                break;
            f->has_flags = true;
        } else if (slice_eq_cstr_nocase(key, "INTERNALDATE")) {
            if (!string(&c, &tmp, &s, &nil))
                break;
            if (!date_imap_parse(s, &f->internaldate))
                f->internaldate = 0;
        } else if (slice_eq_cstr_nocase(key, "BODY[]") || slice_eq_cstr_nocase(key, "RFC822")) {
            /* a message body comes as a literal (a quoted string cannot hold CRLF) */
            if (peek(&c) != '{' || !string(&c, &tmp, &s, &nil))
                break;
            f->body = s;
            f->has_body = true;
        } else if (!skip_value(&c, &tmp, 0))
            break;
    }
    buf_free(&tmp);
    return ok;
}

bool imapc_parse_list(const struct imapc_resp *r, const char *kind, struct buf *name_r,
                      char *delim_r, bool *noselect_r)
{
    buf_reset(name_r);
    *delim_r = 0;
    *noselect_r = false;
    struct cursor c;
    if (!untagged(r, &c) || !slice_eq_cstr_nocase(atom(&c), kind))
        return false;
    skip_spaces(&c);
    if (peek(&c) != '(')
        return false;
    c.pos++;
    for (;;) {
        skip_spaces(&c);
        if (at_end(&c))
            return false;
        if (peek(&c) == ')') {
            c.pos++;
            break;
        }
        struct slice fl = atom(&c);
        if (fl.len == 0)
            return false;
        if (slice_eq_cstr_nocase(fl, "\\Noselect") || slice_eq_cstr_nocase(fl, "\\NonExistent"))
            *noselect_r = true;
    }
    skip_spaces(&c);
    struct buf tmp = BUF_INIT;
    struct slice d, n;
    bool nil;
    bool ok = string(&c, &tmp, &d, &nil) && (nil || d.len == 1);
    if (ok && !nil)
        *delim_r = d.ptr[0];
    skip_spaces(&c);
    if (ok)
        ok = string(&c, &tmp, &n, &nil) && !nil && n.len > 0 && memchr(n.ptr, '\0', n.len) == NULL;
    if (ok)
        buf_append_slice(name_r, n);
    buf_free(&tmp);
    return ok;
}

bool imapc_parse_exists(const struct imapc_resp *r, uint32_t *n_r)
{
    struct cursor c;
    uint64_t v;
    if (!untagged(r, &c) || !number(atom(&c), &v) || v > UINT32_MAX)
        return false;
    skip_spaces(&c);
    if (!slice_eq_cstr_nocase(atom(&c), "EXISTS"))
        return false;
    *n_r = (uint32_t)v;
    return true;
}

bool imapc_parse_code_number(const struct imapc_resp *r, const char *name, uint32_t *n_r)
{
    struct slice t = r->text;
    const char *open = memchr(t.ptr, '[', t.len);
    if (open == NULL)
        return false;
    size_t i = (size_t)(open - t.ptr) + 1, n = strlen(name);
    if (t.len - i < n + 2 || strncasecmp(t.ptr + i, name, n) != 0 || t.ptr[i + n] != ' ')
        return false;
    i += n + 1;
    size_t start = i;
    while (i < t.len && t.ptr[i] >= '0' && t.ptr[i] <= '9')
        i++;
    uint64_t v;
    if (i >= t.len || t.ptr[i] != ']' || !number(slice_make(t.ptr + start, i - start), &v) ||
        v > UINT32_MAX)
        return false;
    *n_r = (uint32_t)v;
    return true;
}

int imapc_parse_tagged(const struct imapc_resp *r, const char *tag, struct slice *text_r)
{
    size_t n = strlen(tag);
    struct slice t = r->text;
    if (t.len < n + 3 || memcmp(t.ptr, tag, n) != 0 || t.ptr[n] != ' ')
        return -1;
    struct slice rest = slice_make(t.ptr + n + 1, t.len - n - 1);
    if (text_r)
        *text_r = rest;
    if (slice_startswith_nocase(rest, "OK"))
        return 1;
    if (slice_startswith_nocase(rest, "NO") || slice_startswith_nocase(rest, "BAD"))
        return 0;
    return -1;
}
