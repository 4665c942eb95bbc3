/*
 * nntp_article.c - the header checks of an article offered to the server;
 * see nntp_article.h.
 * Must never: read outside the article it is given.
 */
#include "nntp/nntp_article.h"
#include "nntp/nntp_parse.h"

#include <string.h>

static struct slice trim(struct slice s)
{
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t' || s.ptr[0] == '\r' || s.ptr[0] == '\n'))
        s = slice_make(s.ptr + 1, s.len - 1);
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t' ||
                     s.ptr[s.len - 1] == '\r' || s.ptr[s.len - 1] == '\n'))
        s.len--;
    return s;
}

/* The end of the header field starting at p (after its last CRLF, folded lines included). */
static size_t field_end(const char *p, size_t n)
{
    size_t i = 0;
    for (;;) {
        const char *lf = memchr(p + i, '\n', n - i);
        if (lf == NULL)
            return n;
        i = (size_t)(lf - p) + 1;
        if (i >= n || (p[i] != ' ' && p[i] != '\t'))
            return i;
    }
}

struct slice nntp_header_field(struct slice header, const char *name)
{
    size_t nl = strlen(name), i = 0;
    while (i < header.len) {
        size_t len = field_end(header.ptr + i, header.len - i);
        const char *f = header.ptr + i;
        if (len > nl && f[nl] == ':' && slice_eq_cstr_nocase(slice_make(f, nl), name))
            return trim(slice_make(f + nl + 1, len - nl - 1));
        i += len;
    }
    return SLICE_NULL;
}

