/*
 * hex.h - hex digits, bytes to hex and back, for every encoder and decoder of hex text
 * (quoted-printable and URL escapes in src/mime, the organization key and
 * MACs in src/routing, the front-end hand-over's MAC in src/net). Pure; never
 * allocates.
 */
#ifndef WHARF_BASE_HEX_H
#define WHARF_BASE_HEX_H

#include <stdbool.h>
#include <string.h>

/* Value of a hex digit (either case), -1 if c is not one. */
static inline int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Writes 2*n lower-case hex digits of p and a NUL into out (2*n+1 bytes). */
static inline void hex_encode(const unsigned char *p, unsigned long n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned long i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Exactly 2*n hex digits (either case) of hex into n bytes of out; false otherwise. */
static inline bool hex_decode(const char *hex, unsigned char *out, unsigned long n)
{
    if (strlen(hex) != 2 * n)
        return false;
    for (unsigned long i = 0; i < n; i++) {
        int h = hex_value(hex[2 * i]), l = hex_value(hex[2 * i + 1]);
        if (h < 0 || l < 0)
            return false;
        out[i] = (unsigned char)(h << 4 | l);
    }
    return true;
}

#endif
