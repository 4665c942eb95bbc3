/*
 * jmap_snippet.c - SearchSnippet/get (RFC 8621 5.1): the subject and an
 * extract of the body of each Email with what the filter's text, subject
 * and body conditions matched in <mark>, the way Email/query matched it
 * (ASCII case-insensitive substrings).
 *
 * Never returns markup of the message: everything but the <mark> tags is
 * HTML-escaped. A NOT condition's terms are not highlighted (they matched
 * nothing in the Emails found).
 */
#include "http/jmap_int.h"
#include "base/alloc.h"

#include <string.h>
#include <strings.h>

/* Extract bytes (before escaping and marks) shown before the first match. */
#define SNIPPET_LEAD 40
/* RFC 8621 5.1: the preview extract is at most 255 octets. */
#define SNIPPET_MAX 255
/* Filter nesting followed for terms (the request size bounds it anyway). */
#define SNIPPET_DEPTH 16

static void terms_collect(json_t *f, json_t *subject, json_t *body, int depth)
{
    if (!json_is_object(f) || depth > SNIPPET_DEPTH)
        return;
    json_t *op = json_object_get(f, "operator");
    if (json_is_string(op)) {
        if (strcmp(json_string_value(op), "NOT") == 0)
            return;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(f, "conditions"), i, c)
            terms_collect(c, subject, body, depth + 1);
        return;
    }
    json_t *t = json_object_get(f, "text");
    if (json_is_string(t) && json_string_length(t) > 0) {
        json_array_append(subject, t);
        json_array_append(body, t);
    }
    t = json_object_get(f, "subject");
    if (json_is_string(t) && json_string_length(t) > 0)
        json_array_append(subject, t);
    t = json_object_get(f, "body");
    if (json_is_string(t) && json_string_length(t) > 0)
        json_array_append(body, t);
}

/* The length of the longest term at text[i] (0: none). */
static size_t term_at(struct slice text, size_t i, json_t *terms)
{
    size_t best = 0, k;
    json_t *t;
    json_array_foreach(terms, k, t)
    {
        size_t n = json_string_length(t);
        if (n > best && i + n <= text.len &&
            strncasecmp(text.ptr + i, json_string_value(t), n) == 0)
            best = n;
    }
    return best;
}

/*
 * text HTML-escaped with each term found in <mark>; with max, an extract
 * starting a little before the first match, at most max bytes of output.
 * NULL when no term occurs (or the text is not UTF-8).
 */
static json_t *highlight(struct slice text, json_t *terms, size_t max)
{
    size_t first = text.len;
    for (size_t i = 0; i < text.len && first == text.len; i++)
        if (term_at(text, i, terms))
            first = i;
    if (first == text.len)
        return json_null();
    size_t i = 0;
    if (max && first > SNIPPET_LEAD) {
        i = first - SNIPPET_LEAD;
        while (i < first && ((unsigned char)text.ptr[i] & 0xc0) == 0x80)
            i++;
    }
    struct buf out = BUF_INIT, unit = BUF_INIT;
    while (i < text.len) {
        size_t m = term_at(text, i, terms);
        buf_reset(&unit);
        if (m) {
            buf_append_cstr(&unit, "<mark>");
            buf_append_xml_escaped(&unit, slice_make(text.ptr + i, m));
            buf_append_cstr(&unit, "</mark>");
        } else {
            m = 1;
            while (i + m < text.len && ((unsigned char)text.ptr[i + m] & 0xc0) == 0x80)
                m++;
            buf_append_xml_escaped(&unit, slice_make(text.ptr + i, m));
        }
        if (max && out.len + unit.len > max)
            break;
        buf_append_slice(&out, buf_slice(&unit));
        i += m;
    }
    json_t *s = json_stringn(out.data ? out.data : "", out.len);
    buf_free(&out);
    buf_free(&unit);
    return s ? s : json_null();
}

json_t *jmap_snippet_get(struct jmap_req *r, json_t *args, json_t **err_r)
{
    if (!jmap_check_account(r, args, err_r))
        return NULL;
    json_t *ids = json_object_get(args, "emailIds");
    if (!json_is_array(ids)) {
        *err_r = jmap_invalid("emailIds must be an array");
        return NULL;
    }
    if (json_array_size(ids) > r->j->limits.max_objects_in_get) {
        *err_r = jmap_error("requestTooLarge", "more emailIds than maxObjectsInGet");
        return NULL;
    }
    json_t *subject_terms = json_array(), *body_terms = json_array();
    terms_collect(json_object_get(args, "filter"), subject_terms, body_terms, 0);
    json_t *list = json_array(), *not_found = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        char hash[65];
        const char *s = json_string_value(id);
        struct store_account_message *c = NULL;
        size_t n = 0;
        struct buf err = BUF_INIT, data = BUF_INIT, subject = BUF_INIT, body = BUF_INIT;
        if (s && jmap_email_id_parse(s, hash) &&
            jmap_account_messages(r, hash, 0, &c, &n, &err) == 0 && n > 0) {
            json_t *sn = json_pack("{s:s, s:n, s:n}", "emailId", s, "subject", "preview");
            bool has_subject = false;
            if ((json_array_size(subject_terms) || json_array_size(body_terms)) &&
                store_message_read_id(r->j->store, r->user, c[0].mailbox_id, c[0].m.uid, &data,
                                      &err) == 0) {
                jmap_email_text(buf_slice(&data), &subject, &has_subject, &body);
                if (has_subject)
                    json_object_set_new(sn, "subject",
                                        highlight(buf_slice(&subject), subject_terms, 0));
                json_object_set_new(sn, "preview",
                                    highlight(buf_slice(&body), body_terms, SNIPPET_MAX));
            }
            json_array_append_new(list, sn);
        } else
            json_array_append(not_found, id);
        store_account_messages_free(c, n);
        buf_free(&err);
        buf_free(&data);
        buf_free(&subject);
        buf_free(&body);
    }
    json_decref(subject_terms);
    json_decref(body_terms);
    return json_pack("{s:s, s:o, s:o}", "accountId", r->account_id.data, "list", list, "notFound",
                     not_found);
}
