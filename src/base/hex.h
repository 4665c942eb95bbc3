/*
 * hex.h - the value of one hexadecimal digit, for every decoder of hex text
 * (quoted-printable and URL escapes in src/mime, the organization key and
 * MACs in src/routing, the front-end hand-over's MAC in src/net). Pure; never
 * allocates.
 */
#ifndef WHARF_BASE_HEX_H
#define WHARF_BASE_HEX_H

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

#endif
