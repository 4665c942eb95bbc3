/*
 * mailfmt.c - mbox separator lines and quoting, mutt's status headers,
 * Maildir info suffixes and Dovecot's Maildir side files (see mailfmt.h).
 *
 * Pure functions over slices: they never read past the slice they are given,
 * never allocate except into the caller's buffer, and accept any bytes
 * (a refusal is a return value, never a crash). Fuzzed by fuzz_mailfmt.c.
 */
#include "mime/mailfmt.h"
#include "mime/mutf7.h"

#include "base/date.h"

#include <string.h>
#include <time.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Splits off the next space-separated token of *s. */
static struct slice next_token(struct slice *s)
{
    size_t i = 0;
    while (i < s->len && (s->ptr[i] == ' ' || s->ptr[i] == '\t'))
        i++;
    size_t start = i;
    while (i < s->len && s->ptr[i] != ' ' && s->ptr[i] != '\t')
        i++;
    struct slice t = slice_make(s->ptr + start, i - start);
    s->ptr += i;
    s->len -= i;
    return t;
}

/* A decimal number of at most 9 digits filling the whole slice; -1 otherwise. */
static int64_t number(struct slice s)
{
    if (s.len == 0 || s.len > 9)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_digit(s.ptr[i]))
            return -1;
        v = v * 10 + (s.ptr[i] - '0');
    }
    return v;
}

static int month_index(struct slice t)
{
    if (t.len != 3)
        return -1;
    for (int i = 0; i < 12; i++)
        if (slice_eq_cstr_nocase(t, date_months[i]))
            return i;
    return -1;
}

/* "hh:mm[:ss]" into seconds of the day; -1 if not that. */
static int64_t clock_time(struct slice t)
{
    int64_t part[3] = {0, 0, 0};
    size_t n = 0, i = 0;
    while (n < 3) {
        size_t start = i;
        while (i < t.len && is_digit(t.ptr[i]))
            i++;
        if (i == start || i - start > 2)
            return -1;
        part[n++] = number(slice_make(t.ptr + start, i - start));
        if (i == t.len)
            break;
        if (t.ptr[i] != ':')
            return -1;
        i++;
    }
    if (i != t.len || n < 2 || part[0] > 23 || part[1] > 59 || part[2] > 60)
        return -1;
    return part[0] * 3600 + part[1] * 60 + part[2];
}

bool mailfmt_mbox_from_parse(struct slice line, struct slice *sender_r, int64_t *date_r)
{
    *sender_r = slice_make("", 0);
    *date_r = 0;
    if (line.len < 5 || memcmp(line.ptr, "From ", 5) != 0)
        return false;
    struct slice rest = slice_make(line.ptr + 5, line.len - 5);
    /* The sender is the first token, unless it is already the weekday (an empty sender). */
    struct slice save = rest;
    struct slice tok = next_token(&rest);
    bool weekday = false;
    for (int i = 0; i < 7 && tok.len == 3; i++)
        weekday |= slice_eq_cstr_nocase(tok, date_wdays[i]);
    if (weekday)
        rest = save;
    else
        *sender_r = tok;
    /* [weekday] month day time [zone] year [zone] */
    int mon = -1;
    int64_t day = -1, secs = -1, year = -1;
    for (int guard = 0; guard < 8; guard++) {
        tok = next_token(&rest);
        if (tok.len == 0)
            break;
        if (mon < 0) {
            mon = month_index(tok);
            continue;
        }
        if (day < 0) {
            day = number(tok);
            if (day < 1 || day > 31)
                return true; /* a separator with a date we cannot read */
            continue;
        }
        if (secs < 0) {
            secs = clock_time(tok);
            if (secs < 0)
                return true;
            continue;
        }
        int64_t y = number(tok);
        if (tok.len == 4 && y >= 1970 && y <= 9999) {
            year = y;
            break;
        }
    }
    if (mon >= 0 && day > 0 && secs >= 0 && year > 0)
        *date_r = date_days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 + secs;
    return true;
}

void mailfmt_mbox_from_format(struct buf *out, struct slice sender, int64_t date)
{
    buf_append_cstr(out, "From ");
    bool usable = sender.len > 0;
    for (size_t i = 0; i < sender.len; i++)
        if ((unsigned char)sender.ptr[i] <= ' ' || sender.ptr[i] == 0x7f)
            usable = false;
    if (usable)
        buf_append_slice(out, sender);
    else
        buf_append_cstr(out, "MAILER-DAEMON");
    time_t t = (time_t)date;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 1970) {
        t = 0;
        gmtime_r(&t, &tm);
    }
    /* asctime's form in the C locale, whatever the process's locale is. */
    buf_printf(out, " %s %s %2d %02d:%02d:%02d %d\n", date_wdays[tm.tm_wday],
               date_months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               tm.tm_year + 1900);
}

