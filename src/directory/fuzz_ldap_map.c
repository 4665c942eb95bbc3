/*
 * fuzz_ldap_map.c - libFuzzer target: arbitrary bytes as one LDAP entry,
 * mapped by ldap_map_entry under the OpenLDAP and the AD attribute names.
 * The input is LDIF-like: the first line is the DN, the others "attr: value"
 * (a first byte '#' makes the entry a group). A mapped record must hold a
 * normalized address, no alias equal to it and no duplicate alias. Must
 * never write to the input.
 */
#include "base/alloc.h"
#include "directory/directory.h"
#include "directory/ldap_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ATTRS 64

static void check(const struct ldap_record *r)
{
    char *again = directory_normalize_address(r->address, false);
    if (again == NULL || strcmp(again, r->address) != 0)
        abort();
    free(again);
    for (size_t i = 0; i < r->n_aliases; i++) {
        if (strcmp(r->aliases[i], r->address) == 0)
            abort();
        for (size_t k = 0; k < i; k++) {
            if (strcmp(r->aliases[i], r->aliases[k]) == 0)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const openldap_aliases[] = {"mailLocalAddress"};
    static const char *const ad_aliases[] = {"proxyAddresses", "userPrincipalName"};
    static const struct ldap_map_names profiles[] = {
        {"mail", openldap_aliases, 1, "mailQuota", "mailQuotaMessages", "mailHost", "member", "",
         ""},
        {"mail", ad_aliases, 2, "", "", "msExchHomeServerName", "member", "memberOf",
         "userPrincipalName"},
    };
    char *text = xstrndup((const char *)data, size); /* stops at a NUL */
    bool group = text[0] == '#';
    /* Split into lines; each attribute line is its own attribute of one value. */
    struct ldap_map_attr attrs[MAX_ATTRS];
    const char *values[MAX_ATTRS];
    size_t n = 0;
    char *save = NULL, *dn = strtok_r(text + (group ? 1 : 0), "\n", &save);
    for (char *line; dn != NULL && n < MAX_ATTRS && (line = strtok_r(NULL, "\n", &save)) != NULL;) {
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        values[n] = colon[1] == ' ' ? colon + 2 : colon + 1;
        attrs[n] = (struct ldap_map_attr){line, &values[n], 1};
        n++;
    }
    struct ldap_map_entry e = {dn, attrs, n};
    for (size_t p = 0; p < sizeof(profiles) / sizeof(profiles[0]); p++) {
        struct ldap_record r;
        struct buf err = BUF_INIT;
        if (ldap_map_entry(&profiles[p], &e, group, &r, &err) == 0)
            check(&r);
        else if (r.address != NULL || r.n_aliases != 0)
            abort();
        ldap_record_free(&r);
        buf_free(&err);
    }
    free(text);
    return 0;
}
