/*
 * imap_sort.c - SORT and UID SORT (RFC 5256): the keys ARRIVAL, CC, DATE,
 * FROM, SIZE, SUBJECT, TO, DISPLAYFROM, DISPLAYTO (RFC 5957) with REVERSE,
 * over the messages a SEARCH selects, ties in sequence-number order; RETURN
 * options (ESORT, CONTEXT=SORT) are answered by imap_context.c; and what SORT and THREAD share: the
 * per-message header facts (imap_sortinfo_load); the base subject (RFC 5256
 * section 2.1) is src/mime's mime_base_subject, shared with JMAP threads.
 * Must never: compare with anything but i;ascii-casemap (ASCII letters
 * folded, every other byte as is), or read another mailbox's messages.
 */
#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_context.h"
#include "imap/imap_int.h"
#include "imap/imap_sort.h"
#include "mime/mime.h"
#include "base/date.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The first address's mailbox (local part) of a field, "" when none: the
 * addr-mailbox of the field's first ENVELOPE address, so a group's name when
 * the field starts with a group (RFC 5256 3, RFC 3501 7.4.2).
 */
static char *first_mailbox(const struct mime_message *msg, const char *field)
{
    const struct mime_field *f = mime_part_field(msg, msg->root, field);
    if (f == NULL)
        return xstrdup("");
    struct mime_address_list list;
    mime_address_parse(mime_field_value(msg, f), &list);
    char *r = NULL;
    for (size_t i = 0; i < list.n && r == NULL; i++)
        if (list.v[i].mailbox.ptr != NULL)
            r = slice_strdup(list.v[i].mailbox);
    mime_address_list_free(&list);
    return r ? r : xstrdup("");
}

/*
 * RFC 5957 2: the first address's display name (encoded words decoded),
 * else its addr-spec; a group's name for a group. "" when none.
 */
static char *first_display(const struct mime_message *msg, const char *field)
{
    const struct mime_field *f = mime_part_field(msg, msg->root, field);
    if (f == NULL)
        return xstrdup("");
    struct mime_address_list list;
    mime_address_parse(mime_field_value(msg, f), &list);
    struct buf b = BUF_INIT;
    if (list.n > 0) {
        const struct mime_address *a = &list.v[0];
        if (a->name.ptr != NULL && a->name.len > 0)
            mime_decode_words(a->name, &b);
        else if (a->mailbox.ptr != NULL) {
            buf_append_slice(&b, a->mailbox);
            if (a->host.ptr != NULL && a->host.len > 0) {
                buf_append_byte(&b, '@');
                buf_append_slice(&b, a->host);
            }
        }
    }
    mime_address_list_free(&list);
    char *r = xstrdup(buf_cstr(&b));
    buf_free(&b);
    return r;
}

int imap_sortinfo_load(struct imap_session *s, size_t idx, struct imap_sortinfo *info)
{
    const struct imap_msg *m = &s->view.msgs[idx];
    memset(info, 0, sizeof(*info));
    info->idx = idx;
    info->arrival = info->date = m->internaldate;
    info->size = m->size;
    struct buf data = BUF_INIT, err = BUF_INIT;
    int r = store_message_read_id(s->srv->store, s->view.owner, s->view.id, m->uid, &data, &err);
    if (r != 0) {
        if (r < 0)
            log_error("user=<%s>: read uid %u: %s", s->account, m->uid, buf_cstr(&err));
        buf_free(&data);
        buf_free(&err);
        return -1;
    }
    buf_free(&err);
    struct mime_limits lim;
    mime_limits_from_config(&lim, s->srv->cfg);
    struct mime_message msg;
    mime_parse(&msg, buf_slice(&data), &lim);
    const struct mime_field *f = mime_part_field_last(&msg, msg.root, "Date");
    int64_t t;
    if (f != NULL && date_rfc5322_parse(mime_field_value(&msg, f), &t, NULL))
        info->date = t;
    struct buf b = BUF_INIT;
    f = mime_part_field_last(&msg, msg.root, "Subject");
    info->reply = mime_base_subject(f ? mime_field_value(&msg, f) : SLICE_LIT(""), &b);
    info->subject = xstrdup(buf_cstr(&b));
    buf_free(&b);
    info->from = first_mailbox(&msg, "From");
    info->to = first_mailbox(&msg, "To");
    info->cc = first_mailbox(&msg, "Cc");
    info->display_from = first_display(&msg, "From");
    info->display_to = first_display(&msg, "To");
    const char *idf[] = {"Message-ID", "References", "In-Reply-To"};
    char **dst[] = {&info->message_id, &info->references, &info->in_reply_to};
    for (size_t i = 0; i < 3; i++) {
        f = mime_part_field_last(&msg, msg.root, idf[i]);
        struct buf u = BUF_INIT;
        if (f != NULL)
            mime_unfold(mime_field_value(&msg, f), &u);
        *dst[i] = xstrdup(buf_cstr(&u));
        buf_free(&u);
    }
    mime_message_free(&msg);
    buf_free(&data);
    return 0;
}

void imap_sortinfo_free(struct imap_sortinfo *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].subject);
        free(v[i].from);
        free(v[i].to);
        free(v[i].cc);
        free(v[i].display_from);
        free(v[i].display_to);
        free(v[i].message_id);
        free(v[i].references);
        free(v[i].in_reply_to);
    }
    free(v);
}