bool mailfmt_mbox_quoted(struct slice line)
{
    size_t i = 0;
    while (i < line.len && line.ptr[i] == '>')
        i++;
    return line.len - i >= 5 && memcmp(line.ptr + i, "From ", 5) == 0;
}

struct slice mailfmt_mbox_unquote(struct slice line)
{
    if (line.len > 0 && line.ptr[0] == '>' && mailfmt_mbox_quoted(line))
        return slice_make(line.ptr + 1, line.len - 1);
    return line;
}

unsigned mailfmt_mbox_status_flags(struct slice status, struct slice xstatus)
{
    unsigned f = 0;
    for (size_t i = 0; i < status.len; i++)
        if (status.ptr[i] == 'R')
            f |= MAILFMT_SEEN;
    for (size_t i = 0; i < xstatus.len; i++) {
        switch (xstatus.ptr[i]) {
        case 'A':
            f |= MAILFMT_ANSWERED;
            break;
        case 'F':
            f |= MAILFMT_FLAGGED;
            break;
        case 'T':
            f |= MAILFMT_DRAFT;
            break;
        case 'D':
            f |= MAILFMT_DELETED;
            break;
        default:
            break;
        }
    }
    return f;
}

void mailfmt_mbox_status_format(struct buf *out, unsigned flags)
{
    /* mutt writes "O" for every message it has seen listed; we mark all as old. */
    buf_append_cstr(out, flags & MAILFMT_SEEN ? "Status: RO\n" : "Status: O\n");
    if (flags & (MAILFMT_ANSWERED | MAILFMT_FLAGGED | MAILFMT_DRAFT | MAILFMT_DELETED)) {
        buf_append_cstr(out, "X-Status: ");
        if (flags & MAILFMT_ANSWERED)
            buf_append_byte(out, 'A');
        if (flags & MAILFMT_FLAGGED)
            buf_append_byte(out, 'F');
        if (flags & MAILFMT_DRAFT)
            buf_append_byte(out, 'T');
        if (flags & MAILFMT_DELETED)
            buf_append_byte(out, 'D');
        buf_append_byte(out, '\n');
    }
}

bool mailfmt_mbox_status_header(struct slice line)
{
    return slice_startswith_nocase(line, "Status:") || slice_startswith_nocase(line, "X-Status:");
}

bool mailfmt_maildir_name_parse(struct slice name, struct mailfmt_maildir_name *r)
{
    memset(r, 0, sizeof(*r));
    if (name.len == 0 || name.ptr[0] == '.' || memchr(name.ptr, '/', name.len) != NULL ||
        memchr(name.ptr, '\0', name.len) != NULL)
        return false;
    const char *colon = memchr(name.ptr, ':', name.len);
    size_t base_len = colon ? (size_t)(colon - name.ptr) : name.len;
    /* Dovecot's ",S=<size>" and ",W=<vsize>" belong to the name, not the unique part. */
    for (size_t i = 0; i + 2 < base_len; i++)
        if (name.ptr[i] == ',' && (name.ptr[i + 1] == 'S' || name.ptr[i + 1] == 'W') &&
            name.ptr[i + 2] == '=') {
            base_len = i;
            break;
        }
    if (base_len == 0)
        return false;
    r->base = slice_make(name.ptr, base_len);
    if (colon == NULL)
        return true;
    size_t i = (size_t)(colon - name.ptr) + 1;
    if (name.len - i < 2 || name.ptr[i] != '2' || name.ptr[i + 1] != ',')
        return true; /* ":1," experimental info, or junk: no flags */
    r->has_info = true;
    for (i += 2; i < name.len; i++) {
        char c = name.ptr[i];
        switch (c) {
        case 'R':
            r->flags |= MAILFMT_ANSWERED;
            break;
        case 'S':
            r->flags |= MAILFMT_SEEN;
            break;
        case 'T':
            r->flags |= MAILFMT_DELETED;
            break;
        case 'D':
            r->flags |= MAILFMT_DRAFT;
            break;
        case 'F':
            r->flags |= MAILFMT_FLAGGED;
            break;
        default:
            if (c >= 'a' && c <= 'z')
                r->keywords |= 1u << (c - 'a');
            else if (c == ',')
                i = name.len; /* Dovecot's ",S=" after the flags: done */
            break;
        }
    }
    return true;
}

void mailfmt_maildir_info_format(struct buf *out, unsigned flags, uint32_t keywords)
{
    buf_append_cstr(out, ":2,");
    if (flags & MAILFMT_DRAFT)
        buf_append_byte(out, 'D');
    if (flags & MAILFMT_FLAGGED)
        buf_append_byte(out, 'F');
    if (flags & MAILFMT_ANSWERED)
        buf_append_byte(out, 'R');
    if (flags & MAILFMT_SEEN)
        buf_append_byte(out, 'S');
    if (flags & MAILFMT_DELETED)
        buf_append_byte(out, 'T');
    for (unsigned i = 0; i < MAILFMT_KEYWORDS_MAX; i++)
        if (keywords & (1u << i))
            buf_append_byte(out, (char)('a' + i));
}

