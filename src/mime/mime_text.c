/*
 * mime_text.c - the text a search looks in: the decoded text of a message's
 * text parts (transfer encoding undone, charset to UTF-8), text/html
 * rendered to plain text. The store's full-text index is filled from
 * mime_body_text and the scans of JMAP Email/query and IMAP SEARCH look in
 * the same text, so that the index and a scan give one answer.
 *
 * The HTML renderer (JMAP's preview renderer, the one of the tree) is a
 * small tolerant scanner, not an HTML parser. Must never: read outside its
 * input, recurse, or keep any state across calls.
 */
#include "mime/mime.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Whether the tag at in[i] ('<', or "</" when closing) is named name (ASCII
 * case-insensitive, then white space, '/' or '>'). */
static bool tag_is(struct slice in, size_t i, bool closing, const char *name)
{
    size_t n = strlen(name), at = i + 1 + (closing ? 1 : 0);
    if (closing && (i + 1 >= in.len || in.ptr[i + 1] != '/'))
        return false;
    if (at + n >= in.len || strncasecmp(in.ptr + at, name, n) != 0)
        return false;
    char c = in.ptr[at + n];
    return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The index just past the first occurrence of what at or after i, in.len when none. */
static size_t skip_past(struct slice in, size_t i, const char *what)
{
    size_t n = strlen(what);
    for (; i + n <= in.len; i++)
        if (strncasecmp(in.ptr + i, what, n) == 0)
            return i + n;
    return in.len;
}

/*
 * Text of an HTML part as a reader sees it (JMAP previews, the full-text
 * index and the search scans; moved here from jmap_email.c): tags
 * dropped, the content of <style>, <script>, <title> and comments dropped
 * (never shown), a block element's tag a space, the common entities decoded,
 * white space runs one space, no leading space.
 */
void mime_html_text(struct slice in, struct buf *out)
{
    static const char *const hidden[] = {"style", "script", "title", "head"};
    static const char *const blocks[] = {"br", "p",     "div", "tr", "td", "th",
                                         "li", "h1",    "h2",  "h3", "h4", "h5",
                                         "h6", "table", "ul",  "ol", "hr", "blockquote"};
    static const struct {
        const char *name, *text;
    } entities[] = {{"&amp;", "&"}, {"&lt;", "<"},   {"&gt;", ">"},   {"&quot;", "\""},
                    {"&#39;", "'"}, {"&apos;", "'"}, {"&nbsp;", " "}, {"&#160;", " "}};
    size_t start = out->len;
    bool space = false;
    size_t i = 0;
    while (i < in.len) {
        char c = in.ptr[i];
        const char *emit = NULL;
        char one[2] = {c, '\0'};
        if (c == '<') {
            bool block = false, skipped = false;
            if (i + 4 <= in.len && memcmp(in.ptr + i, "<!--", 4) == 0) {
                i = skip_past(in, i + 4, "-->");
                skipped = true;
            }
            for (size_t k = 0; !skipped && k < sizeof(hidden) / sizeof(hidden[0]); k++) {
                if (tag_is(in, i, false, hidden[k])) {
                    /* up to the end of the closing tag (or the end: never shown) */
                    char close[16];
                    snprintf(close, sizeof(close), "</%s", hidden[k]);
                    i = skip_past(in, i + 1, close);
                    i = skip_past(in, i, ">");
                    skipped = block = true;
                }
            }
            for (size_t k = 0; !skipped && k < sizeof(blocks) / sizeof(blocks[0]); k++)
                block = block || tag_is(in, i, false, blocks[k]) || tag_is(in, i, true, blocks[k]);
            if (!skipped)
                i = skip_past(in, i, ">");
            if (!block)
                continue;
            emit = " ";
        } else if (c == '&') {
            for (size_t k = 0; k < sizeof(entities) / sizeof(entities[0]) && !emit; k++) {
                size_t n = strlen(entities[k].name);
                if (i + n <= in.len && strncasecmp(in.ptr + i, entities[k].name, n) == 0) {
                    emit = entities[k].text;
                    i += n;
                }
            }
            if (!emit) {
                emit = one;
                i++;
            }
        } else {
            emit = one;
            i++;
        }
        for (const char *e = emit; *e; e++) {
            bool ws = *e == ' ' || *e == '\n' || *e == '\r' || *e == '\t';
            if (ws && (space || out->len == start))
                continue;
            space = ws;
            buf_append_byte(out, ws ? ' ' : *e);
        }
    }
}

/* The part after p in a preorder walk of the tree, NULL at the end. */
static const struct mime_part *preorder_next(const struct mime_part *p)
{
    if (p->children)
        return p->children;
    while (p && p->next == NULL)
        p = p->parent;
    return p ? p->next : NULL;
}

void mime_body_text(const struct mime_message *msg, struct buf *out)
{
    struct buf t = BUF_INIT;
    for (const struct mime_part *p = msg->root; p != NULL; p = preorder_next(p)) {
        if (p->kind == MIME_LEAF && slice_eq_cstr_nocase(p->type, "text")) {
            buf_reset(&t);
            mime_part_text(msg, p, &t);
            if (slice_eq_cstr_nocase(p->subtype, "html"))
                mime_html_text(buf_slice(&t), out);
            else
                buf_append_slice(out, buf_slice(&t));
            buf_append(out, "\n", 1);
        }
    }
    buf_free(&t);
}

bool mime_body_other(const struct mime_message *msg)
{
    for (const struct mime_part *p = msg->root; p != NULL; p = preorder_next(p))
        if (p->kind == MIME_LEAF && !slice_eq_cstr_nocase(p->type, "text"))
            return true;
    return false;
}
