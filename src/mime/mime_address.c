/*
 * mime_address.c - RFC 5322 address lists (From, To, Cc, ...) into the IMAP
 * ENVELOPE shape: (name adl mailbox host), groups as a start element
 * (mailbox = group name, host NIL) and an end element (all NIL).
 *
 * Lenient like Dovecot, whose output it mirrors: a missing local part or
 * domain becomes MISSING_MAILBOX / MISSING_DOMAIN (so that a NIL host is only
 * ever a group marker), a comment after a bare addr-spec is used as the name,
 * obsolete routes (@a,@b:) go to adl. It must never fail, loop without
 * consuming input, or keep more than MIME_MAX_ADDRESSES elements.
 */
#include "mime/mime.h"
#include "mime/mime_chars.h"

#include "base/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NIL_OFF SIZE_MAX

/* A piece of text in the store: off NIL_OFF = NIL. */
struct span {
    size_t off, len;
};

struct addr_off {
    struct span f[4]; /* name, adl, mailbox, host */
};

struct aparser {
    const char *s;
    size_t n, i;
    struct buf *store; /* every decoded piece goes here, once */
    struct addr_off *v;
    size_t nv, cap;
    bool full;
};

static const struct span NIL_SPAN = {NIL_OFF, 0};

/* RFC 5322 specials, with '.' left to atoms (dot-atoms, obs-phrase). */
static bool is_special(char c)
{
    switch (c) {
    case '(':
    case ')':
    case '<':
    case '>':
    case '[':
    case ']':
    case ':':
    case ';':
    case '@':
    case '\\':
    case ',':
    case '"':
        return true;
    default:
        return false;
    }
}

static struct span span_open(const struct aparser *ap)
{
    return (struct span){ap->store->len, 0};
}

static void span_close(const struct aparser *ap, struct span *sp)
{
    sp->len = ap->store->len - sp->off;
}

/* Skips white space and comments; with comment set, the text of the first
 * comment is appended to the store and described by *comment. */
static void skip_cfws(struct aparser *ap, struct span *comment)
{
    while (ap->i < ap->n) {
        char c = ap->s[ap->i];
        if (mime_is_lwsp(c)) {
            ap->i++;
            continue;
        }
        if (c != '(')
            return;
        bool take = comment != NULL && comment->off == NIL_OFF;
        if (take)
            *comment = span_open(ap);
        unsigned depth = 0;
        while (ap->i < ap->n) {
            c = ap->s[ap->i++];
            if (c == '\\' && ap->i < ap->n) {
                c = ap->s[ap->i++];
            } else if (c == '(') {
                if (depth++ == 0)
                    continue;
            } else if (c == ')') {
                if (--depth == 0)
                    break;
            } else if (c == '\r' || c == '\n') {
                continue;
            }
            if (take)
                buf_append_byte(ap->store, c);
        }
        if (take)
            span_close(ap, comment);
    }
}

/* Reads a quoted string (at '"') unescaped into the store. */
static void read_quoted(struct aparser *ap)
{
    ap->i++;
    while (ap->i < ap->n) {
        size_t j = ap->i;
        while (j < ap->n && ap->s[j] != '"' && ap->s[j] != '\\' && ap->s[j] != '\r' &&
               ap->s[j] != '\n')
            j++;
        buf_append(ap->store, ap->s + ap->i, j - ap->i);
        ap->i = j;
        if (j >= ap->n)
            return;
        char c = ap->s[ap->i++];
        if (c == '"')
            return;
        if (c == '\\' && ap->i < ap->n)
            buf_append_byte(ap->store, ap->s[ap->i++]);
    }
}

/* Reads words (atoms with dots, quoted strings) separated by white space or
 * comments, joined by one space, into the store. */
