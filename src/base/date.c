/*
 * date.c - calendar arithmetic, RFC 5322 dates and IMAP dates (see date.h).
 * Must never depend on the locale or the TZ environment, nor accept an
 * out-of-range field (a day 32, an hour 24).
 */
#include "base/date.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char date_months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
const char date_wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

int64_t date_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void date_civil_from_days(int64_t z, int64_t *y_r, unsigned *m_r, unsigned *d_r)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d_r = doy - (153 * mp + 2) / 5 + 1;
    *m_r = mp < 10 ? mp + 3 : mp - 9;
    *y_r = (int64_t)yoe + era * 400 + (*m_r <= 2);
}

/* Unix time into days since 1970-01-01 and seconds into that day (0-86399). */
static void split(int64_t t, int64_t *days_r, int64_t *secs_r)
{
    *days_r = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    *secs_r = t - *days_r * 86400;
}

void date_rfc5322_format(int64_t t, char *out, size_t n)
{
    int64_t days, secs;
    split(t, &days, &secs);
    int64_t y;
    unsigned m, d;
    date_civil_from_days(days, &y, &m, &d);
    int wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
    snprintf(out, n, "%s, %02u %s %04lld %02d:%02d:%02d +0000", date_wdays[wday], d,
             date_months[m - 1], (long long)y, (int)(secs / 3600), (int)(secs / 60 % 60),
             (int)(secs % 60));
}

void date_rfc5322_append(int64_t t, struct buf *out)
{
    char s[DATE_RFC5322_SIZE];
    date_rfc5322_format(t, s, sizeof(s));
    buf_append_cstr(out, s);
}

void date_http_append(int64_t t, struct buf *out)
{
    char s[DATE_RFC5322_SIZE];
    date_rfc5322_format(t, s, sizeof(s));
    /* The same fixed-width shape, with "GMT" in place of "+0000". */
    size_t n = strlen(s);
    buf_append(out, s, n - 5);
    buf_append_cstr(out, "GMT");
}

/* The civil date and time of day (UTC) of unix time t. */
struct civil {
    int64_t y;
    unsigned m, d;
    int hh, mm, ss;
};

static struct civil civil_of(int64_t t)
{
    int64_t days, secs;
    split(t, &days, &secs);
    struct civil c = {
        .hh = (int)(secs / 3600), .mm = (int)(secs / 60 % 60), .ss = (int)(secs % 60)};
    date_civil_from_days(days, &c.y, &c.m, &c.d);
    return c;
}

void date_rfc3339_append(int64_t t, struct buf *out)
{
    struct civil c = civil_of(t);
    buf_printf(out, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)c.y, c.m, c.d, c.hh, c.mm, c.ss);
}

void date_imap_append(int64_t t, struct buf *out)
{
    struct civil c = civil_of(t);
    buf_printf(out, "%02u-%s-%04lld %02d:%02d:%02d +0000", c.d, date_months[c.m - 1],
               (long long)c.y, c.hh, c.mm, c.ss);
}

static bool digits(const char **p, const char *end, size_t min, size_t max, unsigned *v)
{
    size_t n = 0;
    *v = 0;
    while (*p < end && **p >= '0' && **p <= '9' && n < max) {
        *v = *v * 10 + (unsigned)(**p - '0');
        (*p)++;
        n++;
    }
    return n >= min;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* "d-Mon-yyyy" (day 1 or 2 digits, or " d" in date-time). */
static bool parse_date(const char **p, const char *end, int64_t *days_r)
{
    unsigned d, y, m = 0;
    if (*p < end && **p == ' ')
        (*p)++;
    if (!digits(p, end, 1, 2, &d) || *p >= end || **p != '-' || end - *p < 5)
        return false;
    (*p)++;
    for (unsigned i = 0; i < 12 && m == 0; i++)
        if (strncasecmp(*p, date_months[i], 3) == 0)
            m = i + 1;
    if (m == 0 || (*p)[3] != '-')
        return false;
    *p += 4;
    if (!digits(p, end, 4, 4, &y) || y < 1900 || d < 1 || d > days_in_month(y, m))
        return false;
    *days_r = date_days_from_civil(y, m, d);
    return true;
}

bool date_imap_day_parse(struct slice s, int64_t *t_r)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    int64_t days;
    if (!parse_date(&p, end, &days) || p != end)
        return false;
    *t_r = days * 86400;
    return true;
}

bool date_imap_parse(struct slice s, int64_t *t_r)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    int64_t days;
    unsigned hh, mm, ss, zh, zm;
    if (!parse_date(&p, end, &days) || p == end || *p++ != ' ' || !digits(&p, end, 2, 2, &hh) ||
        p == end || *p++ != ':' || !digits(&p, end, 2, 2, &mm) || p == end || *p++ != ':' ||
        !digits(&p, end, 2, 2, &ss) || p == end || *p++ != ' ' || p == end ||
        (*p != '+' && *p != '-'))
        return false;
    bool minus = *p++ == '-';
    if (!digits(&p, end, 2, 2, &zh) || !digits(&p, end, 2, 2, &zm) || p != end || hh > 23 ||
        mm > 59 || ss > 60 || zm > 59)
        return false;
    int64_t zone = (int64_t)(zh * 3600 + zm * 60);
    *t_r = days * 86400 + hh * 3600 + mm * 60 + ss - (minus ? -zone : zone);
    return true;
}

static void skip_cfws(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n' || **p == ','))
        (*p)++;
}

bool date_rfc5322_parse(struct slice s, int64_t *t_r, int64_t *zone_r)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    skip_cfws(&p, end);
    /* optional day of week */
    if (end - p >= 3 && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))) {
        p += 3;
        skip_cfws(&p, end);
    }
    unsigned d, y, m = 0, hh, mm, ss = 0;
    if (!digits(&p, end, 1, 2, &d))
        return false;
    skip_cfws(&p, end);
    for (unsigned i = 0; i < 12 && m == 0 && end - p >= 3; i++)
        if (strncasecmp(p, date_months[i], 3) == 0)
            m = i + 1;
    if (m == 0)
        return false;
    p += 3;
    skip_cfws(&p, end);
    const char *ys = p;
    if (!digits(&p, end, 2, 4, &y))
        return false;
    if (p - ys == 2) /* RFC 5322 4.3: obsolete two-digit years */
        y += y < 50 ? 2000 : 1900;
    skip_cfws(&p, end);
    if (!digits(&p, end, 1, 2, &hh) || p == end || *p++ != ':' || !digits(&p, end, 2, 2, &mm))
        return false;
    if (p < end && *p == ':') {
        p++;
        if (!digits(&p, end, 2, 2, &ss))
            return false;
    }
    if (y < 1900 || d < 1 || d > days_in_month(y, m) || hh > 23 || mm > 59 || ss > 60)
        return false;
    skip_cfws(&p, end);
    int64_t zone = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        bool minus = *p++ == '-';
        unsigned zh, zm;
        if (!digits(&p, end, 2, 2, &zh) || !digits(&p, end, 2, 2, &zm) || zm > 59)
            return false;
        zone = (int64_t)(zh * 3600 + zm * 60) * (minus ? -1 : 1);
    } /* obsolete zone names (GMT, EST, ...) are taken as UTC, as RFC 5322 4.3 allows for unknown
         ones */
    *t_r = date_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss - zone;
    if (zone_r != NULL)
        *zone_r = zone;
    return true;
}
