/*
 * mime_chars.h - character classes shared by the files of src/mime (private
 * to the folder). Pure functions of one byte; nothing here may allocate.
 */
#ifndef WHARF_MIME_CHARS_H
#define WHARF_MIME_CHARS_H

#include "base/hex.h"

#include <stdbool.h>

/* White space including line breaks (folded header values). */
static inline bool mime_is_lwsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Value of a hex digit, -1 if c is not one. */
static inline int mime_hexval(char c)
{
    return hex_value(c);
}

/* RFC 2045 token character: printable ASCII other than space and tspecials. */
static inline bool mime_is_token_char(unsigned char c)
{
    if (c <= ' ' || c >= 127)
        return false;
    switch (c) {
    case '(':
    case ')':
    case '<':
    case '>':
    case '@':
    case ',':
    case ';':
    case ':':
    case '\\':
    case '"':
    case '/':
    case '[':
    case ']':
    case '?':
    case '=':
        return false;
    default:
        return true;
    }
}

#endif
