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

#include "base/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NIL_OFF SIZE_MAX

struct addr_off {
    size_t off[4], len[4]; /* name, adl, mailbox, host */
};

struct aparser {
    const char *s;
    size_t n, i;
    struct buf *store;
    struct addr_off *v;
    size_t nv, cap;
    bool full;
};

static bool is_lwsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_special(char c)
{
    return strchr("()<>[]:;@\\,\"", c) != NULL;
}

/* Skips white space and comments; the first comment's text goes to comment
 * (when not NULL and still empty). */
static void skip_cfws(struct aparser *ap, struct buf *comment)
{
    while (ap->i < ap->n) {
        char c = ap->s[ap->i];
        if (is_lwsp(c)) {
            ap->i++;
            continue;
        }
        if (c != '(')
            return;
        bool take = comment != NULL && comment->len == 0;
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
                buf_append_byte(comment, c);
        }
    }
}

/* Reads a quoted string (at '"') unescaped into out. */
static void read_quoted(struct aparser *ap, struct buf *out)
{
    ap->i++;
    while (ap->i < ap->n) {
        char c = ap->s[ap->i++];
        if (c == '"')
            return;
        if (c == '\\' && ap->i < ap->n)
            c = ap->s[ap->i++];
        else if (c == '\r' || c == '\n')
            continue;
        buf_append_byte(out, c);
    }
}

/* Reads words (atoms with dots, quoted strings) separated by white space or
 * comments, joined by one space. Returns the number of words. */
static size_t read_phrase(struct aparser *ap, struct buf *out)
{
    size_t words = 0;
    for (;;) {
        skip_cfws(ap, NULL);
        if (ap->i >= ap->n)
            break;
        char c = ap->s[ap->i];
        if (c != '"' && is_special(c))
            break;
        if (words++ > 0)
            buf_append_byte(out, ' ');
        if (c == '"') {
            read_quoted(ap, out);
            continue;
        }
        size_t j = ap->i;
        while (j < ap->n && !is_special(ap->s[j]) && !is_lwsp(ap->s[j]))
            j++;
        buf_append(out, ap->s + ap->i, j - ap->i);
        ap->i = j;
    }
    return words;
}

/* Reads a domain after '@': atoms, dots and [literals], no spaces kept. */
static void read_domain(struct aparser *ap, struct buf *out)
{
    for (;;) {
        skip_cfws(ap, NULL);
        if (ap->i >= ap->n)
            return;
        char c = ap->s[ap->i];
        if (c == '[') {
            size_t j = ap->i;
            while (j < ap->n && ap->s[j] != ']')
                j++;
            if (j < ap->n)
                j++;
            for (size_t k = ap->i; k < j; k++)
                if (!is_lwsp(ap->s[k]))
                    buf_append_byte(out, ap->s[k]);
            ap->i = j;
        } else if (!is_special(c)) {
            size_t j = ap->i;
            while (j < ap->n && !is_special(ap->s[j]) && !is_lwsp(ap->s[j]))
                j++;
            buf_append(out, ap->s + ap->i, j - ap->i);
            ap->i = j;
        } else {
            return;
        }
        /* obs-domain: white space or comments around the dots */
        size_t save = ap->i;
        skip_cfws(ap, NULL);
        if (ap->i < ap->n && ap->s[ap->i] == '.') {
            buf_append_byte(out, '.');
            ap->i++;
        } else if (out->len == 0 || out->data[out->len - 1] != '.') {
            ap->i = save;
            return;
        }
    }
}

static void field_put(struct aparser *ap, struct addr_off *a, int k, struct slice v)
{
    if (v.ptr == NULL) {
        a->off[k] = NIL_OFF;
        a->len[k] = 0;
        return;
    }
    a->off[k] = ap->store->len;
    a->len[k] = v.len;
    buf_append_slice(ap->store, v);
}

