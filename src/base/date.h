/*
 * date.h - the one date kit: RFC 5322 dates (Date:, Received:, DSN fields)
 * and IMAP date-times (INTERNALDATE, APPEND, SEARCH; the server and the
 * import client), written and parsed, on the proleptic Gregorian day
 * arithmetic they share.
 *
 * Never uses the C library's locale or time zone (strftime's %a and %b follow
 * LC_TIME; TZ must not change what goes on the wire): dates are written in
 * UTC with "+0000" and English names.
 */
#ifndef WHARF_BASE_DATE_H
#define WHARF_BASE_DATE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "Jan" .. "Dec" and "Sun" .. "Sat" (the names RFC 5322 and IMAP use). */
extern const char date_months[12][4];
extern const char date_wdays[7][4];

/* Days since 1970-01-01 of year y, month m (1-12), day d (Howard Hinnant's algorithm). */
int64_t date_days_from_civil(int64_t y, unsigned m, unsigned d);
/* The civil date of days since 1970-01-01. */
void date_civil_from_days(int64_t days, int64_t *y_r, unsigned *m_r, unsigned *d_r);

/* The longest RFC 5322 date date_rfc5322_format writes, with its NUL. */
#define DATE_RFC5322_SIZE 48

/* "Fri, 27 Nov 2026 22:56:27 +0000" (RFC 5322 3.3, UTC) of unix time t into
 * out (n >= DATE_RFC5322_SIZE; a shorter out gets a cut, NUL-ended text). */
void date_rfc5322_format(int64_t t, char *out, size_t n);
/* The same, appended to out. */
void date_rfc5322_append(int64_t t, struct buf *out);
/*
 * Parses an RFC 5322 date-time (a Date: field's value, "Fri, 27 Nov 2026
 * 10:00:00 +0100", obsolete two-digit years and zone names too) into unix
 * time (UTC); *zone_r, when not NULL, gets the zone offset in seconds (local
 * time = *t_r + *zone_r). False when it is not one.
 */
bool date_rfc5322_parse(struct slice s, int64_t *t_r, int64_t *zone_r);

/* HTTP's IMF-fixdate (RFC 9110 5.6.7), "Sun, 06 Nov 1994 08:49:37 GMT", appended to out. */
void date_http_append(int64_t t, struct buf *out);

/* RFC 3339 date-time in UTC, "2026-12-06T00:00:00Z" (TLS-RPT's date-range). */
void date_rfc3339_append(int64_t t, struct buf *out);

/* IMAP date-time (RFC 9051 section 9), "DD-Mon-YYYY HH:MM:SS +0000" of unix time t. */
void date_imap_append(int64_t t, struct buf *out);
/* Parses IMAP date-time ("17-Jul-1996 02:44:25 -0700"; the day may be " 5"). */
bool date_imap_parse(struct slice s, int64_t *t_r);
/* Parses IMAP date ("1-Feb-1994") into unix time at 00:00 UTC. */
bool date_imap_day_parse(struct slice s, int64_t *t_r);

#endif
