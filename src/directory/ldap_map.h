/*
 * ldap_map.h - the LDAP directory's mapping of one entry (its DN and the
 * values of its attributes, as the server sent them) to a record the
 * directory keeps: the account's address and its other addresses, its quota
 * and home server, or a distribution group's address and members.
 *
 * Pure: no LDAP library type, no I/O, no allocation the caller does not free
 * with ldap_record_free. The LDAP driver (directory_ldap.c) calls it for each
 * entry a search returns; fuzz_ldap_map.c feeds it arbitrary entries. It must
 * never trust a value: an address that does not normalize is skipped (and
 * counted), a quota that does not parse is ignored, and an entry without a
 * usable address is refused with a reason.
 */
#ifndef WHARF_DIRECTORY_LDAP_MAP_H
#define WHARF_DIRECTORY_LDAP_MAP_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One attribute of an entry: its name (as the server spelled it) and values. */
struct ldap_map_attr {
    const char *name;
    const char *const *values;
    size_t n_values;
};

struct ldap_map_entry {
    const char *dn;
    const struct ldap_map_attr *attrs;
    size_t n_attrs;
};

/* The attribute names a tree uses (options ldap_*_attribute after the profile). */
struct ldap_map_names {
    const char *mail;           /* the account's address (first value); more values: aliases */
    const char *const *aliases; /* more addresses ("smtp:" prefixes of AD are taken off) */
    size_t n_aliases;
    const char *quota_bytes; /* "" or NULL: none */
    const char *quota_messages;
    const char *home;      /* home server of the mailbox */
    const char *member;    /* on a group: the DNs of its members */
    const char *member_of; /* on an account: the DNs of its groups (AD) */
    const char *login;     /* on an account: another name it logs in with (AD's UPN) */
};

struct ldap_record {
    char *dn;
    char *address;  /* normalized local@domain */
    char **aliases; /* normalized, without address nor duplicates */
    size_t n_aliases;
    uint64_t quota_bytes, quota_messages;
    char *home;     /* "" : this server */
    char **members; /* a group's member DNs, or an account's group DNs (member_of) */
    size_t n_members;
    char *login;    /* the other login name, normalized, or NULL */
    size_t skipped; /* values that were not addresses */
};

/*
 * Maps e into *r (group: a distribution group, whose members are DNs).
 * Returns 0, or -1 with the reason in err (r is then empty). Attribute names
 * match without regard to case (LDAP's rule).
 */
int ldap_map_entry(const struct ldap_map_names *names, const struct ldap_map_entry *e, bool group,
                   struct ldap_record *r, struct buf *err);
void ldap_record_free(struct ldap_record *r);

/* An address value as written in the tree: "smtp:a@b" (AD) gives "a@b"; other
 * prefixed forms ("x500:...", "sip:...") give NULL. A new normalized string. */
char *ldap_map_address(const char *value);

#endif
