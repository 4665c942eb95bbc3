/*
 * fuzz_password_ldap.c - libFuzzer target for the LDAP password values
 * (password_ldap_parse: the {SCHEME} prefix, the base64 of a salted digest).
 *
 * The input is one value as read from the tree. Whatever parses has the
 * shape the checks rely on; salted digests are checked too (cheap), crypt(3)
 * hashes are not (their cost is the value's to choose).
 */
#include "auth/password.h"
#include "base/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = malloc(size + 1);
    if (value == NULL)
        abort();
    memcpy(value, data, size);
    value[size] = '\0'; /* values never hold a NUL: the part before one is the value */
    struct password_ldap_hash h;
    const char *why = NULL;
    if (password_ldap_parse(value, &h, &why) == 0) {
        if (h.scheme == PASSWORD_LDAP_CRYPT) {
            if (h.crypt == NULL || h.crypt < value || h.crypt > value + strlen(value) ||
                h.crypt[0] != '$')
                abort();
        } else {
            size_t want = h.scheme == PASSWORD_LDAP_SSHA      ? 20
                          : h.scheme == PASSWORD_LDAP_SSHA256 ? 32
                                                              : 64;
            if (h.digest_len != want || h.salt_len < PASSWORD_LDAP_SALT_MIN ||
                h.salt_len > PASSWORD_LDAP_SALT_MAX)
                abort();
            if (password_ldap_verify("fuzz", value, &why) < 0)
                abort(); /* what parses is checked */
        }
    } else if (why == NULL || password_ldap_verify("fuzz", value, &why) != -1) {
        abort(); /* a refusal always says why, and verify refuses it too */
    }
    free(value);
    return 0;
}
