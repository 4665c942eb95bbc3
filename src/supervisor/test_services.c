/*
 * test_services.c - unit tests for the services table, the list of
 * components and the port map built from them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/portmap.h"
#include "supervisor/services.h"

static void test_names_unique(void **state)
{
    for (size_t i = 0; i < n_services; i++) {
        assert_non_null(services[i].name);
        for (size_t j = i + 1; j < n_services; j++)
            assert_string_not_equal(services[i].name, services[j].name);
    }
    for (size_t i = 0; i < n_components; i++)
        for (size_t j = i + 1; j < n_components; j++)
            assert_string_not_equal(components[i]->name, components[j]->name);
}

static void test_rows_complete(void **state)
{
    for (size_t i = 0; i < n_services; i++) {
        const struct service_def *s = &services[i];
        assert_non_null(s->protocol);
        assert_true(s->port > 0);
        assert_non_null(s->why);
        assert_true(strlen(s->why) > 10);
        assert_non_null(s->component->exchange_name);
        assert_non_null(s->component->job);
        /* Every row's component is one the supervisor knows. */
        assert_ptr_equal(component_find(s->component->name), s->component);
        assert_ptr_equal(service_find(s->name), s);
    }
    for (size_t i = 0; i < n_components; i++) {
        bool has_row = false;
        for (size_t j = 0; j < n_services; j++)
            has_row |= services[j].component == components[i];
        /* auth has no port of its own: it answers on a unix socket under DATA/run. */
        if (strcmp(components[i]->name, "auth") != 0)
            assert_true(has_row);
    }
}

/* Every inbound row has <name>_listen and both limits; every LISTEN option has one row. */
static void test_inbound_options(void **state)
{
    char name[128];
    for (size_t i = 0; i < n_services; i++) {
        const struct service_def *s = &services[i];
        if (s->direction == SERVICE_OUTBOUND) {
            assert_int_equal(s->listen_option, -1);
            assert_int_equal(s->max_conn_option, -1);
            assert_int_equal(s->per_ip_option, -1);
            continue;
        }
        assert_true(s->listen_option >= 0 && s->listen_option < OPTID__COUNT);
        assert_int_equal(config_options[s->listen_option].type, CONFIG_LISTEN);
        snprintf(name, sizeof(name), "%s_listen", s->name);
        assert_string_equal(config_options[s->listen_option].name, name);
        snprintf(name, sizeof(name), "%s_max_connections", s->name);
        assert_string_equal(config_options[s->max_conn_option].name, name);
        assert_int_equal(config_options[s->max_conn_option].type, CONFIG_INT);
        snprintf(name, sizeof(name), "%s_max_connections_per_ip", s->name);
        assert_string_equal(config_options[s->per_ip_option].name, name);
        assert_int_equal(config_options[s->per_ip_option].type, CONFIG_INT);
    }
    for (size_t o = 0; o < OPTID__COUNT; o++) {
        if (config_options[o].type != CONFIG_LISTEN)
            continue;
        size_t rows = 0;
        for (size_t i = 0; i < n_services; i++)
            rows += services[i].listen_option == (int)o;
        if (rows != 1)
            fail_msg("%s is named by %zu rows of the services table", config_options[o].name, rows);
    }
}

/* By default each inbound service listens on its standard port, and no two share one. */
static void test_default_ports(void **state)
{
    struct wharf_config cfg;
    config_init(&cfg);
    for (size_t i = 0; i < n_services; i++) {
        const struct service_def *a = &services[i];
        if (a->direction != SERVICE_INBOUND)
            continue;
        const struct strlist *la = service_listen(&cfg, a);
        assert_int_equal(la->n, 1);
        struct listen_addr pa;
        assert_true(config_parse_listen_addr(la->v[0], &pa));
        assert_int_equal(pa.port, a->port);
        assert_true(service_max_connections(&cfg, a) >= service_max_connections_per_ip(&cfg, a));
        for (size_t j = i + 1; j < n_services; j++) {
            if (services[j].direction == SERVICE_INBOUND)
                assert_int_not_equal(a->port, services[j].port);
        }
    }
    config_free(&cfg);
}

static json_t *find_row(json_t *rows, const char *service)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "service")), service) == 0)
            return r;
    }
    return NULL;
}

static void test_portmap_ldap_rows(void **state)
{
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    char *a[] = {"directory_driver=ldap",
                 "ldap_uris=ldaps://dc1.example:636 ldaps://dc2.example:3269"};
    assert_int_equal(config_read(&cfg, NULL, a, 2, &err), 0);
    json_t *rows = portmap_json(&cfg, NULL, NULL);
    json_t *ldaps = find_row(rows, "ldaps"), *ldap = find_row(rows, "ldap");
    assert_string_equal(json_string_value(json_object_get(ldaps, "address")),
                        "dc1.example:636 dc2.example:3269");
    assert_string_equal(json_string_value(json_object_get(ldaps, "state")), "not running");
    assert_string_equal(json_string_value(json_object_get(ldap, "state")), "not configured");
    json_decref(rows);
    config_free(&cfg);
    buf_free(&err);
}

