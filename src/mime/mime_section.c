/*
 * mime_section.c - IMAP section specs (RFC 3501 / RFC 9051 section 6.4.5:
 * BODY[1.2.HEADER], BODY[3.MIME], BODY[TEXT], BODY[HEADER.FIELDS (From)])
 * resolved against a parsed message to a byte range of the original data, or
 * for HEADER.FIELDS[.NOT] to a constructed header subset.
 *
 * Part numbering: the parts of a multipart are numbered from 1; a message
 * that is not multipart has only part 1, its body; a message/rfc822 part's
 * sub-parts are those of the message it encapsulates; any other part of a
 * multipart is its own part 1 (Dovecot answers 2.1 like 2 for a text part). The spec comes from a
 * client: it must never be trusted for sizes, and parsing it never reads
 * outside it.
 */
#include "mime/mime.h"

#include <string.h>

#define MAX_FIELD_NAMES 256 /* names in one HEADER.FIELDS list */

/* Part n (1-based) of a message whose top part is m. */
static const struct mime_part *message_part(const struct mime_part *m, unsigned long n)
{
    if (m->kind != MIME_MULTIPART)
        return n == 1 ? m : NULL;
    const struct mime_part *c = m->children;
    while (c != NULL && --n > 0)
        c = c->next;
    return c;
}

static bool spec_word(struct slice *s, const char *w)
{
    size_t n = strlen(w);
    if (s->len < n || !slice_startswith_nocase(*s, w))
        return false;
    s->ptr += n;
    s->len -= n;
    return true;
}

/* Parses "(name name ...)" into names; false on bad syntax. */
static bool field_list_parse(struct slice s, struct slice *names, size_t *n_r)
{
    size_t n = 0, i = 0;
    while (i < s.len && s.ptr[i] == ' ')
        i++;
    if (i >= s.len || s.ptr[i] != '(')
        return false;
    i++;
    for (;;) {
        while (i < s.len && s.ptr[i] == ' ')
            i++;
        if (i >= s.len)
            return false;
        if (s.ptr[i] == ')') {
            i++;
            break;
        }
        size_t j = i;
        struct slice name;
        if (s.ptr[i] == '"') {
            j = ++i;
            while (j < s.len && s.ptr[j] != '"')
                j++;
            if (j >= s.len)
                return false;
            name = slice_make(s.ptr + i, j - i);
            j++;
        } else {
            while (j < s.len && s.ptr[j] != ' ' && s.ptr[j] != ')' && s.ptr[j] != '(')
                j++;
            name = slice_make(s.ptr + i, j - i);
        }
        if (name.len == 0 || n >= MAX_FIELD_NAMES)
            return false;
        names[n++] = name;
        i = j;
    }
    while (i < s.len && s.ptr[i] == ' ')
        i++;
    *n_r = n;
    return n > 0 && i == s.len;
}

static bool name_listed(struct slice name, const struct slice *names, size_t nnames)
{
    for (size_t k = 0; k < nnames; k++)
        if (slice_eq_nocase(name, names[k]))
            return true;
    return false;
}

/* The fields of p's header whose names are (not) listed, as written but
 * with CRLF line breaks. The raw header is walked rather than the field
 * index, so that lines without a colon and fields past the index limit
 * count too (a line without a colon is a field named by the whole line, as
 * in Dovecot). The subset always ends with an empty line. */
static void header_subset(const struct mime_message *msg, const struct mime_part *p,
                          const struct slice *names, size_t nnames, bool not, struct buf *out)
{
    const char *s = msg->data.ptr + p->hdr_start;
    size_t n = p->hdr_len, i = 0;
    bool take = false;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl == NULL ? n : (size_t)(nl - s) + 1;
        size_t cend = end;
        if (cend > i && s[cend - 1] == '\n')
            cend--;
        if (cend > i && s[cend - 1] == '\r')
            cend--;
        if (cend == i && nl != NULL)
            break; /* the empty line ends the header */
        if (s[i] != ' ' && s[i] != '\t') {
            const char *colon = memchr(s + i, ':', cend - i);
            size_t ne = colon == NULL ? cend : (size_t)(colon - s);
            while (ne > i && (s[ne - 1] == ' ' || s[ne - 1] == '\t'))
                ne--;
            take = name_listed(slice_make(s + i, ne - i), names, nnames) != not ;
        }
        if (take) {
            buf_append(out, s + i, cend - i);
            buf_append_cstr(out, "\r\n");
        }
        i = end;
    }
    buf_append_cstr(out, "\r\n");
}

