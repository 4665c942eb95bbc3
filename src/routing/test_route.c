/*
 * test_route.c - route computation (route.h) on a fixed organization:
 * least cost, the deterministic tie-break (cost, hops, connector names),
 * connectors DOWN or disabled leaving the graph, next hops, the most
 * specific address space without fallback, record checks and ordering
 * (terms of master failover),
 * and the digest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "routing/org.h"
#include "routing/route.h"

#include <stdlib.h>
#include <string.h>

/* A-B-D costs 2, A-C-D costs 2 too (tie: ab < ac), A-E-D costs 1+1 through e-group. */
static const char *const cfg_text =
    "{\"org\":\"acme\",\"serial\":1,"
    "\"groups\":[{\"name\":\"rg-a\"},{\"name\":\"rg-b\"},{\"name\":\"rg-c\"},{\"name\":\"rg-d\"}],"
    "\"servers\":[{\"name\":\"a1\",\"group\":\"rg-a\",\"address\":\"127.0.0.2:691\"},"
    "{\"name\":\"a2\",\"group\":\"rg-a\",\"address\":\"127.0.0.3:691\"},"
    "{\"name\":\"b1\",\"group\":\"rg-b\",\"address\":\"127.0.0.4:691\"},"
    "{\"name\":\"c1\",\"group\":\"rg-c\",\"address\":\"127.0.0.5:691\"},"
    "{\"name\":\"d1\",\"group\":\"rg-d\",\"address\":\"127.0.0.6:691\"}],"
    "\"connectors\":["
    "{\"name\":\"ac\",\"from\":\"rg-a\",\"to\":\"rg-c\",\"cost\":1,\"enabled\":true,"
    "\"source\":[\"a1\"],\"target\":[\"c1\"]},"
    "{\"name\":\"ab\",\"from\":\"rg-a\",\"to\":\"rg-b\",\"cost\":1,\"enabled\":true,"
    "\"source\":[\"a1\"],\"target\":[\"b1\"]},"
    "{\"name\":\"bd\",\"from\":\"rg-b\",\"to\":\"rg-d\",\"cost\":1,\"enabled\":true,"
    "\"source\":[\"b1\"],\"target\":[\"d1\"]},"
    "{\"name\":\"cd\",\"from\":\"rg-c\",\"to\":\"rg-d\",\"cost\":1,\"enabled\":true,"
    "\"source\":[\"c1\"],\"target\":[\"d1\"]},"
    "{\"name\":\"all\",\"from\":\"rg-c\",\"space\":\"*\",\"smarthost\":\"192.0.2.1:25\","
    "\"cost\":1,\"enabled\":true,\"source\":[\"c1\"]},"
    "{\"name\":\"ps\",\"from\":\"rg-d\",\"space\":\"*.partner.test\",\"smarthost\":\"192.0.2.2:"
    "25\","
    "\"cost\":5,\"enabled\":true,\"source\":[\"d1\"]}]}";

static json_t *cfg;

static json_t *rec(const char *group, const char *orig, int seq, const char *conns)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"group\":\"%s\",\"originator\":\"%s\",\"seq\":%d,\"config_serial\":1,"
             "\"members\":[\"%s\"],\"connectors\":[%s]}",
             group, orig, seq, orig, conns);
    json_t *r = json_loads(text, 0, NULL);
    assert_non_null(r);
    return r;
}

/* Every connector UP, except those named in down (comma separated). */
static json_t *records(const char *down)
{
    json_t *rs = json_object();
    const char *groups[][2] = {{"rg-a", "a1"}, {"rg-b", "b1"}, {"rg-c", "c1"}, {"rg-d", "d1"}};
    for (size_t g = 0; g < 4; g++) {
        char conns[512] = "";
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(cfg, "connectors"), i, c)
        {
            if (strcmp(json_string_value(json_object_get(c, "from")), groups[g][0]) != 0)
                continue;
            const char *name = json_string_value(json_object_get(c, "name"));
            bool is_down = down && strstr(down, name) != NULL;
            snprintf(conns + strlen(conns), sizeof(conns) - strlen(conns),
                     "%s{\"name\":\"%s\",\"state\":\"%s\",\"since\":1}", conns[0] ? "," : "", name,
                     is_down ? "DOWN" : "UP");
        }
        json_object_set_new(rs, groups[g][0], rec(groups[g][0], groups[g][1], 1, conns));
    }
    return rs;
}

static const json_t *route(const json_t *table, const char *dest)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(table, "routes"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "dest")), dest) == 0)
            return r;
    }
    fail_msg("no route entry for %s", dest);
    return NULL;
}

static char *path_of(const json_t *r)
{
    return json_dumps(json_object_get(r, "path"), JSON_COMPACT | JSON_ENCODE_ANY);
}