static struct span read_phrase(struct aparser *ap, size_t *words_r)
{
    size_t words = 0;
    struct span sp = span_open(ap);
    for (;;) {
        skip_cfws(ap, NULL);
        if (ap->i >= ap->n)
            break;
        char c = ap->s[ap->i];
        if (c != '"' && is_special(c))
            break;
        if (words++ > 0)
            buf_append_byte(ap->store, ' ');
        if (c == '"') {
            read_quoted(ap);
            continue;
        }
        size_t j = ap->i;
        while (j < ap->n && !is_special(ap->s[j]) && !mime_is_lwsp(ap->s[j]))
            j++;
        buf_append(ap->store, ap->s + ap->i, j - ap->i);
        ap->i = j;
    }
    span_close(ap, &sp);
    *words_r = words;
    return sp;
}

/* Reads a domain after '@': atoms, dots and [literals], no spaces kept. */
static struct span read_domain(struct aparser *ap)
{
    struct span sp = span_open(ap);
    struct buf *out = ap->store;
    for (;;) {
        skip_cfws(ap, NULL);
        if (ap->i >= ap->n)
            break;
        char c = ap->s[ap->i];
        if (c == '[') {
            size_t j = ap->i;
            while (j < ap->n && ap->s[j] != ']')
                j++;
            if (j < ap->n)
                j++;
            for (size_t k = ap->i; k < j; k++)
                if (!mime_is_lwsp(ap->s[k]))
                    buf_append_byte(out, ap->s[k]);
            ap->i = j;
        } else if (!is_special(c)) {
            size_t j = ap->i;
            while (j < ap->n && !is_special(ap->s[j]) && !mime_is_lwsp(ap->s[j]))
                j++;
            buf_append(out, ap->s + ap->i, j - ap->i);
            ap->i = j;
        } else {
            break;
        }
        /* obs-domain: white space or comments around the dots */
        size_t save = ap->i;
        skip_cfws(ap, NULL);
        if (ap->i < ap->n && ap->s[ap->i] == '.') {
            buf_append_byte(out, '.');
            ap->i++;
        } else if (out->len == sp.off || out->data[out->len - 1] != '.') {
            ap->i = save;
            break;
        }
    }
    span_close(ap, &sp);
    return sp;
}

/* force: a group's end marker, always kept once its start was */
static void emit(struct aparser *ap, struct span name, struct span adl, struct span mailbox,
                 struct span host, bool force)
{
    if (ap->nv >= MIME_MAX_ADDRESSES && !force) {
        ap->full = true;
        return;
    }
    if (ap->nv == ap->cap) {
        ap->cap = ap->cap == 0 ? 4 : ap->cap * 2;
        ap->v = xreallocarray(ap->v, ap->cap, sizeof(*ap->v));
    }
    ap->v[ap->nv++] = (struct addr_off){{name, adl, mailbox, host}};
}

static struct span nonempty(struct span sp)
{
    return sp.len > 0 ? sp : NIL_SPAN;
}

static struct span or_default(struct aparser *ap, struct span sp, const char *def)
{
    if (sp.len > 0)
        return sp;
    sp = span_open(ap);
    buf_append_cstr(ap->store, def);
    span_close(ap, &sp);
    return sp;
}

/* <[@route,@route:]local@domain> at '<' */
static void parse_angle(struct aparser *ap, struct span phrase)
{
    struct span adl = NIL_SPAN, domain = NIL_SPAN;
    size_t words;
    ap->i++;
    skip_cfws(ap, NULL);
    if (ap->i < ap->n && ap->s[ap->i] == '@') {
        /* obs-route: everything up to ':' */
        size_t j = ap->i;
        while (j < ap->n && ap->s[j] != ':' && ap->s[j] != '>')
            j++;
        if (j < ap->n && ap->s[j] == ':') {
            adl = span_open(ap);
            for (size_t k = ap->i; k < j; k++)
                if (!mime_is_lwsp(ap->s[k]))
                    buf_append_byte(ap->store, ap->s[k]);
            span_close(ap, &adl);
            ap->i = j + 1;
        }
    }
    struct span local = read_phrase(ap, &words);
    skip_cfws(ap, NULL);
    if (ap->i < ap->n && ap->s[ap->i] == '@') {
        ap->i++;
        domain = read_domain(ap);
    }
    while (ap->i < ap->n && ap->s[ap->i] != '>' && ap->s[ap->i] != ',' && ap->s[ap->i] != ';')
        ap->i++;
    if (ap->i < ap->n && ap->s[ap->i] == '>')
        ap->i++;
    emit(ap, nonempty(phrase), nonempty(adl), or_default(ap, local, "MISSING_MAILBOX"),
         or_default(ap, domain, "MISSING_DOMAIN"), false);
}

