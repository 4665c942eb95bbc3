/*
 * vacation.c - the automatic reply of an account on vacation (see
 * vacation.h): RFC 3834's rules on what never gets one, the reply itself,
 * and the once-per-sender-and-period record in the store.
 *
 * Reads the message only through the MIME parser (src/mime) and writes the
 * reply only through its composer: never a header parsed or encoded by hand.
 */
#include "mta/vacation.h"
#include "base/alloc.h"
#include "base/date.h"
#include "mime/mime.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A token of a field value: leading white space skipped, up to ';', white space or the end. */
static struct slice first_token(struct buf *unfolded)
{
    const char *p = buf_cstr(unfolded);
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t;");
    return (struct slice){p, n};
}

static bool token_is(struct slice t, const char *word)
{
    return t.len == strlen(word) && strncasecmp(t.ptr, word, t.len) == 0;
}

/* The unfolded value of the root's first field name into out; false when absent. */
static bool field_value(const struct mime_message *m, const char *name, struct buf *out)
{
    buf_reset(out);
    const struct mime_field *f = mime_part_field(m, m->root, name);
    if (f == NULL)
        return false;
    mime_unfold(mime_field_value(m, f), out);
    return true;
}

/* RFC 3834 2: senders that are robots (the null sender is checked before). */
static bool robot_sender(const char *sender)
{
    const char *at = strrchr(sender, '@');
    size_t n = at ? (size_t)(at - sender) : strlen(sender);
    static const char *const names[] = {"mailer-daemon", "listserv", "majordomo"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (n == strlen(names[i]) && strncasecmp(sender, names[i], n) == 0)
            return true;
    if (n >= 6 && strncasecmp(sender, "owner-", 6) == 0)
        return true;
    static const char *const suffixes[] = {"-request", "-owner", "-bounces"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && strncasecmp(sender + n - k, suffixes[i], k) == 0)
            return true;
    }
    return false;
}

/* Whether a To or Cc field of the message names rcpt or account. */
static bool addressed_to(const struct mime_message *m, const struct vacation_input *in)
{
    bool found = false;
    struct buf a = BUF_INIT;
    for (size_t i = m->root->field_first; !found && i < m->root->field_first + m->root->field_count;
         i++) {
        const struct mime_field *f = &m->fields[i];
        struct slice name = mime_field_name(m, f);
        if (!token_is(name, "To") && !token_is(name, "Cc"))
            continue;
        struct mime_address_list l;
        mime_address_parse(mime_field_value(m, f), &l);
        for (size_t k = 0; !found && k < l.n; k++) {
            if (l.v[k].host.ptr == NULL || l.v[k].mailbox.ptr == NULL)
                continue;
            buf_reset(&a);
            buf_append_slice(&a, l.v[k].mailbox);
            buf_append_byte(&a, '@');
            buf_append_slice(&a, l.v[k].host);
            found = (in->rcpt && strcasecmp(buf_cstr(&a), in->rcpt) == 0) ||
                    strcasecmp(buf_cstr(&a), in->account) == 0;
        }
        mime_address_list_free(&l);
    }
    buf_free(&a);
    return found;
}

const char *vacation_refusal(const struct vacation_input *in)
{
    if (in->sender == NULL || in->sender[0] == '\0')
        return "the null sender";
    if (robot_sender(in->sender))
        return "a robot sender";
    if (strcasecmp(in->sender, in->account) == 0)
        return "the account's own message";
    struct mime_message m;
    mime_parse(&m, in->data, NULL);
    const char *why = NULL;
    struct buf v = BUF_INIT;
    if (field_value(&m, "Auto-Submitted", &v) && !token_is(first_token(&v), "no"))
        why = "Auto-Submitted";
    else if (field_value(&m, "Precedence", &v) &&
             (token_is(first_token(&v), "bulk") || token_is(first_token(&v), "list") ||
              token_is(first_token(&v), "junk")))
        why = "Precedence bulk, list or junk";
    else if (field_value(&m, "List-Id", &v) || field_value(&m, "List-Unsubscribe", &v))
        why = "a mailing list message";
    else if (!addressed_to(&m, in))
        why = "the recipient is not in To or Cc";
    buf_free(&v);
    mime_message_free(&m);
    return why;
}

/* Most message ids read from a field of the original (a reply's References carries one less of its
 * own). */
#define VACATION_REFS 32

/* An id the reply can carry: printable US-ASCII only (the reply is 7-bit). */
static bool id_printable(const char *id)
{
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    return true;
}

