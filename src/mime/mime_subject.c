/*
 * mime_subject.c - the base subject of a Subject field (RFC 5256 section
 * 2.1): what IMAP SORT SUBJECT and THREAD compare, and what the store's
 * thread assignment requires a reply to share with its parent (JMAP
 * threads, RFC 8621 3), so both use this one copy.
 * Must never: compare or fold anything but ASCII letters case-insensitively
 * (callers compare the result as i;ascii-casemap or byte for byte).
 */
#include "mime/mime.h"

#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* A subj-blob at p: "[" *BLOBCHAR "]" *WSP; its length, 0 when none. */
static size_t blob_len(const char *p, size_t n)
{
    if (n == 0 || p[0] != '[')
        return 0;
    size_t i = 1;
    while (i < n && p[i] != ']' && p[i] != '[')
        i++;
    if (i == n || p[i] != ']')
        return 0;
    i++;
    while (i < n && is_wsp(p[i]))
        i++;
    return i;
}

/* subj-refwd at p: ("re" / "fw" / "fwd") *WSP [subj-blob] ":"; its length, 0 when none. */
static size_t refwd_len(const char *p, size_t n)
{
    size_t i;
    if (n >= 3 && strncasecmp(p, "fwd", 3) == 0)
        i = 3;
    else if (n >= 2 && (strncasecmp(p, "re", 2) == 0 || strncasecmp(p, "fw", 2) == 0))
        i = 2;
    else
        return 0;
    while (i < n && is_wsp(p[i]))
        i++;
    i += blob_len(p + i, n - i);
    return i < n && p[i] == ':' ? i + 1 : 0;
}

/* subj-leader at p: (*subj-blob subj-refwd) / WSP, repeated; its length (*refwd: one was there). */
static size_t leader_len(const char *p, size_t n, bool *refwd)
{
    size_t i = 0;
    for (;;) {
        if (i < n && is_wsp(p[i])) {
            i++;
            continue;
        }
        size_t j = i, b;
        while ((b = blob_len(p + j, n - j)) > 0)
            j += b;
        size_t r = refwd_len(p + j, n - j);
        if (r == 0)
            return i;
        *refwd = true;
        i = j + r;
    }
}

bool mime_base_subject(struct slice subject, struct buf *out)
{
    struct buf dec = BUF_INIT;
    mime_decode_words(subject, &dec);
    /* (1) white space runs (folding included) become one space */
    buf_reset(out);
    for (size_t i = 0; i < dec.len; i++) {
        char c = dec.data[i];
        if (c == '\r' || c == '\n' || c == '\t')
            c = ' ';
        if (c == ' ' && (out->len == 0 || out->data[out->len - 1] == ' '))
            continue;
        buf_append_byte(out, c);
    }
    buf_free(&dec);
    if (out->len == 0)
        return false;
    char *p = out->data;
    size_t start = 0, end = out->len;
    bool reply = false;
    for (;;) {
        /* (2) trailing "(fwd)" and white space */
        for (;;) {
            if (end > start && is_wsp(p[end - 1]))
                end--;
            else if (end - start >= 5 && strncasecmp(p + end - 5, "(fwd)", 5) == 0) {
                end -= 5;
                reply = true;
            } else
                break;
        }
        /* (3)-(5) leaders, and a leading blob when something stays after it */
        for (;;) {
            bool refwd = false;
            size_t l = leader_len(p + start, end - start, &refwd);
            if (l > 0) {
                reply = reply || refwd;
                start += l;
                continue;
            }
            size_t b = blob_len(p + start, end - start);
            if (b > 0 && b < end - start) {
                start += b;
                continue;
            }
            break;
        }
        /* (6) "[fwd:" ... "]" */
        if (end - start >= 6 && strncasecmp(p + start, "[fwd:", 5) == 0 && p[end - 1] == ']') {
            start += 5;
            end--;
            reply = true;
            continue;
        }
        break;
    }
    memmove(p, p + start, end - start);
    out->len = end - start;
    p[out->len] = '\0';
    return reply;
}

void mime_thread_keys_build(const struct mime_message *msg, struct mime_thread_keys *k)
{
    memset(k, 0, sizeof(*k));
    const struct mime_field *f = mime_part_field_last(msg, msg->root, "Message-ID");
    char *one[1];
    if (f != NULL && mime_msgids_parse(mime_field_value(msg, f), one, 1) == 1)
        k->msgid = one[0];
    /* In-Reply-To names the parent: looked at first */
    f = mime_part_field_last(msg, msg->root, "In-Reply-To");
    if (f != NULL && mime_msgids_parse(mime_field_value(msg, f), one, 1) == 1)
        k->refs[k->n_refs++] = one[0];
    f = mime_part_field_last(msg, msg->root, "References");
    if (f != NULL) {
        /* the first 1024 ids parsed, the last MIME_THREAD_MAX_IDS of them kept, nearest first */
        size_t cap = 1024;
        char **all = xcalloc(cap, sizeof(*all));
        size_t n = mime_msgids_parse(mime_field_value(msg, f), all, cap);
        for (size_t i = n; i > 0; i--) {
            if (k->n_refs < MIME_THREAD_MAX_IDS)
                k->refs[k->n_refs++] = all[i - 1];
            else
                free(all[i - 1]);
        }
        free(all);
    }
    struct buf b = BUF_INIT;
    f = mime_part_field_last(msg, msg->root, "Subject");
    (void)mime_base_subject(f ? mime_field_value(msg, f) : SLICE_LIT(""), &b);
    k->subject = xstrdup(buf_cstr(&b));
    buf_free(&b);
}

void mime_thread_keys_free(struct mime_thread_keys *k)
{
    free(k->msgid);
    for (size_t i = 0; i < k->n_refs; i++)
        free(k->refs[i]);
    free(k->subject);
    memset(k, 0, sizeof(*k));
}