/* A uint32 filling the slice (no sign, no spaces); false otherwise. */
static bool u32(struct slice s, uint32_t *v_r)
{
    if (s.len == 0 || s.len > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_digit(s.ptr[i]))
            return false;
        v = v * 10 + (uint64_t)(s.ptr[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *v_r = (uint32_t)v;
    return true;
}

bool mailfmt_mbox_imapbase(struct slice value, uint32_t *uidvalidity_r, uint32_t *uidnext_r)
{
    struct slice rest = value;
    return u32(next_token(&rest), uidvalidity_r) && u32(next_token(&rest), uidnext_r) &&
           *uidvalidity_r != 0;
}

bool mailfmt_mbox_uid(struct slice value, uint32_t *uid_r)
{
    struct slice rest = value;
    return u32(next_token(&rest), uid_r) && *uid_r != 0 && next_token(&rest).len == 0;
}

bool mailfmt_uidlist_header(struct slice line, uint32_t *uidvalidity_r, uint32_t *nextuid_r)
{
    *uidvalidity_r = *nextuid_r = 0;
    struct slice rest = line;
    struct slice version = next_token(&rest);
    if (version.len == 1 && version.ptr[0] == '1') {
        struct slice a = next_token(&rest), b = next_token(&rest);
        return u32(a, uidvalidity_r) && u32(b, nextuid_r) && *uidvalidity_r != 0;
    }
    if (version.len != 1 || (version.ptr[0] != '2' && version.ptr[0] != '3'))
        return false;
    for (int guard = 0; guard < 64; guard++) {
        struct slice t = next_token(&rest);
        if (t.len == 0)
            break;
        struct slice v = slice_make(t.ptr + 1, t.len - 1);
        if (t.ptr[0] == 'V' && !u32(v, uidvalidity_r))
            return false;
        if (t.ptr[0] == 'N' && !u32(v, nextuid_r))
            return false;
    }
    return *uidvalidity_r != 0;
}

bool mailfmt_uidlist_record(struct slice line, uint32_t *uid_r, struct slice *base_r)
{
    *uid_r = 0;
    *base_r = slice_make("", 0);
    struct slice rest = line;
    struct slice uid = next_token(&rest);
    if (!u32(uid, uid_r) || *uid_r == 0)
        return false;
    /* version 3: the name follows the first " :" (extension fields come before it) */
    for (size_t i = 0; i + 1 < rest.len; i++)
        if ((rest.ptr[i] == ' ' || rest.ptr[i] == '\t') && rest.ptr[i + 1] == ':') {
            *base_r = slice_make(rest.ptr + i + 2, rest.len - i - 2);
            return base_r->len > 0;
        }
    /* version 1: "UID NAME" */
    struct slice name = next_token(&rest);
    if (name.len == 0 || next_token(&rest).len != 0)
        return false;
    if (name.ptr[0] == ':')
        name = slice_make(name.ptr + 1, name.len - 1);
    *base_r = name;
    return name.len > 0;
}

bool mailfmt_keywords_line(struct slice line, unsigned *index_r, struct slice *name_r)
{
    struct slice rest = line;
    struct slice idx = next_token(&rest);
    uint32_t v;
    if (!u32(idx, &v) || v >= MAILFMT_KEYWORDS_MAX)
        return false;
    struct slice name = next_token(&rest);
    if (name.len == 0 || next_token(&rest).len != 0)
        return false;
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.ptr[i];
        /* an IMAP atom: no specials, controls or 8-bit */
        if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
            return false;
    }
    *index_r = v;
    *name_r = name;
    return true;
}

bool mailfmt_maildir_folder(struct slice dirname, char sep, struct buf *out)
{
    buf_reset(out);
    if (dirname.len < 2 || dirname.ptr[0] != '.' || memchr(dirname.ptr, '/', dirname.len) ||
        memchr(dirname.ptr, '\0', dirname.len))
        return false;
    bool level_empty = true;
    for (size_t i = 1; i < dirname.len; i++) {
        char c = dirname.ptr[i];
        if (c == sep) {
            if (level_empty)
                return false;
            buf_append_byte(out, '/');
            level_empty = true;
            continue;
        }
        if ((unsigned char)c < ' ' || c == 0x7f || c == '*' || c == '%')
            return false;
        buf_append_byte(out, c);
        level_empty = false;
    }
    if (level_empty)
        return false;
    mailfmt_name_decode(out);
    return true;
}

void mailfmt_name_decode(struct buf *name)
{
    if (name->len == 0 || memchr(name->data, '&', name->len) == NULL)
        return;
    struct buf utf8 = BUF_INIT;
    if (mutf7_decode(buf_slice(name), &utf8)) { /* strict: '/' stays the levels' own */
        buf_reset(name);
        buf_append_slice(name, buf_slice(&utf8));
    }
    buf_free(&utf8);
}
