/*
 * test_tokens.c - unit tests for the app-password table (auth_tokens.c):
 * a token checks, a near miss does not, revocation and a reload from the
 * file agree, and the file never holds a secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth_tokens.h"

/* An empty table in a new temporary folder (dir: a mkdtemp template; path: 64 bytes). */
static struct auth_tokens *fresh_table(char *dir, char *path, struct buf *err)
{
    assert_non_null(mkdtemp(dir));
    snprintf(path, 64, "%s/tokens", dir);
    struct auth_tokens *t = auth_tokens_open(path, err);
    assert_non_null(t);
    return t;
}

static void test_tokens(void **state)
{
    (void)state;
    char dir[] = "/tmp/wharf-tokens-XXXXXX", path[64];
    struct buf err = BUF_INIT, tok = BUF_INIT, tok2 = BUF_INIT;
    struct auth_tokens *t = fresh_table(dir, path, &err);
    assert_int_equal(auth_tokens_add(t, "alice@example.test", &tok, &err), 0);
    assert_int_equal(auth_tokens_add(t, "bob@example.test", &tok2, &err), 0);
    assert_string_equal(auth_tokens_check(t, tok.data), "alice@example.test");
    assert_string_equal(auth_tokens_check(t, tok2.data), "bob@example.test");
    char *near = strdup(tok.data);
    near[strlen(near) - 1] = near[strlen(near) - 1] == 'A' ? 'B' : 'A';
    assert_null(auth_tokens_check(t, near));
    assert_null(auth_tokens_check(t, "wht_"));
    assert_null(auth_tokens_check(t, ""));
    char id[17];
    auth_tokens_id(tok.data, id);
    assert_int_equal(strlen(id), 16);
    json_t *l = auth_tokens_list(t, "alice@example.test");
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    /* The file: ids and hashes, never a secret. */
    FILE *f = fopen(path, "r");
    char text[4096] = {0};
    assert_true(fread(text, 1, sizeof(text) - 1, f) > 0);
    fclose(f);
    assert_null(strstr(text, tok.data + 21));
    assert_non_null(strstr(text, id));
    /* Revoke, then a reload agrees. */
    assert_int_equal(auth_tokens_revoke(t, id, &err), 1);
    assert_int_equal(auth_tokens_revoke(t, id, &err), 0);
    assert_null(auth_tokens_check(t, tok.data));
    auth_tokens_free(t);
    t = auth_tokens_open(path, &err);
    assert_non_null(t);
    assert_null(auth_tokens_check(t, tok.data));
    assert_string_equal(auth_tokens_check(t, tok2.data), "bob@example.test");
    auth_tokens_free(t);
    /* A damaged file is refused, not half-read. */
    f = fopen(path, "a");
    fputs("garbage\n", f);
    fclose(f);
    assert_null(auth_tokens_open(path, &err));
    unlink(path);
    rmdir(dir);
    free(near);
    buf_free(&err);
    buf_free(&tok);
    buf_free(&tok2);
}

/* Webmail sessions: the same table, a kind of their own, kept across a reload. */
static void test_sessions(void **state)
{
    (void)state;
    char dir[] = "/tmp/wharf-tokens-XXXXXX", path[64];
    struct buf err = BUF_INIT, s = BUF_INIT, app = BUF_INIT;
    struct auth_tokens *t = fresh_table(dir, path, &err);
    auth_tokens_set_session_idle(t, 3600);
    assert_int_equal(auth_tokens_add_session(t, "alice@example.test", &s, &err), 0);
    assert_int_equal(auth_tokens_add(t, "alice@example.test", &app, &err), 0);
    assert_true(auth_tokens_is_session(s.data));
    assert_false(auth_tokens_is_session(app.data));
    assert_string_equal(auth_tokens_check(t, s.data), "alice@example.test");
    /* The kind is part of the token: a session's secret under the app prefix is refused. */
    char *swapped = strdup(s.data);
    memcpy(swapped, "wht_", 4);
    assert_null(auth_tokens_check(t, swapped));
    json_t *l = auth_tokens_list(t, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "kind")),
                        "session");
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "kind")), "app");
    json_decref(l);
    auth_tokens_free(t);
    t = auth_tokens_open(path, &err);
    assert_non_null(t);
    assert_string_equal(auth_tokens_check(t, s.data), "alice@example.test");
    assert_null(auth_tokens_check(t, swapped));
    char id[17];
    auth_tokens_id(s.data, id);
    assert_int_equal(auth_tokens_revoke(t, id, &err), 1);
    assert_null(auth_tokens_check(t, s.data));
    assert_string_equal(auth_tokens_check(t, app.data), "alice@example.test");
    /* Idle: a check within the timeout is a use that moves it on; past it, the session is gone. */
    buf_reset(&s);
    auth_tokens_set_session_idle(t, 3600);
    assert_int_equal(auth_tokens_add_session(t, "bob@example.test", &s, &err), 0);
    long long now = (long long)time(NULL);
    assert_non_null(auth_tokens_check_at(t, s.data, now + 3000));
    assert_non_null(auth_tokens_check_at(t, s.data, now + 6000));
    assert_null(auth_tokens_check_at(t, s.data, now + 9601));
    assert_null(auth_tokens_check_at(t, s.data, now + 6000)); /* revoked, not just refused */
    assert_string_equal(auth_tokens_check_at(t, app.data, now + 99999), "alice@example.test");
    auth_tokens_free(t);
    unlink(path);
    rmdir(dir);
    free(swapped);
    buf_free(&err);
    buf_free(&s);
    buf_free(&app);
}

/* Admin-scoped tokens: a kind of their own, kept across a reload; the
 * prefix is part of what is checked, both ways. */
static void test_admin_scope(void **state)
{
    (void)state;
    char dir[] = "/tmp/wharf-tokens-XXXXXX", path[64];
    struct buf err = BUF_INIT, adm = BUF_INIT, app = BUF_INIT;
    struct auth_tokens *t = fresh_table(dir, path, &err);
    assert_int_equal(auth_tokens_add_admin(t, "root@example.test", &adm, &err), 0);
    assert_int_equal(auth_tokens_add(t, "root@example.test", &app, &err), 0);
    assert_true(auth_tokens_is_admin(adm.data));
    assert_false(auth_tokens_is_admin(app.data));
    char id[17];
    auth_tokens_id(adm.data, id);
    assert_int_equal(strlen(id), 16);
    assert_string_equal(auth_tokens_check(t, adm.data), "root@example.test");
    char *down = strdup(adm.data), *up = strdup(app.data);
    memcpy(down, "wht_", 4);
    memcpy(up, "wha_", 4);
    assert_null(auth_tokens_check(t, down)); /* an admin token is not an app token */
    assert_null(auth_tokens_check(t, up));   /* and an app token never becomes an admin one */
    auth_tokens_free(t);
    t = auth_tokens_open(path, &err);
    assert_non_null(t);
    assert_string_equal(auth_tokens_check(t, adm.data), "root@example.test");
    assert_null(auth_tokens_check(t, up));
    json_t *l = auth_tokens_list(t, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "kind")), "admin");
    json_decref(l);
    auth_tokens_free(t);
    unlink(path);
    rmdir(dir);
    free(down);
    free(up);
    buf_free(&err);
    buf_free(&adm);
    buf_free(&app);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_tokens),
                                       cmocka_unit_test(test_sessions),
                                       cmocka_unit_test(test_admin_scope)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
