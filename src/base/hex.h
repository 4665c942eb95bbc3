/*
 * hex.h - the value of one hexadecimal digit, for every decoder of hex text
 * (quoted-printable and URL escapes in src/mime, the organization key and
 * MACs in src/routing). Pure; never allocates.
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

#endif
