/*
 * fuzz_date.c - libFuzzer target for the date kit's parsers: RFC 5322
 * date-times, IMAP date-times and IMAP dates.
 *
 * Whatever parses must come back the same when the kit writes it out and
 * parses that again (for the years the writers and parsers share).
 */
#include "base/date.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1900-01-01 .. 9999-12-31: the four-digit years both forms write and read. */
static bool four_digit_year(int64_t t)
{
    return t >= -2208988800LL && t < 253402300800LL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice in = {(const char *)data, size};
    int64_t t, again, zone;
    struct buf b = BUF_INIT;
    if (date_rfc5322_parse(in, &t, &zone) && four_digit_year(t)) {
        date_rfc5322_append(t, &b);
        if (!date_rfc5322_parse(buf_slice(&b), &again, &zone) || again != t || zone != 0)
            __builtin_trap();
    }
    buf_reset(&b);
    if (date_imap_parse(in, &t) && four_digit_year(t)) {
        date_imap_append(t, &b);
        if (!date_imap_parse(buf_slice(&b), &again) || again != t)
            __builtin_trap();
    }
    if (date_imap_day_parse(in, &t) && t % 86400 != 0)
        __builtin_trap();
    buf_free(&b);
    return 0;
}