/* The ids of field name of the message, appended as " <id>", each on a folded line after
 * the n already written (ids over 900 bytes or not printable US-ASCII left out); returns how
 * many there are now. */
static size_t ids_append(const struct mime_message *m, const char *name, size_t n, size_t max,
                         struct buf *out)
{
    const struct mime_field *f = mime_part_field_last(m, m->root, name);
    char *ids[VACATION_REFS];
    size_t k = f ? mime_msgids_parse(mime_field_value(m, f), ids, VACATION_REFS) : 0;
    for (size_t i = 0; i < k; i++) {
        if (i + max >= k && strlen(ids[i]) <= 900 && id_printable(ids[i])) {
            buf_printf(out, "%s<%s>", n ? "\r\n " : " ", ids[i]);
            n++;
        }
        free(ids[i]);
    }
    return n;
}

static void text_part(const char *subtype, const char *text, bool in_multipart, struct buf *out)
{
    buf_printf(out, "Content-Type: text/%s; charset=utf-8\r\n", subtype);
    (in_multipart ? mime_part_body_write : mime_body_write)(slice_from_cstr(text), true, out);
}

/* One line of text for a header field: CR, LF and other controls become spaces. */
static void one_line(struct buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->data[i] < 0x20 || b->data[i] == 0x7f)
            b->data[i] = ' ';
}

void vacation_reply_build(const struct vacation_input *in, const struct store_vacation *v,
                          const char *myhostname, struct buf *out)
{
    struct mime_message m;
    mime_parse(&m, in->data, NULL);
    struct buf subj = BUF_INIT, raw = BUF_INIT;
    if (v->subject)
        buf_append_cstr(&subj, v->subject);
    else {
        buf_append_cstr(&subj, "Auto: ");
        if (field_value(&m, "Subject", &raw))
            mime_decode_words(buf_slice(&raw), &subj);
    }
    one_line(&subj);
    buf_printf(out, "From: <%s>\r\nTo: <%s>\r\nSubject: ", in->account, in->sender);
    mime_header_encode(buf_slice(&subj), out);
    buf_append_cstr(out, "\r\nDate: ");
    date_rfc5322_append(in->now, out);
    char b[40];
    mime_boundary_make(b);
    buf_printf(out, "\r\nMessage-ID: <%s.vacation@%s>\r\n", b + 8,
               myhostname && *myhostname ? myhostname : "localhost");
    /* RFC 3834 3.1.5: In-Reply-To the original's id, References its own then that id */
    struct buf id = BUF_INIT, refs = BUF_INIT;
    if (ids_append(&m, "Message-ID", 0, 1, &id) == 1)
        buf_printf(out, "In-Reply-To:%s\r\n", buf_cstr(&id));
    size_t n = ids_append(&m, "References", 0, VACATION_REFS - 1, &refs);
    if (n == 0)
        n = ids_append(&m, "In-Reply-To", 0, 1, &refs);
    if (id.len)
        n = ids_append(&m, "Message-ID", n, 1, &refs);
    if (n)
        buf_printf(out, "References:%s\r\n", buf_cstr(&refs));
    buf_free(&id);
    buf_free(&refs);
    buf_append_cstr(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
    if (v->text_body && v->html_body) {
        mime_boundary_make(b);
        buf_printf(out, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n--%s\r\n", b,
                   b);
        text_part("plain", v->text_body, true, out);
        buf_printf(out, "--%s\r\n", b);
        text_part("html", v->html_body, true, out);
        buf_printf(out, "--%s--\r\n", b);
    } else if (v->html_body)
        text_part("html", v->html_body, false, out);
    else
        text_part("plain", v->text_body ? v->text_body : "", false, out);
    buf_free(&subj);
    buf_free(&raw);
    mime_message_free(&m);
}

int vacation_consider(struct store *s, const struct vacation_input *in, int64_t period,
                      const char *myhostname, struct buf *out, const char **why_r, struct buf *err)
{
    *why_r = NULL;
    struct store_vacation v;
    if (store_vacation_get(s, in->account, &v, err) != 0)
        return -1;
    int rc = 0;
    if (!v.enabled || (v.has_from && in->now < v.from_date) || (v.has_to && in->now >= v.to_date))
        goto done;
    if ((*why_r = vacation_refusal(in)) != NULL)
        goto done;
    char *key = xstrdup(in->sender);
    for (char *p = key; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    rc = store_vacation_claim(s, in->account, key, in->now, period, err);
    free(key);
    if (rc == 0)
        *why_r = "already answered within the period";
    else if (rc == 1)
        vacation_reply_build(in, &v, myhostname, out);
done:
    store_vacation_free(&v);
    return rc;
}