enum mime_section_result mime_section_locate(const struct mime_message *msg, struct slice spec,
                                             struct mime_section *r)
{
    const struct mime_part *cur = msg->root; /* the message whose text is addressed */
    bool numbered = false;
    struct slice s = spec;
    r->start = r->len = 0;
    buf_reset(&r->built);

    /* part numbers */
    while (s.len > 0 && s.ptr[0] >= '0' && s.ptr[0] <= '9') {
        unsigned long n = 0;
        size_t i = 0;
        while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
            if (n > 100000000UL)
                return MIME_SECTION_BAD;
            n = n * 10 + (unsigned long)(s.ptr[i++] - '0');
        }
        if (n == 0)
            return MIME_SECTION_BAD;
        s.ptr += i;
        s.len -= i;
        if (s.len > 0) {
            if (s.ptr[0] != '.' || s.len == 1)
                return MIME_SECTION_BAD;
            s.ptr++;
            s.len--;
        }
        const struct mime_part *next;
        if (!numbered)
            next = message_part(cur, n);
        else if (cur->kind == MIME_MULTIPART)
            next = message_part(cur, n);
        else if (cur->kind == MIME_MESSAGE)
            next = cur->children == NULL ? NULL : message_part(cur->children, n);
        else
            /* a leaf inside a multipart is its own part 1, as in Dovecot */
            next =
                n == 1 && cur->parent != NULL && cur->parent->kind == MIME_MULTIPART ? cur : NULL;
        if (next == NULL) {
            /* still check the syntax of the rest before answering */
            while (s.len > 0 && ((s.ptr[0] >= '0' && s.ptr[0] <= '9') || s.ptr[0] == '.')) {
                s.ptr++;
                s.len--;
            }
            if (s.len > 0 && !slice_eq_cstr_nocase(s, "MIME") && !slice_eq_cstr_nocase(s, "TEXT") &&
                !slice_eq_cstr_nocase(s, "HEADER") && !slice_startswith_nocase(s, "HEADER.FIELDS"))
                return MIME_SECTION_BAD;
            return MIME_SECTION_NONE;
        }
        cur = next;
        numbered = true;
    }

    if (s.len == 0) {
        if (!numbered) { /* BODY[]: the whole message */
            r->len = msg->data.len;
            return MIME_SECTION_RANGE;
        }
        r->start = cur->body_start;
        r->len = cur->body_len;
        return MIME_SECTION_RANGE;
    }
    if (numbered && slice_eq_cstr_nocase(s, "MIME")) {
        r->start = cur->hdr_start;
        r->len = cur->hdr_len;
        return MIME_SECTION_RANGE;
    }
    /* HEADER / TEXT / HEADER.FIELDS address a message: the top one, or the
     * one a message/rfc822 part encapsulates. */
    const struct mime_part *m = cur;
    if (numbered) {
        if (cur->kind != MIME_MESSAGE)
            m = NULL;
        else
            m = cur->children;
    }
    if (slice_eq_cstr_nocase(s, "TEXT")) {
        if (m == NULL)
            return MIME_SECTION_NONE;
        r->start = m->body_start;
        r->len = m->body_len;
        return MIME_SECTION_RANGE;
    }
    if (slice_eq_cstr_nocase(s, "HEADER")) {
        if (m == NULL)
            return MIME_SECTION_NONE;
        r->start = m->hdr_start;
        r->len = m->hdr_len;
        return MIME_SECTION_RANGE;
    }
    if (!spec_word(&s, "HEADER.FIELDS"))
        return MIME_SECTION_BAD;
    bool not = spec_word(&s, ".NOT");
    if (s.len == 0 || s.ptr[0] != ' ')
        return MIME_SECTION_BAD;
    struct slice names[MAX_FIELD_NAMES];
    size_t nnames;
    if (!field_list_parse(s, names, &nnames))
        return MIME_SECTION_BAD;
    if (m == NULL)
        return MIME_SECTION_NONE;
    header_subset(msg, m, names, nnames, not, &r->built);
    return MIME_SECTION_BUILT;
}
