/*
 * directory_names.c - checking and normalizing domains and addresses.
 *
 * Domains are case-insensitive (RFC 5321 2.4) and normalized to lower case;
 * local parts are kept exactly as given. Only dot-atom local parts and LDH
 * domain names are accepted: nothing here ever reaches a shell, but a name
 * that cannot be an address is refused before it reaches the database.
 */
#include "directory/directory.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

#define DOMAIN_MAX 253 /* RFC 1035 */
#define LABEL_MAX 63
#define LOCAL_MAX 64 /* RFC 5321 4.5.3.1.1 */

static bool is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

char *directory_normalize_domain(const char *domain)
{
    size_t len = strlen(domain);
    if (len == 0 || len > DOMAIN_MAX)
        return NULL;
    char *out = xmalloc(len + 1);
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)domain[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c == '.') {
            if (label == 0 || out[i - 1] == '-')
                goto bad;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            if (c == '-' && label == 0)
                goto bad;
            if (++label > LABEL_MAX)
                goto bad;
        } else {
            goto bad;
        }
        out[i] = (char)c;
    }
    if (label == 0 || out[len - 1] == '-')
        goto bad;
    out[len] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

char *directory_normalize_address(const char *address, bool allow_catchall)
{
    const char *at = strrchr(address, '@');
    if (at == NULL)
        return NULL;
    size_t local_len = (size_t)(at - address);
    if (local_len == 0 && !allow_catchall)
        return NULL;
    if (local_len > LOCAL_MAX)
        return NULL;
    for (size_t i = 0; i < local_len; i++) {
        if (!is_atext((unsigned char)address[i]))
            return NULL;
    }
    char *domain = directory_normalize_domain(at + 1);
    if (domain == NULL)
        return NULL;
    struct buf b = BUF_INIT;
    buf_append(&b, address, local_len);
    buf_append_byte(&b, '@');
    buf_append_cstr(&b, domain);
    free(domain);
    return buf_steal(&b, NULL);
}