int imap_sortinfo_select(struct imap_session *s, struct slice tag, const struct imap_arg *args,
                         size_t n, struct imap_sortinfo **v_r, size_t *n_r)
{
    *v_r = NULL;
    *n_r = 0;
    if (n < 2) {
        imap_bad(s, tag, "Missing charset or search criteria");
        return -1;
    }
    if (!imap_search_charset(s, tag, &args[0]))
        return -1;
    bool *match;
    const char *e = imap_search_eval(s, args + 1, n - 1, &match, NULL);
    if (e != NULL) {
        imap_bad(s, tag, e);
        return -1;
    }
    struct imap_sortinfo *v = xcalloc(s->view.n ? s->view.n : 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < s->view.n; i++) {
        if (!match[i])
            continue;
        if (imap_sortinfo_load(s, i, &v[k]) != 0) {
            free(match);
            imap_sortinfo_free(v, k);
            imap_printf(s, "%.*s NO Some messages could not be read", TAGF(tag));
            return -1;
        }
        k++;
    }
    free(match);
    *v_r = v;
    *n_r = k;
    return 0;
}

/* ---- SORT ---- */

static const struct sort_spec *sort_keys;
static size_t sort_n_keys;

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

/* i;ascii-casemap (RFC 4790 9.2): a-z compare as A-Z, so "_" sorts after "C". */
static int casemap_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = toupper((unsigned char)*a), cb = toupper((unsigned char)*b);
        if (ca != cb || ca == 0)
            return ca - cb;
    }
}

static int sort_cmp(const void *pa, const void *pb)
{
    const struct imap_sortinfo *a = pa, *b = pb;
    for (size_t i = 0; i < sort_n_keys; i++) {
        int c = 0;
        switch (sort_keys[i].key) {
        case K_DISPLAYFROM:
            c = strcasecmp(a->display_from, b->display_from);
            break;
        case K_DISPLAYTO:
            c = strcasecmp(a->display_to, b->display_to);
            break;
        case K_ARRIVAL:
            c = cmp_i64(a->arrival, b->arrival);
            break;
        case K_DATE:
            c = cmp_i64(a->date, b->date);
            break;
        case K_SIZE:
            c = a->size < b->size ? -1 : a->size > b->size;
            break;
        case K_CC:
            c = casemap_cmp(a->cc, b->cc);
            break;
        case K_FROM:
            c = casemap_cmp(a->from, b->from);
            break;
        case K_TO:
            c = casemap_cmp(a->to, b->to);
            break;
        case K_SUBJECT:
            c = casemap_cmp(a->subject, b->subject);
            break;
        }
        if (c != 0)
            return sort_keys[i].reverse ? -c : c;
    }
    return a->idx < b->idx ? -1 : a->idx > b->idx; /* RFC 5256: ties by sequence number */
}

void imap_sort_apply(const struct imap_sort_keys *keys, struct imap_sortinfo *v, size_t n)
{
    sort_keys = keys->v; /* qsort has no context argument; one command runs at a time */
    sort_n_keys = keys->n;
    if (n > 1)
        qsort(v, n, sizeof(*v), sort_cmp);
}

void imap_cmd_sort(struct imap_session *s, struct slice tag, bool uid, const struct imap_arg *args,
                   size_t n)
{
    static const char *names[] = {"ARRIVAL", "CC", "DATE",        "FROM",     "SIZE",
                                  "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"};
    struct imap_sort_keys keys = {.n = 0};
    bool reverse = false;
    /* ESORT, CONTEXT=SORT (RFC 5267): SORT RETURN (options) (keys) charset criteria */
    struct imap_return ret;
    bool extended = n >= 2 && imap_arg_is_atom(&args[0], "RETURN");
    const char *e = extended ? imap_return_parse(s, tag, &args[1], true, &ret) : NULL;
    if (extended) {
        args += 2;
        n -= 2;
    }
    if (e == NULL && (n < 1 || args[0].type != IMAP_ARG_LIST || args[0].n_list == 0))
        e = "Usage: SORT [RETURN (options)] (keys) charset criteria";
    for (size_t i = 0; e == NULL && i < args[0].n_list; i++) {
        const struct imap_arg *a = &args[0].list[i];
        if (imap_arg_is_atom(a, "REVERSE")) {
            e = reverse ? "REVERSE twice" : NULL;
            reverse = true;
            continue;
        }
        size_t k = 0;
        while (k < sizeof(names) / sizeof(names[0]) && !imap_arg_is_atom(a, names[k]))
            k++;
        if (k == sizeof(names) / sizeof(names[0]))
            e = "Unknown sort key";
        else if (keys.n == IMAP_MAX_SORT_KEYS)
            e = "Too many sort keys";
        else
            keys.v[keys.n++] = (struct sort_spec){.key = (enum sort_key)k, .reverse = reverse};
        reverse = false;
    }
    if (e == NULL && (reverse || keys.n == 0))
        e = "REVERSE must precede a sort key";
    if (e != NULL) {
        imap_bad(s, tag, e);
        return;
    }
    struct imap_sortinfo *v;
    size_t nv;
    if (imap_sortinfo_select(s, tag, args + 1, n - 1, &v, &nv) != 0)
        return;
    imap_sort_apply(&keys, v, nv);
    if (extended) { /* ESEARCH, maybe an update context (which takes v) */
        imap_context_sort_done(s, tag, uid, &ret, &keys, args + 2, n - 2, v, nv);
        return;
    }
    struct buf out = BUF_INIT;
    buf_append_cstr(&out, "* SORT");
    for (size_t i = 0; i < nv; i++)
        buf_printf(&out, " %u", uid ? s->view.msgs[v[i].idx].uid : (unsigned)(v[i].idx + 1));
    buf_printf(&out, "\r\n%.*s OK %sSORT completed\r\n", TAGF(tag), uid ? "UID " : "");
    net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
    imap_sortinfo_free(v, nv);
}