/* The ldap row says plain unless StartTLS is asked for; a front-end serves no news. */
static void test_portmap_frontend_and_ldap_tls(void **state)
{
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    char *a[] = {"directory_driver=ldap", "ldap_uris=ldap://127.0.0.1:3389", "role=frontend",
                 "nntp_feed_to=peer=nntp://192.0.2.9:119/"};
    assert_int_equal(config_read(&cfg, NULL, a, 4, &err), 0);
    json_t *rows = portmap_json(&cfg, NULL, NULL);
    json_t *ldap = find_row(rows, "ldap");
    assert_string_equal(json_string_value(json_object_get(ldap, "tls")), "plain");
    assert_string_equal(json_string_value(json_object_get(ldap, "address")), "127.0.0.1:3389");
    for (const char *const *n = (const char *const[]){"nntp", "nntps", NULL}; *n; n++) {
        json_t *r = find_row(rows, *n);
        assert_string_equal(json_string_value(json_object_get(r, "address")), "-");
        assert_string_equal(json_string_value(json_object_get(r, "state")), "disabled");
    }
    assert_false(component_enabled(&cfg, component_find("nntp")));
    assert_false(component_enabled(&cfg, component_find("nntpfeed")));
    assert_true(component_enabled(&cfg, component_find("imap")));
    json_decref(rows);
    config_free(&cfg);
    char *b[] = {"directory_driver=ldap", "ldap_uris=ldap://127.0.0.1:3389", "ldap_starttls=yes"};
    assert_int_equal(config_read(&cfg, NULL, b, 3, &err), 0);
    rows = portmap_json(&cfg, NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(find_row(rows, "ldap"), "tls")),
                        "starttls");
    assert_true(component_enabled(&cfg, component_find("nntp")));
    json_decref(rows);
    config_free(&cfg);
    buf_free(&err);
}

static void test_portmap_config_only(void **state)
{
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    char *a[] = {"smtp_listen=127.0.0.1:2525, [::1]:2525", "imap_listen=off",
                 "smtp_max_connections=7"};
    assert_int_equal(config_read(&cfg, NULL, a, 3, &err), 0);
    json_t *rows = portmap_json(&cfg, NULL, NULL);
    size_t expected = n_services + 1; /* smtp has two addresses */
    assert_int_equal(json_array_size(rows), expected);
    json_t *smtp = find_row(rows, "smtp");
    assert_string_equal(json_string_value(json_object_get(smtp, "address")), "127.0.0.1:2525");
    assert_int_equal(json_integer_value(json_object_get(smtp, "port")), 2525);
    assert_int_equal(json_integer_value(json_object_get(smtp, "max_connections")), 7);
    const char *st = json_string_value(json_object_get(smtp, "state"));
    assert_string_equal(st,
                        (component_find("smtp")->main != NULL) ? "not running" : "not built yet");
    json_t *imap = find_row(rows, "imap");
    assert_string_equal(json_string_value(json_object_get(imap, "address")), "-");
    json_t *ldap = find_row(rows, "ldap");
    assert_string_equal(json_string_value(json_object_get(ldap, "direction")), "outbound");
    assert_null(json_object_get(ldap, "max_connections"));
    /* The LDAP rows are used only with the LDAP directory. */
    assert_string_equal(json_string_value(json_object_get(ldap, "state")), "not configured");
    assert_string_equal(json_string_value(json_object_get(ldap, "address")), "-");
    struct buf out = BUF_INIT;
    portmap_format_table(rows, &out);
    assert_non_null(strstr(out.data, "EXCHANGE"));
    assert_non_null(strstr(out.data, "[::1]:2525"));
    assert_non_null(strstr(out.data, "7, 50/ip")); /* smtp_max_connections_per_ip */
    buf_free(&out);
    json_decref(rows);
    config_free(&cfg);
    buf_free(&err);
}

static void test_component_enabled(void **state)
{
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    char *a[] = {"smtp_listen=off", "submission_listen=off", "smtps_listen=off"};
    assert_int_equal(config_read(&cfg, NULL, a, 3, &err), 0);
    const struct component_def *smtp = component_find("smtp");
    assert_false(component_enabled(&cfg, smtp)); /* every listener off (or not built) */
    assert_false(component_has_listeners(&cfg, smtp));
    for (size_t i = 0; i < n_components; i++) {
        if (components[i]->main == NULL)
            assert_false(component_enabled(&cfg, components[i]));
    }
    assert_int_equal(component_worker_count(&cfg, component_find("auth")), 1);
    config_free(&cfg);
    buf_free(&err);
}

/* workers = 0: one per CPU the server may run on (taskset, a cpuset), not per CPU of the machine.
 */
static void test_worker_count_affinity(void **state)
{
    (void)state;
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    assert_int_equal(config_read(&cfg, NULL, NULL, 0, &err), 0);
    const struct component_def *imap = component_find("imap");
    cpu_set_t was, one;
    assert_int_equal(sched_getaffinity(0, sizeof(was), &was), 0);
    assert_int_equal(component_worker_count(&cfg, imap), (unsigned)CPU_COUNT(&was));
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, &was)) {
            CPU_SET(c, &one);
            break;
        }
    }
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    assert_int_equal(component_worker_count(&cfg, imap), 1);
    assert_int_equal(sched_setaffinity(0, sizeof(was), &was), 0);
    config_free(&cfg);
    char *three[] = {"workers=3"};
    assert_int_equal(config_read(&cfg, NULL, three, 1, &err), 0);
    assert_int_equal(component_worker_count(&cfg, imap), 3);
    config_free(&cfg);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_unique),
        cmocka_unit_test(test_rows_complete),
        cmocka_unit_test(test_inbound_options),
        cmocka_unit_test(test_default_ports),
        cmocka_unit_test(test_portmap_config_only),
        cmocka_unit_test(test_portmap_ldap_rows),
        cmocka_unit_test(test_portmap_frontend_and_ldap_tls),
        cmocka_unit_test(test_component_enabled),
        cmocka_unit_test(test_worker_count_affinity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
