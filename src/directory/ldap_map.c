/*
 * ldap_map.c - one LDAP entry's attribute values to a directory record
 * (ldap_map.h). Pure and bounded by its input; fuzzed by fuzz_ldap_map.c.
 */
#include "directory/ldap_map.h"
#include "base/alloc.h"
#include "base/config.h"
#include "directory/directory.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct ldap_map_attr *attr_of(const struct ldap_map_entry *e, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return NULL;
    for (size_t i = 0; i < e->n_attrs; i++) {
        if (e->attrs[i].name != NULL && strcasecmp(e->attrs[i].name, name) == 0)
            return &e->attrs[i];
    }
    return NULL;
}

char *ldap_map_address(const char *value)
{
    const char *colon = strchr(value, ':');
    const char *at = strchr(value, '@');
    if (colon != NULL && (at == NULL || colon < at)) {
        /* AD's proxyAddresses: "SMTP:primary", "smtp:secondary", "X500:...". */
        if ((size_t)(colon - value) != 4 || strncasecmp(value, "smtp", 4) != 0)
            return NULL;
        value = colon + 1;
    }
    return directory_normalize_address(value, false);
}

static bool strv_has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i], s) == 0)
            return true;
    }
    return false;
}

static void strv_push(char ***v, size_t *n, char *s)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(char *));
    (*v)[(*n)++] = s;
}

/* Adds each address value of a as an alias (not the address itself, no duplicate). */
static void add_aliases(struct ldap_record *r, const struct ldap_map_attr *a, size_t from)
{
    for (size_t i = from; a != NULL && i < a->n_values; i++) {
        char *addr = a->values[i] ? ldap_map_address(a->values[i]) : NULL;
        if (addr == NULL) {
            r->skipped++;
        } else if (strcmp(addr, r->address) == 0 || strv_has(r->aliases, r->n_aliases, addr)) {
            free(addr);
        } else {
            strv_push(&r->aliases, &r->n_aliases, addr);
        }
    }
}

/* The first value of a that parses as a size (k, M, G suffixes), else 0: unlimited. */
static uint64_t size_of(const struct ldap_map_attr *a)
{
    uint64_t v = 0;
    if (a != NULL && a->n_values > 0 && a->values[0] != NULL && config_parse_size(a->values[0], &v))
        return v;
    return 0;
}

int ldap_map_entry(const struct ldap_map_names *names, const struct ldap_map_entry *e, bool group,
                   struct ldap_record *r, struct buf *err)
{
    memset(r, 0, sizeof(*r));
    if (e->dn == NULL || e->dn[0] == '\0') {
        buf_printf(err, "an entry without a DN");
        return -1;
    }
    /* The address: the first value of the mail attribute that is one; failing
     * that (a group of the inetLocalMailRecipient kind, an AD object whose
     * mail is empty), the first alias value that is one. */
    const struct ldap_map_attr *mail = attr_of(e, names->mail);
    size_t first = 0;
    for (; mail != NULL && first < mail->n_values && r->address == NULL; first++)
        r->address = mail->values[first] ? ldap_map_address(mail->values[first]) : NULL;
    for (size_t k = 0; r->address == NULL && k < names->n_aliases; k++) {
        const struct ldap_map_attr *a = attr_of(e, names->aliases[k]);
        /* AD marks the primary address "SMTP:" in capitals: take it first. */
        for (size_t i = 0; a != NULL && i < a->n_values && r->address == NULL; i++) {
            if (a->values[i] != NULL && strncmp(a->values[i], "SMTP:", 5) == 0)
                r->address = ldap_map_address(a->values[i]);
        }
        for (size_t i = 0; a != NULL && i < a->n_values && r->address == NULL; i++)
            r->address = a->values[i] ? ldap_map_address(a->values[i]) : NULL;
    }
    if (r->address == NULL) {
        buf_printf(err, "%s: no mail address", e->dn);
        return -1;
    }
    r->dn = xstrdup(e->dn);
    r->skipped = first > 0 ? first - 1 : 0; /* values of mail before the first address */
    add_aliases(r, mail, first);
    for (size_t k = 0; k < names->n_aliases; k++)
        add_aliases(r, attr_of(e, names->aliases[k]), 0);
    const struct ldap_map_attr *home = group ? NULL : attr_of(e, names->home);
    r->home = xstrdup(home != NULL && home->n_values > 0 && home->values[0] ? home->values[0] : "");
    if (!group) {
        r->quota_bytes = size_of(attr_of(e, names->quota_bytes));
        r->quota_messages = size_of(attr_of(e, names->quota_messages));
    }
    const struct ldap_map_attr *login = group ? NULL : attr_of(e, names->login);
    if (login != NULL && login->n_values > 0 && login->values[0] != NULL) {
        r->login = directory_normalize_address(login->values[0], false);
        if (r->login != NULL && strcmp(r->login, r->address) == 0) {
            free(r->login);
            r->login = NULL;
        }
    }
    const struct ldap_map_attr *m = attr_of(e, group ? names->member : names->member_of);
    for (size_t i = 0; m != NULL && i < m->n_values; i++) {
        if (m->values[i] != NULL && m->values[i][0] != '\0')
            strv_push(&r->members, &r->n_members, xstrdup(m->values[i]));
    }
    return 0;
}

void ldap_record_free(struct ldap_record *r)
{
    free(r->dn);
    free(r->address);
    for (size_t i = 0; i < r->n_aliases; i++)
        free(r->aliases[i]);
    free(r->aliases);
    free(r->home);
    free(r->login);
    for (size_t i = 0; i < r->n_members; i++)
        free(r->members[i]);
    free(r->members);
    memset(r, 0, sizeof(*r));
}