static void test_tie_break_and_reroute(void **state)
{
    (void)state;
    json_t *rs = records(NULL);
    json_t *t = route_table(cfg, rs, "a1");
    const json_t *d = route(t, "rg-d");
    char *p = path_of(d);
    assert_string_equal(p, "[\"ab\",\"bd\"]"); /* cost 2 both ways: ab < ac */
    assert_int_equal(json_integer_value(json_object_get(d, "cost")), 2);
    assert_string_equal(json_string_value(json_object_get(d, "next_hop")), "b1");
    free(p);
    /* from a2 (not a bridgehead) the next hop is the source bridgehead a1 */
    json_t *t2 = route_table(cfg, rs, "a2");
    assert_string_equal(json_string_value(json_object_get(route(t2, "rg-d"), "next_hop")), "a1");
    assert_string_equal(json_string_value(json_object_get(route(t2, "rg-a"), "next_hop")), "local");
    /* what the mta sends to: the next hop's group (and its smtp address, none here) */
    assert_string_equal(json_string_value(json_object_get(route(t2, "rg-d"), "next_group")),
                        "rg-a");
    assert_string_equal(json_string_value(json_object_get(d, "next_group")), "rg-b");
    assert_null(json_string_value(json_object_get(d, "smtp")));
    assert_null(json_string_value(json_object_get(route(t2, "rg-a"), "next_group")));
    /* every server with its group, for the mta to find a home server's */
    const json_t *servers = json_object_get(t2, "servers");
    assert_int_equal(json_array_size(servers), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(servers, 4), "group")),
                        "rg-d");
    json_decref(t2);
    json_decref(t);
    json_decref(rs);
    /* bd DOWN: over C */
    rs = records("bd");
    t = route_table(cfg, rs, "a1");
    p = path_of(route(t, "rg-d"));
    assert_string_equal(p, "[\"ac\",\"cd\"]");
    free(p);
    json_decref(t);
    json_decref(rs);
    /* ac disabled and bd DOWN: rg-d unreachable, rg-c too */
    json_t *c = org_find(cfg, "connectors", "ac");
    json_object_set_new(c, "enabled", json_false());
    rs = records("bd");
    t = route_table(cfg, rs, "a1");
    assert_false(json_is_true(json_object_get(route(t, "rg-d"), "reachable")));
    assert_false(json_is_true(json_object_get(route(t, "rg-c"), "reachable")));
    json_object_set_new(c, "enabled", json_true());
    json_decref(t);
    json_decref(rs);
}

static void test_address_spaces(void **state)
{
    (void)state;
    json_t *rs = records(NULL);
    struct buf out = BUF_INIT;
    route_explain(cfg, rs, "a1", "x@Host.Partner.test", &out);
    assert_non_null(strstr(buf_cstr(&out), "most specific address space: *.partner.test"));
    assert_non_null(strstr(buf_cstr(&out), "result: connector ps, cost 7"));
    buf_reset(&out);
    route_explain(cfg, rs, "a1", "x@elsewhere.test", &out);
    assert_non_null(strstr(buf_cstr(&out), "result: connector all, cost 2"));
    json_decref(rs);
    /* ps DOWN: mail for the partner waits, no fallback to "*" */
    rs = records("ps");
    buf_reset(&out);
    route_explain(cfg, rs, "a1", "x@host.partner.test", &out);
    assert_non_null(strstr(buf_cstr(&out), "result: UNREACHABLE"));
    json_t *t = route_table(cfg, rs, "c1");
    assert_string_equal(json_string_value(json_object_get(route(t, "*"), "next_hop")),
                        "192.0.2.1:25"); /* c1 is the source bridgehead: the smart host */
    json_decref(t);
    json_decref(rs);
    buf_free(&out);
}

static void test_records(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    json_t *a = rec("rg-a", "a1", 3, "{\"name\":\"ab\",\"state\":\"UP\",\"since\":5}");
    json_t *b = rec("rg-a", "a1", 4, "");
    assert_true(route_record_valid(a, &err));
    assert_true(route_record_newer(NULL, b, a));
    assert_false(route_record_newer(NULL, a, b));
    assert_false(route_record_newer(NULL, a, a));
    json_t *bad = rec("rg-a", "a1", 3, "{\"name\":\"ab\",\"state\":\"MAYBE\",\"since\":5}");
    assert_false(route_record_valid(bad, &err));
    json_object_set_new(a, "extra", json_true());
    assert_false(route_record_valid(a, &err));
    json_t *rs = json_pack("{s:O}", "rg-a", b);
    char d1[65], d2[65];
    route_digest("00", rs, d1);
    json_object_set_new(b, "seq", json_integer(5));
    route_digest("00", rs, d2);
    assert_string_not_equal(d1, d2);
    json_decref(rs);
    json_decref(a);
    json_decref(b);
    json_decref(bad);
    buf_free(&err);
}

/* Master failover: a higher term wins whatever its seq; at one term the better-ranked master. */
static void test_record_terms(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    json_t *a1 = rec("rg-a", "a1", 90, ""), *a2 = rec("rg-a", "a2", 3, "");
    json_object_set_new(a1, "term", json_integer(1));
    json_object_set_new(a2, "term", json_integer(2));
    assert_true(route_record_valid(a2, &err));
    assert_true(route_record_newer(cfg, a2, a1)); /* a2 took over */
    assert_false(route_record_newer(cfg, a1, a2));
    json_object_set_new(a1, "term", json_integer(2)); /* two claims at one term: a1 ranks first */
    assert_true(route_record_newer(cfg, a1, a2));
    assert_false(route_record_newer(cfg, a2, a1));
    json_t *old = rec("rg-a", "a2", 3, ""); /* from before terms: term 0 */
    assert_true(route_record_newer(cfg, a2, old));
    assert_int_equal(route_record_term(old), 0);
    json_object_set_new(a2, "term", json_integer(-1));
    assert_false(route_record_valid(a2, &err));
    json_object_set_new(a2, "term", json_string("2"));
    assert_false(route_record_valid(a2, &err));
    json_decref(a1);
    json_decref(a2);
    json_decref(old);
    buf_free(&err);
}

int main(void)
{
    cfg = json_loads(cfg_text, 0, NULL);
    struct buf err = BUF_INIT;
    if (cfg == NULL || !org_config_validate(cfg, &err)) {
        fprintf(stderr, "bad test configuration: %s\n", buf_cstr(&err));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tie_break_and_reroute),
        cmocka_unit_test(test_address_spaces),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_record_terms),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(cfg);
    buf_free(&err);
    return rc;
}