static void parse_address(struct aparser *ap, bool in_group);

static void parse_group(struct aparser *ap, struct span phrase)
{
    ap->i++; /* ':' */
    size_t before_start = ap->nv;
    emit(ap, NIL_SPAN, NIL_SPAN, phrase, NIL_SPAN, false);
    bool started = ap->nv > before_start;
    while (ap->i < ap->n) {
        skip_cfws(ap, NULL);
        if (ap->i >= ap->n)
            break;
        char c = ap->s[ap->i];
        if (c == ';') {
            ap->i++;
            break;
        }
        if (c == ',') {
            ap->i++;
            continue;
        }
        size_t before = ap->i;
        parse_address(ap, true);
        if (ap->i == before)
            ap->i++; /* junk: always make progress */
    }
    if (started)
        emit(ap, NIL_SPAN, NIL_SPAN, NIL_SPAN, NIL_SPAN, true);
}

static void parse_address(struct aparser *ap, bool in_group)
{
    size_t words;
    struct span phrase = read_phrase(ap, &words);
    skip_cfws(ap, NULL);
    char c = ap->i < ap->n ? ap->s[ap->i] : '\0';
    if (c == ':' && !in_group) {
        parse_group(ap, phrase);
    } else if (c == '<') {
        parse_angle(ap, phrase);
    } else if (c == '@') {
        ap->i++;
        struct span domain = read_domain(ap), comment = NIL_SPAN;
        skip_cfws(ap, &comment);
        emit(ap, nonempty(comment), NIL_SPAN, or_default(ap, phrase, "MISSING_MAILBOX"),
             or_default(ap, domain, "MISSING_DOMAIN"), false);
    } else if (words > 0) {
        emit(ap, NIL_SPAN, NIL_SPAN, phrase, or_default(ap, NIL_SPAN, "MISSING_DOMAIN"), false);
    }
}

void mime_address_parse(struct slice raw, struct mime_address_list *list_r)
{
    struct aparser ap = {.s = raw.ptr != NULL ? raw.ptr : "", .n = raw.ptr != NULL ? raw.len : 0};
    memset(list_r, 0, sizeof(*list_r));
    buf_init(&list_r->store);
    ap.store = &list_r->store;
    while (ap.i < ap.n && !ap.full) {
        skip_cfws(&ap, NULL);
        if (ap.i >= ap.n)
            break;
        char c = ap.s[ap.i];
        if (c == ',' || c == ';') {
            ap.i++;
            continue;
        }
        size_t before = ap.i;
        parse_address(&ap, false);
        if (ap.i == before)
            ap.i++;
    }
    if (ap.nv > 0) {
        list_r->v = xcalloc(ap.nv, sizeof(*list_r->v));
        list_r->n = ap.nv;
        for (size_t k = 0; k < ap.nv; k++) {
            struct slice *f[4] = {&list_r->v[k].name, &list_r->v[k].adl, &list_r->v[k].mailbox,
                                  &list_r->v[k].host};
            for (int j = 0; j < 4; j++) {
                struct span sp = ap.v[k].f[j];
                *f[j] = sp.off == NIL_OFF ? SLICE_NULL
                                          : slice_make(list_r->store.data + sp.off, sp.len);
            }
        }
    }
    free(ap.v);
}

void mime_address_list_free(struct mime_address_list *list)
{
    free(list->v);
    buf_free(&list->store);
    memset(list, 0, sizeof(*list));
}
