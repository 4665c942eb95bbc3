/*
 * test_ldap_map.c - unit tests for the LDAP entry mapping (ldap_map.c): an
 * inetOrgPerson account with its extra addresses, quota and home server; an
 * AD account (proxyAddresses with SMTP:/smtp:/X500:, memberOf); a group of
 * the inetLocalMailRecipient kind; values that are not addresses; an entry
 * without any address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "directory/ldap_map.h"

#define VALS(...)                                                                                  \
    (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)

static const char *const openldap_aliases[] = {"mailLocalAddress"};
static const struct ldap_map_names openldap = {
    "mail", openldap_aliases, 1, "mailQuota", "mailQuotaMessages", "mailHost", "member", "", ""};
static const char *const ad_aliases[] = {"proxyAddresses"};
static const struct ldap_map_names ad = {"mail",     ad_aliases,         1, "", "", "", "member",
                                         "memberOf", "userPrincipalName"};

static void test_openldap_account(void **state)
{
    (void)state;
    const struct ldap_map_attr attrs[] = {
        {"objectClass", VALS("inetOrgPerson", "inetLocalMailRecipient")},
        {"MAIL", VALS("Alice@Example.ORG", "alice.smith@example.org", "Alice@example.org")},
        {"mailLocalAddress", VALS("al@example.org", "alice.smith@example.org", "not-an-address")},
        {"mailHost", VALS("mx2.example.org")},
        {"mailQuota", VALS("100M")},
        {"mailQuotaMessages", VALS("5000")},
    };
    struct ldap_map_entry e = {"uid=alice,ou=people,dc=example,dc=org", attrs, 6};
    struct ldap_record r;
    struct buf err = BUF_INIT;
    assert_int_equal(ldap_map_entry(&openldap, &e, false, &r, &err), 0);
    assert_string_equal(r.address, "Alice@example.org");
    assert_int_equal(r.n_aliases, 2);
    assert_string_equal(r.aliases[0], "alice.smith@example.org");
    assert_string_equal(r.aliases[1], "al@example.org");
    assert_int_equal(r.skipped, 1);
    assert_string_equal(r.home, "mx2.example.org");
    assert_int_equal(r.quota_bytes, 100u << 20);
    assert_int_equal(r.quota_messages, 5000);
    assert_int_equal(r.n_members, 0);
    ldap_record_free(&r);
    buf_free(&err);
}

static void test_ad_account(void **state)
{
    (void)state;
    const struct ldap_map_attr attrs[] = {
        {"proxyAddresses", VALS("X500:/o=corp/cn=bob", "smtp:robert@corp.example",
                                "SMTP:bob@corp.example", "sip:bob@corp.example")},
        {"memberOf", VALS("CN=All,OU=Groups,DC=corp,DC=example", "")},
        {"userPrincipalName", VALS("bob.jones@CORP.example")},
    };
    struct ldap_map_entry e = {"CN=Bob,OU=Users,DC=corp,DC=example", attrs, 3};
    struct ldap_record r;
    struct buf err = BUF_INIT;
    assert_int_equal(ldap_map_entry(&ad, &e, false, &r, &err), 0);
    assert_string_equal(r.address, "bob@corp.example"); /* SMTP: marks the primary */
    assert_int_equal(r.n_aliases, 1);
    assert_string_equal(r.aliases[0], "robert@corp.example");
    assert_int_equal(r.skipped, 2); /* X500: and sip: */
    assert_string_equal(r.home, "");
    assert_int_equal(r.quota_bytes, 0);
    assert_int_equal(r.n_members, 1);
    assert_string_equal(r.members[0], "CN=All,OU=Groups,DC=corp,DC=example");
    assert_string_equal(r.login, "bob.jones@corp.example");
    ldap_record_free(&r);
    buf_free(&err);
}

static void test_group(void **state)
{
    (void)state;
    const struct ldap_map_attr attrs[] = {
        {"cn", VALS("team")},
        {"mailLocalAddress", VALS("team@example.org")},
        {"member",
         VALS("uid=alice,ou=people,dc=example,dc=org", "uid=bob,ou=people,dc=example,dc=org")},
        {"mailHost", VALS("ignored.example.org")},
    };
    struct ldap_map_entry e = {"cn=team,ou=groups,dc=example,dc=org", attrs, 4};
    struct ldap_record r;
    struct buf err = BUF_INIT;
    assert_int_equal(ldap_map_entry(&openldap, &e, true, &r, &err), 0);
    assert_string_equal(r.address, "team@example.org");
    assert_int_equal(r.n_aliases, 0);
    assert_string_equal(r.home, "");
    assert_int_equal(r.n_members, 2);
    assert_string_equal(r.members[1], "uid=bob,ou=people,dc=example,dc=org");
    ldap_record_free(&r);
    buf_free(&err);
}

static void test_no_address(void **state)
{
    (void)state;
    const struct ldap_map_attr attrs[] = {
        {"mail", VALS("bob", "@example.org", "a b@example.org")},
        {"mailQuota", VALS("lots")},
    };
    struct ldap_map_entry e = {"uid=bob,dc=example", attrs, 2};
    struct ldap_record r;
    struct buf err = BUF_INIT;
    assert_int_equal(ldap_map_entry(&openldap, &e, false, &r, &err), -1);
    assert_null(r.address);
    assert_non_null(strstr(err.data, "uid=bob,dc=example"));
    ldap_record_free(&r);
    struct ldap_map_entry nodn = {"", attrs, 2};
    assert_int_equal(ldap_map_entry(&openldap, &nodn, false, &r, &err), -1);
    ldap_record_free(&r);
    buf_free(&err);
}

static void test_address_forms(void **state)
{
    (void)state;
    char *a = ldap_map_address("SmTp:x@Y.example");
    assert_string_equal(a, "x@y.example");
    free(a);
    assert_null(ldap_map_address("x400:c=us;a=x@y"));
    assert_null(ldap_map_address("smtp:"));
    a = ldap_map_address("weird:local@d.example"); /* ':' before '@' and not smtp */
    assert_null(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openldap_account),
        cmocka_unit_test(test_ad_account),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_no_address),
        cmocka_unit_test(test_address_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