/* force: a group's end marker, always kept once its start was */
static void emit(struct aparser *ap, struct slice name, struct slice adl, struct slice mailbox,
                 struct slice host, bool force)
{
    if (ap->nv >= MIME_MAX_ADDRESSES && !force) {
        ap->full = true;
        return;
    }
    if (ap->nv == ap->cap) {
        ap->cap = ap->cap == 0 ? 4 : ap->cap * 2;
        ap->v = xreallocarray(ap->v, ap->cap, sizeof(*ap->v));
    }
    struct addr_off *a = &ap->v[ap->nv++];
    field_put(ap, a, 0, name);
    field_put(ap, a, 1, adl);
    field_put(ap, a, 2, mailbox);
    field_put(ap, a, 3, host);
}

static struct slice nonempty(const struct buf *b)
{
    return b->len > 0 ? buf_slice(b) : SLICE_NULL;
}

static struct slice or_default(const struct buf *b, const char *def)
{
    return b->len > 0 ? buf_slice(b) : slice_from_cstr(def);
}

/* <[@route,@route:]local@domain> at '<' */
static void parse_angle(struct aparser *ap, const struct buf *phrase)
{
    struct buf adl = BUF_INIT, local = BUF_INIT, domain = BUF_INIT;
    buf_init(&adl);
    buf_init(&local);
    buf_init(&domain);
    ap->i++;
    skip_cfws(ap, NULL);
    if (ap->i < ap->n && ap->s[ap->i] == '@') {
        /* obs-route: everything up to ':' */
        size_t j = ap->i;
        while (j < ap->n && ap->s[j] != ':' && ap->s[j] != '>')
            j++;
        if (j < ap->n && ap->s[j] == ':') {
            for (size_t k = ap->i; k < j; k++)
                if (!is_lwsp(ap->s[k]))
                    buf_append_byte(&adl, ap->s[k]);
            ap->i = j + 1;
        }
    }
    read_phrase(ap, &local);
    skip_cfws(ap, NULL);
    if (ap->i < ap->n && ap->s[ap->i] == '@') {
        ap->i++;
        read_domain(ap, &domain);
    }
    while (ap->i < ap->n && ap->s[ap->i] != '>' && ap->s[ap->i] != ',' && ap->s[ap->i] != ';')
        ap->i++;
    if (ap->i < ap->n && ap->s[ap->i] == '>')
        ap->i++;
    emit(ap, nonempty(phrase), nonempty(&adl), or_default(&local, "MISSING_MAILBOX"),
         or_default(&domain, "MISSING_DOMAIN"), false);
    buf_free(&adl);
    buf_free(&local);
    buf_free(&domain);
}

static void parse_address(struct aparser *ap, bool in_group);

static void parse_group(struct aparser *ap, const struct buf *phrase)
{
    ap->i++; /* ':' */
    size_t before_start = ap->nv;
    emit(ap, SLICE_NULL, SLICE_NULL, buf_slice(phrase), SLICE_NULL, false);
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
        emit(ap, SLICE_NULL, SLICE_NULL, SLICE_NULL, SLICE_NULL, true);
}

static void parse_address(struct aparser *ap, bool in_group)
{
    struct buf phrase = BUF_INIT, comment = BUF_INIT, domain = BUF_INIT;
    buf_init(&phrase);
    buf_init(&comment);
    buf_init(&domain);
    size_t words = read_phrase(ap, &phrase);
    skip_cfws(ap, NULL);
    char c = ap->i < ap->n ? ap->s[ap->i] : '\0';
    if (c == ':' && !in_group) {
        parse_group(ap, &phrase);
    } else if (c == '<') {
        parse_angle(ap, &phrase);
    } else if (c == '@') {
        ap->i++;
        read_domain(ap, &domain);
        skip_cfws(ap, &comment);
        emit(ap, nonempty(&comment), SLICE_NULL, or_default(&phrase, "MISSING_MAILBOX"),
             or_default(&domain, "MISSING_DOMAIN"), false);
    } else if (words > 0) {
        emit(ap, SLICE_NULL, SLICE_NULL, buf_slice(&phrase), SLICE_LIT("MISSING_DOMAIN"), false);
    }
    buf_free(&phrase);
    buf_free(&comment);
    buf_free(&domain);
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
            for (int j = 0; j < 4; j++)
                *f[j] = ap.v[k].off[j] == NIL_OFF
                            ? SLICE_NULL
                            : slice_make(list_r->store.data + ap.v[k].off[j], ap.v[k].len[j]);
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
