/*
 * imap_date.c - IMAP date and date-time (RFC 9051 section 9: date,
 * date-time), written and parsed without the C library's locale or time zone.
 * Must never: accept an out-of-range field (a day 32, an hour 24).
 */
#include "imap/imap_int.h"

#include <string.h>

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void imap_date_time_write(struct buf *out, int64_t t)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    buf_printf(out, "%02u-%s-%04lld %02d:%02d:%02d +0000", d, months[m - 1], (long long)y,
               (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
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
        if (strncasecmp(*p, months[i], 3) == 0)
            m = i + 1;
    if (m == 0 || (*p)[3] != '-')
        return false;
    *p += 4;
    if (!digits(p, end, 4, 4, &y) || y < 1900 || d < 1 || d > days_in_month(y, m))
        return false;
    *days_r = days_from_civil(y, m, d);
    return true;
}

bool imap_date_parse(struct slice s, int64_t *t_r)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    int64_t days;
    if (!parse_date(&p, end, &days) || p != end)
        return false;
    *t_r = days * 86400;
    return true;
}

bool imap_date_time_parse(struct slice s, int64_t *t_r)
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

bool imap_rfc5322_date_parse(struct slice s, int64_t *t_r)
{
    int64_t zone;
    return imap_rfc5322_date_zone_parse(s, t_r, &zone);
}

bool imap_rfc5322_date_zone_parse(struct slice s, int64_t *t_r, int64_t *zone_r)
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
        if (strncasecmp(p, months[i], 3) == 0)
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
    *t_r = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss - zone;
    *zone_r = zone;
    return true;
}