bool nntp_group_name_valid(struct slice g)
{
    if (g.len == 0 || g.len > NNTP_GROUP_NAME_MAX || g.ptr[0] == '.' || g.ptr[g.len - 1] == '.')
        return false;
    for (size_t i = 0; i < g.len; i++) {
        char c = g.ptr[i];
        if (c == '.' && i + 1 < g.len && g.ptr[i + 1] == '.')
            return false;
        if (!(c == '.' || c == '+' || c == '-' || c == '_' || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

bool nntp_newsgroups_next(struct slice *rest, struct slice *name_r)
{
    size_t i = 0;
    while (i < rest->len && (rest->ptr[i] == ',' || rest->ptr[i] == ' ' || rest->ptr[i] == '\t' ||
                             rest->ptr[i] == '\r' || rest->ptr[i] == '\n'))
        i++;
    size_t start = i;
    while (i < rest->len && rest->ptr[i] != ',' && rest->ptr[i] != ' ' && rest->ptr[i] != '\t' &&
           rest->ptr[i] != '\r' && rest->ptr[i] != '\n')
        i++;
    *name_r = slice_make(rest->ptr + start, i - start);
    *rest = slice_make(rest->ptr + i, rest->len - i);
    return name_r->len > 0;
}

/* The fields that must appear at most once (RFC 5536 3.1, 3.2). */
static const char *const once[] = {"From",       "Newsgroups", "Subject",        "Message-ID",
                                   "Date",       "Path",       "Injection-Info", "Injection-Date",
                                   "References", "Followup-To"};

bool nntp_article_check(struct slice a, bool transit, struct nntp_article_info *info,
                        const char **why_r)
{
    memset(info, 0, sizeof(*info));
    unsigned seen[sizeof(once) / sizeof(once[0])] = {0};
    size_t i = 0;
    bool ended = false;
    for (size_t k = 0; k < a.len; k++) {
        if (a.ptr[k] == '\0') {
            *why_r = "NUL byte in article";
            return false;
        }
    }
    while (i < a.len) {
        if (a.len - i >= 2 && a.ptr[i] == '\r' && a.ptr[i + 1] == '\n') {
            info->header_len = i;
            info->has_body = true;
            ended = true;
            break;
        }
        size_t len = field_end(a.ptr + i, a.len - i);
        struct slice f = slice_make(a.ptr + i, len);
        if (len < 2 || f.ptr[len - 2] != '\r' || f.ptr[len - 1] != '\n') {
            *why_r = "Header field without CRLF";
            return false;
        }
        const char *colon = memchr(f.ptr, ':', len);
        if (colon == NULL || colon == f.ptr) {
            *why_r = "Header field without a name";
            return false;
        }
        for (const char *p = f.ptr; p < colon; p++) {
            if (*p < 0x21 || *p > 0x7e) {
                *why_r = "Bad header field name";
                return false;
            }
        }
        for (size_t k = 0; k + 1 < len; k++) {
            if (f.ptr[k] == '\r' && f.ptr[k + 1] != '\n') {
                *why_r = "Bare CR in header";
                return false;
            }
            if (f.ptr[k + 1] == '\n' && f.ptr[k] != '\r') {
                *why_r = "Bare LF in header";
                return false;
            }
        }
        struct slice name = slice_make(f.ptr, (size_t)(colon - f.ptr));
        struct slice value = trim(slice_make(colon + 1, len - (size_t)(colon + 1 - f.ptr)));
        for (size_t k = 0; k < sizeof(once) / sizeof(once[0]); k++) {
            if (!slice_eq_cstr_nocase(name, once[k]))
                continue;
            if (++seen[k] > 1) {
                *why_r = "Duplicate header field";
                return false;
            }
            if (value.len == 0) {
                *why_r = "Empty header field";
                return false;
            }
            struct slice *dst[] = {&info->from,       &info->newsgroups, &info->subject,
                                   &info->message_id, &info->date,       &info->path};
            if (k < sizeof(dst) / sizeof(dst[0]))
                *dst[k] = value;
        }
        i += len;
    }
    if (!ended)
        info->header_len = a.len;
    if (info->from.ptr == NULL || info->newsgroups.ptr == NULL || info->subject.ptr == NULL) {
        *why_r = "Missing a required header field (From, Newsgroups, Subject)";
        return false;
    }
    if (transit &&
        (info->message_id.ptr == NULL || info->date.ptr == NULL || info->path.ptr == NULL)) {
        *why_r = "Missing Message-ID, Date or Path";
        return false;
    }
    if (!transit && (seen[6] || seen[7])) {
        *why_r = "Injection-Info and Injection-Date are the server's to add";
        return false;
    }
    if (info->message_id.ptr && !nntp_msgid_valid(info->message_id)) {
        *why_r = "Bad Message-ID";
        return false;
    }
    struct slice rest = info->newsgroups, g;
    size_t groups = 0;
    while (nntp_newsgroups_next(&rest, &g)) {
        if (!nntp_group_name_valid(g)) {
            *why_r = "Bad newsgroup name in Newsgroups";
            return false;
        }
        groups++;
    }
    if (groups == 0) {
        *why_r = "No newsgroup in Newsgroups";
        return false;
    }
    bool empty = info->has_body && a.len == info->header_len + 2;
    if (!info->has_body ||
        (empty && !transit &&
         nntp_header_field(slice_make(a.ptr, info->header_len), "Control").ptr == NULL)) {
        *why_r = "Article has no body -- just headers";
        return false;
    }
    return true;
}

bool nntp_path_has(struct slice path, struct slice name)
{
    size_t i = 0;
    while (i < path.len) {
        size_t end = i;
        while (end < path.len && path.ptr[end] != '!')
            end++;
        size_t a = i, b = end;
        while (a < b && (path.ptr[a] == ' ' || path.ptr[a] == '\t' || path.ptr[a] == '\r' ||
                         path.ptr[a] == '\n'))
            a++;
        while (b > a && (path.ptr[b - 1] == ' ' || path.ptr[b - 1] == '\t' ||
                         path.ptr[b - 1] == '\r' || path.ptr[b - 1] == '\n'))
            b--;
        if (b > a && slice_eq_nocase(slice_make(path.ptr + a, b - a), name))
            return true;
        i = end + 1;
    }
    return false;
}

/* The fields of header (folded lines and all) but those called name (with its colon). */
static void fields_but(struct slice header, const char *name_colon, struct buf *out)
{
    size_t i = 0;
    while (i < header.len) {
        size_t len = field_end(header.ptr + i, header.len - i);
        struct slice f = slice_make(header.ptr + i, len);
        if (!slice_startswith_nocase(f, name_colon))
            buf_append_slice(out, f);
        i += len;
    }
}

void nntp_article_rebuild(struct slice a, const struct nntp_article_info *info, const char *host,
                          struct slice extra, struct buf *out)
{
    buf_printf(out, "Path: %s!", host);
    if (info->path.ptr)
        buf_append_slice(out, info->path);
    else
        buf_append_cstr(out, "not-for-mail");
    buf_append_cstr(out, "\r\n");
    buf_append_slice(out, extra);
    fields_but(slice_make(a.ptr, info->header_len), "Path:", out);
    buf_append(out, a.ptr + info->header_len, a.len - info->header_len);
    if (!info->has_body)
        buf_append_cstr(out, "\r\n");
}

void nntp_article_missing_fields(struct slice header, const char *host, const char *group,
                                 struct buf *out)
{
    if (nntp_header_field(header, "Path").ptr == NULL)
        buf_printf(out, "Path: %s!not-for-mail\r\n", host);
    if (group != NULL && nntp_header_field(header, "Newsgroups").ptr == NULL)
        buf_printf(out, "Newsgroups: %s\r\n", group);
}

void nntp_article_split(struct slice a, size_t *hlen_r, size_t *body_r)
{
    for (size_t i = 0; i + 1 < a.len; i++) {
        if (a.ptr[i] == '\r' && a.ptr[i + 1] == '\n' &&
            (i == 0 || (i >= 2 && a.ptr[i - 2] == '\r' && a.ptr[i - 1] == '\n'))) {
            *hlen_r = i;
            *body_r = i + 2;
            return;
        }
    }
    *hlen_r = a.len;
    *body_r = a.len;
}

void nntp_article_reader_header(struct slice header, const char *host, const char *group,
                                struct slice xref, struct buf *out)
{
    nntp_article_missing_fields(header, host, group, out);
    if (xref.ptr) {
        buf_append_cstr(out, "Xref: ");
        buf_append_slice(out, xref);
        buf_append_cstr(out, "\r\n");
    }
    /* A first line that starts with white space is no field (a mail may hold anything):
     * after the fields added here it would fold into the last of them. */
    if (header.len && (header.ptr[0] == ' ' || header.ptr[0] == '\t')) {
        size_t len = field_end(header.ptr, header.len);
        header = slice_make(header.ptr + len, header.len - len);
    }
    fields_but(header, "Xref:", out);
}

size_t nntp_article_bytes(struct slice header, struct slice rest)
{
    size_t n = header.len + rest.len;
    if (n == 0)
        return 0;
    /* the last two octets of header then rest, as the dot writer's end sees them */
    char last = rest.len ? rest.ptr[rest.len - 1] : header.ptr[header.len - 1];
    char before = rest.len >= 2     ? rest.ptr[rest.len - 2]
                  : rest.len == 1   ? (header.len ? header.ptr[header.len - 1] : '\0')
                  : header.len >= 2 ? header.ptr[header.len - 2]
                                    : '\0';
    return last == '\n' && before == '\r' ? n : n + 2;
}
