/*
 * test_jmap.c - unit tests of the JMAP engine on a real temporary store:
 * request-level problems, back-references, Mailbox and Email methods with
 * their errors, /changes across changes made beside JMAP (store_deliver as
 * the mta does), blobs, submission through a recording queue, an account
 * shared by ACL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "http/jmap.h"
#include "http/jmap_int.h" /* jmap_view_copies_room */
#include "http/jmap_push.h"

#include <event2/event.h>

#define ALICE "alice@example.test"
#define BOB "bob@example.test"

static const char *account(void)
{
    static struct buf id = BUF_INIT;
    jmap_account_id(ALICE, &id);
    return id.data;
}

struct fixture {
    struct store *s;
    struct jmap j;
    /* what the submission queue got */
    char *from;
    size_t n_rcpts;
    struct buf data;
    /* what was published on the bus */
    size_t n_changed, n_list;
    char last_mailbox[64];
};

static void publish(void *ctx, const struct ipc_event *ev)
{
    struct fixture *f = ctx;
    if (ev->type == IPC_EVENT_MAILBOX_CHANGED) {
        f->n_changed++;
        assert_string_equal(ev->u.mailbox_changed.owner, ALICE);
        assert_true(ev->u.mailbox_changed.account_state > 0);
        snprintf(f->last_mailbox, sizeof(f->last_mailbox), "%s", ev->u.mailbox_changed.mailbox);
    } else if (ev->type == IPC_EVENT_MAILBOX_LIST)
        f->n_list++;
}

static int sender_ok(void *ctx, const char *user, const char *from)
{
    return strcmp(user, from) == 0;
}

static int enqueue(void *ctx, const char *user, const char *from, const char *const *rcpts,
                   size_t n, struct slice data, struct buf *id_r, struct buf *err)
{
    struct fixture *f = ctx;
    free(f->from);
    f->from = xstrdup(from);
    f->n_rcpts = n;
    buf_reset(&f->data);
    buf_append_slice(&f->data, data);
    buf_append_cstr(id_r, "Q1");
    return 0;
}

static struct jmap_submit submit = {sender_ok, enqueue, NULL};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct buf err = BUF_INIT;
    f->s = store_open_temporary(&err);
    assert_non_null(f->s);
    buf_free(&err);
    f->j.store = f->s;
    jmap_limits_from_config(&f->j.limits, NULL);
    f->j.limits.max_calls_in_request = 8;
    f->j.limits.max_objects_in_get = 10;
    submit.ctx = f;
    f->j.submit = &submit;
    f->j.hostname = "mx.example.test";
    f->j.publish = publish;
    f->j.publish_ctx = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    jmap_release(&f->j);
    store_close(f->s);
    free(f->from);
    buf_free(&f->data);
    free(f);
    return 0;
}

/* Runs a request written with ACCOUNT standing for the account id; returns the response. */
static json_t *call_status(struct fixture *f, const char *tmpl, int want_status)
{
    struct buf body = BUF_INIT;
    for (const char *p = tmpl; *p; p++) {
        if (strncmp(p, "ACCOUNT", 7) == 0) {
            buf_append_cstr(&body, account());
            p += 6;
        } else
            buf_append_byte(&body, *p);
    }
    json_t *out = NULL;
    int status = 0;
    jmap_api(&f->j, ALICE, body.data, body.len, &out, &status);
    buf_free(&body);
    if (status != want_status) {
        char *d = json_dumps(out, 0);
        fail_msg("status %d: %s", status, d);
    }
    return out;
}

static json_t *call(struct fixture *f, const char *tmpl)
{
    return call_status(f, tmpl, 200);
}

/* Arguments of response i, checking its name. */
static json_t *resp(json_t *out, size_t i, const char *name)
{
    json_t *r = json_array_get(json_object_get(out, "methodResponses"), i);
    assert_non_null(r);
    if (strcmp(json_string_value(json_array_get(r, 0)), name) != 0) {
        char *d = json_dumps(r, 0);
        fail_msg("expected %s, got %s", name, d);
    }
    return json_array_get(r, 1);
}

static const char *str(json_t *o, const char *path)
{
    json_t *v = o;
    char *copy = xstrdup(path);
    for (char *t = strtok(copy, "/"); t && v; t = strtok(NULL, "/"))
        v = json_is_array(v) ? json_array_get(v, (size_t)atoi(t)) : json_object_get(v, t);
    free(copy);
    return json_string_value(v);
}

static void deliver(struct fixture *f, const char *owner, const char *mailbox, const char *msg)
{
    struct store_target t = {.owner = owner, .mailbox = mailbox};
    struct store_delivery d = {.data = slice_from_cstr(msg), .targets = &t, .n_targets = 1};
    struct buf err = BUF_INIT;
    assert_int_equal(store_deliver(f->s, &d, 1, &err), 0);
    assert_int_equal(t.status, STORE_OK);
    buf_free(&err);
}

static void test_session(void **state)
{
    struct fixture *f = *state;
    json_t *s;
    assert_int_equal(jmap_session_json(&f->j, ALICE, "https://mail.example.test:8443", &s), 0);
    assert_string_equal(str(s, "apiUrl"), "https://mail.example.test:8443/jmap/api/");
    assert_non_null(strstr(str(s, "downloadUrl"), "{blobId}"));
    json_t *core = json_object_get(json_object_get(s, "capabilities"), "urn:ietf:params:jmap:core");
    assert_int_equal(json_integer_value(json_object_get(core, "maxCallsInRequest")), 8);
    assert_int_equal(json_integer_value(json_object_get(core, "maxObjectsInGet")), 10);
    assert_string_equal(str(s, "primaryAccounts/urn:ietf:params:jmap:mail"), account());
    json_decref(s);
}

static void test_request_problems(void **state)
{
    struct fixture *f = *state;
    json_t *o = call_status(f, "{not json", 400);
    assert_string_equal(str(o, "type"), "urn:ietf:params:jmap:error:notJSON");
    json_decref(o);
    o = call_status(f, "{\"using\":[], \"methodCalls\":{}}", 400);
    assert_string_equal(str(o, "type"), "urn:ietf:params:jmap:error:notRequest");
    json_decref(o);
    o = call_status(f, "{\"using\":[\"urn:x\"], \"methodCalls\":[]}", 400);
    assert_string_equal(str(o, "type"), "urn:ietf:params:jmap:error:unknownCapability");
    json_decref(o);
    /* more calls than maxCallsInRequest (8) */
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "{\"using\":[\"urn:ietf:params:jmap:core\"], \"methodCalls\":[");
    for (int i = 0; i < 9; i++)
        buf_printf(&b, "%s[\"Core/echo\", {}, \"c%d\"]", i ? "," : "", i);
    buf_append_cstr(&b, "]}");
    o = call_status(f, b.data, 400);
    assert_string_equal(str(o, "limit"), "maxCallsInRequest");
    json_decref(o);
    /* larger than maxSizeRequest: refused before parsing */
    f->j.limits.max_size_request = 16;
    o = call_status(f, b.data, 400);
    assert_string_equal(str(o, "limit"), "maxSizeRequest");
    json_decref(o);
    f->j.limits.max_size_request = 10u << 20;
    buf_free(&b);
    /* duplicate keys are not I-JSON */
    o = call_status(f, "{\"using\":[], \"using\":[], \"methodCalls\":[]}", 400);
    assert_string_equal(str(o, "type"), "urn:ietf:params:jmap:error:notJSON");
    json_decref(o);
}

static void test_echo_and_method_errors(void **state)
{
    struct fixture *f = *state;
    json_t *o = call(f, "{\"using\":[\"urn:ietf:params:jmap:core\"], \"methodCalls\":["
                        "[\"Core/echo\", {\"hello\": [1, 2]}, \"a\"],"
                        "[\"Mailbox/get\", {\"accountId\": \"ACCOUNT\"}, \"b\"],"
                        "[\"Nope/get\", {}, \"c\"]]}");
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(resp(o, 0, "Core/echo"), "hello"), 1)),
        2);
    /* the mail capability was not in using */
    assert_string_equal(str(resp(o, 1, "error"), "type"), "unknownMethod");
    assert_string_equal(str(resp(o, 2, "error"), "type"), "unknownMethod");
    json_decref(o);
    o = call(f,
             "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
             "[\"Mailbox/get\", {\"accountId\": \"nobody\"}, \"a\"],"
             "[\"Mailbox/get\", {\"accountId\": \"ACCOUNT\", \"ids\": 3}, \"b\"],"
             "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"ids\": "
             "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\"]}, \"c\"],"
             "[\"Mailbox/changes\", {\"accountId\": \"ACCOUNT\", \"sinceState\": \"x\"}, \"d\"],"
             "[\"Email/copy\", {\"accountId\": \"ACCOUNT\", \"fromAccountId\": \"other\"}, \"e\"]"
             "]}");
    assert_string_equal(str(resp(o, 0, "error"), "type"), "accountNotFound");
    assert_string_equal(str(resp(o, 1, "error"), "type"), "invalidArguments");
    assert_string_equal(str(resp(o, 2, "error"), "type"), "requestTooLarge");
    assert_string_equal(str(resp(o, 3, "error"), "type"), "cannotCalculateChanges");
    assert_string_equal(str(resp(o, 4, "error"), "type"), "fromAccountNotFound");
    json_decref(o);
}

static void test_mailboxes(void **state)
{
    struct fixture *f = *state;
    /* the query's ids flow into the get by a back-reference */
    json_t *o = call(
        f, "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
           "[\"Mailbox/query\", {\"accountId\": \"ACCOUNT\", \"filter\": {\"role\": \"inbox\"}}, "
           "\"q\"],"
           "[\"Mailbox/get\", {\"accountId\": \"ACCOUNT\", \"#ids\": {\"resultOf\": \"q\", "
           "\"name\": \"Mailbox/query\", \"path\": \"/ids\"}, \"properties\": [\"name\", "
           "\"role\", \"totalEmails\"]}, \"g\"],"
           "[\"Mailbox/get\", {\"accountId\": \"ACCOUNT\", \"#ids\": {\"resultOf\": \"zz\", "
           "\"name\": \"Mailbox/query\", \"path\": \"/ids\"}}, \"bad\"]]}");
    json_t *g = resp(o, 1, "Mailbox/get");
    assert_int_equal(json_array_size(json_object_get(g, "list")), 1);
    assert_string_equal(str(g, "list/0/role"), "inbox");
    assert_string_equal(str(g, "list/0/name"), "Inbox");
    assert_string_equal(str(resp(o, 2, "error"), "type"), "invalidResultReference");
    const char *state0 = str(g, "state");
    char *st = xstrdup(state0);
    json_decref(o);

    /* create a parent and a child in one call, the child naming the parent by creation id */
    o = call(f, "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
                "[\"Mailbox/set\", {\"accountId\": \"ACCOUNT\", \"create\": {"
                "\"p\": {\"name\": \"Projects\"},"
                "\"c\": {\"name\": \"Wharf\", \"parentId\": \"#p\"},"
                "\"bad\": {\"name\": \"a/b\"}}}, \"s\"],"
                "[\"Mailbox/get\", {\"accountId\": \"ACCOUNT\", \"ids\": [\"#c\"]}, \"g\"]]}");
    json_t *s = resp(o, 0, "Mailbox/set");
    assert_non_null(str(s, "created/p/id"));
    assert_int_equal(f->n_list, 2); /* IMAP LIST-STATUS and NOTIFY sessions hear of both */
    assert_string_equal(str(s, "notCreated/bad/type"), "invalidProperties");
    g = resp(o, 1, "Mailbox/get");
    assert_string_equal(str(g, "list/0/name"), "Wharf");
    assert_string_equal(str(g, "list/0/parentId"), str(s, "created/p/id"));
    char *parent = xstrdup(str(s, "created/p/id")), *child = xstrdup(str(s, "created/c/id"));
    json_decref(o);

    /* changes since the first state: two created */
    struct buf b = BUF_INIT;
    buf_printf(&b,
               "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
               "[\"Mailbox/changes\", {\"accountId\": \"ACCOUNT\", \"sinceState\": \"%s\"}, \"c\"],"
               "[\"Mailbox/set\", {\"accountId\": \"ACCOUNT\", \"ifInState\": \"%s\", \"update\": "
               "{\"%s\": {\"name\": \"X\"}}}, \"s\"],"
               "[\"Mailbox/set\", {\"accountId\": \"ACCOUNT\", \"destroy\": [\"%s\"]}, \"d\"]]}",
               st, st, child, parent);
    o = call(f, b.data);
    json_t *c = resp(o, 0, "Mailbox/changes");
    assert_int_equal(json_array_size(json_object_get(c, "created")), 2);
    assert_int_equal(json_array_size(json_object_get(c, "updated")), 0);
    assert_string_equal(str(resp(o, 1, "error"), "type"), "stateMismatch");
    json_t *nd = json_object_get(resp(o, 2, "Mailbox/set"), "notDestroyed");
    assert_string_equal(str(json_object_get(nd, parent), "type"), "mailboxHasChild");
    char *st2 = xstrdup(str(c, "newState"));
    json_decref(o);

    /* rename the child, then destroy it: changes shows it gone */
    buf_reset(&b);
    buf_printf(&b,
               "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
               "[\"Mailbox/set\", {\"accountId\": \"ACCOUNT\", \"update\": "
               "{\"%s\": {\"name\": \"Ship\", \"parentId\": null}}}, \"u\"],"
               "[\"Mailbox/set\", {\"accountId\": \"ACCOUNT\", \"destroy\": [\"%s\"]}, \"d\"],"
               "[\"Mailbox/changes\", {\"accountId\": \"ACCOUNT\", \"sinceState\": \"%s\"}, \"c\"]"
               "]}",
               child, child, st2);
    o = call(f, b.data);
    assert_non_null(json_object_get(json_object_get(resp(o, 0, "Mailbox/set"), "updated"), child));
    assert_string_equal(str(resp(o, 1, "Mailbox/set"), "destroyed/0"), child);
    c = resp(o, 2, "Mailbox/changes");
    assert_string_equal(str(c, "destroyed/0"), child);
    json_decref(o);
    buf_free(&b);
    free(st);
    free(st2);
    free(parent);
    free(child);
}

static const char msg_plain[] = "From: Bob Builder <bob@example.test>\r\n"
                                "To: alice@example.test\r\n"
                                "Subject: =?UTF-8?B?SMOpbGxv?= there\r\n"
                                "Date: Fri, 27 Nov 2026 10:00:00 +0100\r\n"
                                "Message-ID: <one@example.test>\r\n"
                                "\r\n"
                                "Hello Alice, the crane arrives on Monday.\r\n";

static const char msg_mixed[] = "From: Carol <carol@example.test>\r\n"
                                "To: alice@example.test\r\n"
                                "Subject: plans\r\n"
                                "MIME-Version: 1.0\r\n"
                                "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
                                "\r\n"
                                "--b1\r\n"
                                "Content-Type: text/plain; charset=utf-8\r\n"
                                "\r\n"
                                "See the attached plan.\r\n"
                                "--b1\r\n"
                                "Content-Type: application/pdf; name=\"plan.pdf\"\r\n"
                                "Content-Disposition: attachment; filename=\"plan.pdf\"\r\n"
                                "Content-Transfer-Encoding: base64\r\n"
                                "\r\n"
                                "UERGIGJ5dGVz\r\n"
                                "--b1--\r\n";

static void test_emails(void **state)
{
    struct fixture *f = *state;
    json_t *o = call(f, "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
                        "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"ids\": []}, \"g\"]]}");
    char *st = xstrdup(str(resp(o, 0, "Email/get"), "state"));
    json_decref(o);
    deliver(f, ALICE, NULL, msg_plain);
    deliver(f, ALICE, NULL, msg_mixed);
    /* no ids: every Email (two, under maxObjectsInGet) */
    o = call(f,
             "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
             "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"properties\": [\"size\"]}, \"g\"]]}");
    assert_int_equal(json_array_size(json_object_get(resp(o, 0, "Email/get"), "list")), 2);
    json_decref(o);
    struct buf b = BUF_INIT;
    buf_printf(
        &b,
        "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
        "[\"Email/changes\", {\"accountId\": \"ACCOUNT\", \"sinceState\": \"%s\"}, \"c\"],"
        "[\"Email/query\", {\"accountId\": \"ACCOUNT\", \"filter\": {\"from\": \"bob\"},"
        " \"calculateTotal\": true}, \"q\"],"
        "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"#ids\": {\"resultOf\": \"q\", "
        "\"name\": \"Email/query\", \"path\": \"/ids\"}, \"properties\": [\"subject\", "
        "\"from\", \"sentAt\", \"preview\", \"keywords\", \"mailboxIds\", \"textBody\", "
        "\"bodyValues\", \"messageId\", \"header:Subject:asText\"], "
        "\"fetchTextBodyValues\": true}, \"g\"],"
        "[\"Email/query\", {\"accountId\": \"ACCOUNT\", \"filter\": {\"text\": \"attached\"}},"
        " \"t\"],"
        "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"#ids\": {\"resultOf\": \"t\", "
        "\"name\": \"Email/query\", \"path\": \"/ids\"}, \"properties\": [\"attachments\", "
        "\"hasAttachment\"]}, \"a\"],"
        "[\"Email/query\", {\"accountId\": \"ACCOUNT\", \"filter\": {\"operator\": \"NOT\","
        " \"conditions\": [{\"subject\": \"plans\"}]}}, \"n\"],"
        "[\"Email/query\", {\"accountId\": \"ACCOUNT\", \"filter\": {\"nope\": 1}}, \"e\"]"
        "]}",
        st);
    o = call(f, b.data);
    json_t *c = resp(o, 0, "Email/changes");
    assert_int_equal(json_array_size(json_object_get(c, "created")), 2);
    json_t *q = resp(o, 1, "Email/query");
    assert_int_equal(json_integer_value(json_object_get(q, "total")), 1);
    json_t *g = resp(o, 2, "Email/get");
    assert_string_equal(str(g, "list/0/subject"), "H\xc3\xa9llo there");
    assert_string_equal(str(g, "list/0/header:Subject:asText"), "H\xc3\xa9llo there");
    assert_string_equal(str(g, "list/0/from/0/name"), "Bob Builder");
    assert_string_equal(str(g, "list/0/from/0/email"), "bob@example.test");
    assert_string_equal(str(g, "list/0/sentAt"), "2026-11-27T10:00:00+01:00");
    assert_string_equal(str(g, "list/0/messageId/0"), "one@example.test");
    assert_string_equal(str(g, "list/0/preview"), "Hello Alice, the crane arrives on Monday.");
    const char *pid = str(g, "list/0/textBody/0/partId");
    json_t *bv = json_object_get(
        json_object_get(json_array_get(json_object_get(g, "list"), 0), "bodyValues"), pid);
    assert_string_equal(str(bv, "value"), "Hello Alice, the crane arrives on Monday.\r\n");
    json_t *a = resp(o, 4, "Email/get");
    assert_true(json_is_true(
        json_object_get(json_array_get(json_object_get(a, "list"), 0), "hasAttachment")));
    assert_string_equal(str(a, "list/0/attachments/0/name"), "plan.pdf");
    assert_string_equal(str(a, "list/0/attachments/0/type"), "application/pdf");
    /* the part's blob is its decoded bytes */
    struct buf data = BUF_INIT;
    assert_int_equal(
        jmap_download(&f->j, ALICE, account(), str(a, "list/0/attachments/0/blobId"), &data), 200);
    assert_int_equal(data.len, 9);
    assert_memory_equal(data.data, "PDF bytes", 9);
    /* bob cannot read alice's blob */
    struct buf bob = BUF_INIT;
    jmap_account_id(BOB, &bob);
    assert_int_equal(
        jmap_download(&f->j, BOB, bob.data, str(a, "list/0/attachments/0/blobId"), &data), 404);
    buf_free(&bob);
    assert_int_equal(json_array_size(json_object_get(resp(o, 5, "Email/query"), "ids")), 1);
    assert_string_equal(str(resp(o, 6, "error"), "type"), "unsupportedFilter");
    char *plain_id = xstrdup(str(resp(o, 1, "Email/query"), "ids/0"));
    char *st2 = xstrdup(str(c, "newState"));
    json_decref(o);

    /* flag it seen and move it to Archive; changes says updated; then destroy it */
    json_t *mbq = call(f, "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
                          "[\"Mailbox/query\", {\"accountId\": \"ACCOUNT\", \"filter\": "
                          "{\"role\": \"archive\"}}, \"q\"]]}");
    char *archive = xstrdup(str(resp(mbq, 0, "Mailbox/query"), "ids/0"));
    json_decref(mbq);
    buf_reset(&b);
    buf_printf(&b,
               "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
               "[\"Email/set\", {\"accountId\": \"ACCOUNT\", \"update\": {\"%s\": "
               "{\"keywords/$seen\": true, \"mailboxIds\": {\"%s\": true}}, "
               "\"e0000000000000000000000000000000000000000000000000000000000000000\": "
               "{\"keywords\": {}}}}, \"s\"],"
               "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"ids\": [\"%s\"], \"properties\": "
               "[\"keywords\", \"mailboxIds\"]}, \"g\"],"
               "[\"Email/changes\", {\"accountId\": \"ACCOUNT\", \"sinceState\": \"%s\"}, \"c\"],"
               "[\"Email/query\", {\"accountId\": \"ACCOUNT\", \"filter\": {\"hasKeyword\": "
               "\"$seen\"}}, \"k\"]]}",
               plain_id, archive, plain_id, st2);
    f->n_changed = 0;
    o = call(f, b.data);
    json_t *s = resp(o, 0, "Email/set");
    assert_non_null(json_object_get(json_object_get(s, "updated"), plain_id));
    /* flags in INBOX, the copy to Archive, the expunge in INBOX: each told */
    assert_int_equal(f->n_changed, 3);
    assert_string_equal(f->last_mailbox, "INBOX");
    assert_string_equal(
        str(s, "notUpdated/e0000000000000000000000000000000000000000000000000000000000000000/type"),
        "notFound");
    g = resp(o, 1, "Email/get");
    json_t *e0 = json_array_get(json_object_get(g, "list"), 0);
    assert_true(json_is_true(json_object_get(json_object_get(e0, "keywords"), "$seen")));
    assert_int_equal(json_object_size(json_object_get(e0, "mailboxIds")), 1);
    assert_non_null(json_object_get(json_object_get(e0, "mailboxIds"), archive));
    c = resp(o, 2, "Email/changes");
    assert_string_equal(str(c, "updated/0"), plain_id);
    assert_int_equal(json_array_size(json_object_get(c, "created")), 0);
    assert_string_equal(str(resp(o, 3, "Email/query"), "ids/0"), plain_id);
    char *st3 = xstrdup(str(c, "newState"));
    json_decref(o);
    buf_reset(&b);
    buf_printf(&b,
               "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
               "[\"Email/set\", {\"accountId\": \"ACCOUNT\", \"destroy\": [\"%s\"]}, \"d\"],"
               "[\"Email/changes\", {\"accountId\": \"ACCOUNT\", \"sinceState\": \"%s\"}, \"c\"],"
               "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"ids\": [\"%s\"]}, \"g\"]]}",
               plain_id, st3, plain_id);
    o = call(f, b.data);
    assert_string_equal(str(resp(o, 0, "Email/set"), "destroyed/0"), plain_id);
    assert_string_equal(str(resp(o, 1, "Email/changes"), "destroyed/0"), plain_id);
    assert_string_equal(str(resp(o, 2, "Email/get"), "notFound/0"), plain_id);
    json_decref(o);
    buf_free(&b);
    buf_free(&data);
    free(st);
    free(st2);
    free(st3);
    free(plain_id);
    free(archive);
}

/* The queries and threads of the account, as JSON text (the same request each time). */
static char *view_answers(struct fixture *f, const char *inbox, const char *other)
{
    struct buf b = BUF_INIT;
    buf_printf(
        &b,
        "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
        "[\"Email/query\", {\"accountId\": \"ACCOUNT\", \"filter\": {\"inMailbox\": \"%s\"},"
        " \"collapseThreads\": true, \"calculateTotal\": true}, \"q1\"],"
        "[\"Email/query\", {\"accountId\": \"ACCOUNT\", \"limit\": 10}, \"q2\"],"
        "[\"Email/query\", {\"accountId\": \"ACCOUNT\", \"filter\": {\"inMailbox\": \"%s\"},"
        " \"sort\": [{\"property\": \"receivedAt\", \"isAscending\": true}]}, \"q3\"],"
        "[\"Email/query\", {\"accountId\": \"ACCOUNT\", \"sort\": [{\"property\": \"size\"}],"
        " \"collapseThreads\": true}, \"q4\"],"
        "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"#ids\": {\"resultOf\": \"q2\", "
        "\"name\": \"Email/query\", \"path\": \"/ids\"}, \"properties\": [\"threadId\", "
        "\"mailboxIds\", \"keywords\"]}, \"g\"],"
        "[\"Thread/get\", {\"accountId\": \"ACCOUNT\", \"#ids\": {\"resultOf\": \"g\", "
        "\"name\": \"Email/get\", \"path\": \"/list/*/threadId\"}}, \"t\"]]}",
        inbox, other);
    json_t *o = call(f, buf_cstr(&b));
    buf_free(&b);
    char *d = json_dumps(o, JSON_SORT_KEYS);
    json_decref(o);
    return d;
}

/* The view brought forward (jmap_view.c) answers as one read afresh at the same state. */
static void view_same_as_fresh(struct fixture *f, const char *inbox, const char *other)
{
    char *patched = view_answers(f, inbox, other);
    jmap_release(&f->j); /* the view and the kept queries dropped: read afresh */
    char *fresh = view_answers(f, inbox, other);
    assert_string_equal(patched, fresh);
    free(patched);
    free(fresh);
}

static void deliver_n(struct fixture *f, const char *mailbox, int n, int reply_to)
{
    struct buf m = BUF_INIT;
    buf_printf(&m,
               "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
               "Subject: %stopic %d\r\nMessage-ID: <m%d@example.test>\r\n",
               reply_to >= 0 ? "Re: " : "", reply_to >= 0 ? reply_to : n, n);
    if (reply_to >= 0)
        buf_printf(&m, "In-Reply-To: <m%d@example.test>\r\n", reply_to);
    buf_printf(&m, "\r\nMessage %d.\r\n", n);
    for (int i = 0; i < n % 7; i++)
        buf_append_cstr(&m, "A line to vary the size.\r\n");
    deliver(f, ALICE, mailbox, buf_cstr(&m));
    buf_free(&m);
}

/* A folder "Other" made; the ids of the Inbox and of it (the caller frees both). */
static void inbox_and_other(struct fixture *f, char **inbox_r, char **other_r)
{
    json_t *o = call(f, "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
                        "[\"Mailbox/set\", {\"accountId\": \"ACCOUNT\", \"create\": {"
                        "\"o\": {\"name\": \"Other\"}}}, \"s\"],"
                        "[\"Mailbox/query\", {\"accountId\": \"ACCOUNT\", \"filter\": "
                        "{\"role\": \"inbox\"}}, \"q\"]]}");
    *other_r = xstrdup(str(resp(o, 0, "Mailbox/set"), "created/o/id"));
    *inbox_r = xstrdup(str(resp(o, 1, "Mailbox/query"), "ids/0"));
    json_decref(o);
}

/*
 * Deliveries (new threads and replies), a move, a destroy and a flag change,
 * each answered by the view brought forward and then by a view read afresh:
 * the same queries (by date, collapsed, by mailbox, by size), Emails and threads.
 */
static void test_view_brought_forward(void **state)
{
    struct fixture *f = *state;
    char *inbox, *other;
    inbox_and_other(f, &inbox, &other);
    json_t *o;
    for (int i = 0; i < 12; i++)
        deliver_n(f, i % 5 == 4 ? "Other" : NULL, i, i % 3 == 2 ? i - 1 : -1);
    view_same_as_fresh(f, inbox, other);
    /* new mail: a reply to an old thread, a new thread, one in the other folder */
    deliver_n(f, NULL, 12, 0);
    deliver_n(f, NULL, 13, -1);
    deliver_n(f, "Other", 14, 13);
    view_same_as_fresh(f, inbox, other);
    /* a move, a destroy, a flag */
    o = call(f, "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
                "[\"Email/query\", {\"accountId\": \"ACCOUNT\"}, \"q\"]]}");
    json_t *ids = json_object_get(resp(o, 0, "Email/query"), "ids");
    struct buf b = BUF_INIT;
    buf_printf(&b,
               "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
               "[\"Email/set\", {\"accountId\": \"ACCOUNT\", \"update\": {\"%s\": "
               "{\"mailboxIds\": {\"%s\": true}}}}, \"s\"]]}",
               json_string_value(json_array_get(ids, 3)), other);
    json_decref(call(f, buf_cstr(&b)));
    view_same_as_fresh(f, inbox, other);
    buf_reset(&b);
    buf_printf(&b,
               "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
               "[\"Email/set\", {\"accountId\": \"ACCOUNT\", \"destroy\": [\"%s\"]}, \"s\"]]}",
               json_string_value(json_array_get(ids, 7)));
    json_decref(call(f, buf_cstr(&b)));
    view_same_as_fresh(f, inbox, other);
    buf_reset(&b);
    buf_printf(&b,
               "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
               "[\"Email/set\", {\"accountId\": \"ACCOUNT\", \"update\": {\"%s\": "
               "{\"keywords/$flagged\": true}}}, \"s\"]]}",
               json_string_value(json_array_get(ids, 1)));
    json_decref(call(f, buf_cstr(&b)));
    view_same_as_fresh(f, inbox, other);
    buf_free(&b);
    json_decref(o);
    free(inbox);
    free(other);
}

/*
 * Deliveries append their copies to the view's array while it has room
 * (jmap_view_copies_room) and move it only when it is full, a moved Email
 * leaving an empty slot; a list asked for before and after a delivery is
 * brought forward (qcache_grow), not run again; and the view answers as one
 * read afresh, before and after the move.
 */
static void test_view_grows_in_place(void **state)
{
    struct fixture *f = *state;
    char *inbox, *other;
    inbox_and_other(f, &inbox, &other);
    json_t *o;
    for (int i = 0; i < 10; i++)
        deliver_n(f, NULL, i, -1);
    free(view_answers(f, inbox, other));
    struct jmap_stats s0 = f->j.stats;
    size_t room = jmap_view_copies_room(10) - 10;
    for (size_t i = 0; i + 1 < room; i++) {
        int n = 10 + (int)i;
        deliver_n(f, i % 9 == 8 ? "Other" : NULL, n, i % 4 == 3 ? n - 5 : -1);
        if (i == room / 2) { /* a move: its copy leaves its slot and takes a new one */
            o = call(f, "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
                        "[\"Email/query\", {\"accountId\": \"ACCOUNT\", \"position\": 3, "
                        "\"limit\": 1}, \"q\"]]}");
            struct buf b = BUF_INIT;
            buf_printf(&b,
                       "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
                       "[\"Email/set\", {\"accountId\": \"ACCOUNT\", \"update\": {\"%s\": "
                       "{\"mailboxIds\": {\"%s\": true}}}}, \"s\"]]}",
                       str(resp(o, 0, "Email/query"), "ids/0"), other);
            json_decref(call(f, buf_cstr(&b)));
            buf_free(&b);
            json_decref(o);
        }
        free(view_answers(f, inbox, other));
    }
    /* every change brought forward, none read afresh, the array never moved */
    assert_int_equal(f->j.stats.view_reads, s0.view_reads);
    assert_int_equal(f->j.stats.view_patches, s0.view_patches + room);
    assert_int_equal(f->j.stats.view_moves, 0);
    assert_true(f->j.stats.query_grown >= s0.query_grown + room - 1);
    /* the array is full: the next delivery moves it */
    deliver_n(f, NULL, 9999, 3);
    free(view_answers(f, inbox, other));
    assert_int_equal(f->j.stats.view_moves, 1);
    deliver_n(f, "Other", 10000, 9999);
    view_same_as_fresh(f, inbox, other);
    assert_int_equal(f->j.stats.view_moves, 1);
    free(inbox);
    free(other);
}

/* A push stream of every account is open (jmap_release_idle's listening): the user asked of
 * is kept in *ctx. */
static bool listening_as(void *ctx, const char *user)
{
    *(const char **)ctx = user;
    return true;
}

/*
 * What a worker keeps is freed once no request used it for the idle time
 * (jmap_release_idle, the http worker's jmap_cache_idle timer), not before,
 * and the view and results read again answer exactly as the ones dropped.
 */
static void test_view_idle_release(void **state)
{
    struct fixture *f = *state;
    char *inbox, *other;
    inbox_and_other(f, &inbox, &other);
    for (int i = 0; i < 12; i++)
        deliver_n(f, i % 5 == 4 ? "Other" : NULL, i, i % 3 == 2 ? i - 1 : -1);
    size_t views, queries;
    jmap_kept(&f->j, &views, &queries);
    assert_int_equal(views + queries, 0);
    assert_int_equal(jmap_release_idle(&f->j, monotonic_ms(), 60000, NULL, NULL), -1);
    char *kept = view_answers(f, inbox, other);
    jmap_kept(&f->j, &views, &queries);
    assert_int_equal(views, 1);
    assert_int_equal(queries, 4);
    /* used just now: kept, and due in (about) the idle time */
    int64_t due = jmap_release_idle(&f->j, monotonic_ms(), 60000, NULL, NULL);
    assert_true(due > 50000 && due <= 60000);
    jmap_kept(&f->j, &views, &queries);
    assert_int_equal(views + queries, 5);
    /* a minute on with a push stream of the account open: the view stays, due again in
     * the idle time; the query results go */
    const char *asked = NULL;
    due = jmap_release_idle(&f->j, monotonic_ms() + 60000, 60000, listening_as, &asked);
    assert_true(due > 50000 && due <= 60000);
    assert_non_null(asked);
    assert_string_equal(asked, ALICE);
    jmap_kept(&f->j, &views, &queries);
    assert_int_equal(views, 1);
    assert_int_equal(queries, 0);
    /* a minute on: all of it goes, and the store's page cache with it */
    assert_int_equal(jmap_release_idle(&f->j, monotonic_ms() + 180000, 60000, NULL, NULL), -1);
    jmap_kept(&f->j, &views, &queries);
    assert_int_equal(views + queries, 0);
    store_release_memory(f->s);
    char *again = view_answers(f, inbox, other);
    assert_string_equal(kept, again);
    /* and brought forward from the view read again, as from the first */
    deliver_n(f, NULL, 12, 0);
    deliver_n(f, "Other", 13, -1);
    view_same_as_fresh(f, inbox, other);
    free(kept);
    free(again);
    free(inbox);
    free(other);
}

static void test_create_import_submit(void **state)
{
    struct fixture *f = *state;
    /* an upload, then an Email made of a text body and the upload as attachment */
    json_t *up;
    int status;
    jmap_upload(&f->j, ALICE, account(), "image/png", slice_from_cstr("\x89PNG fake"), &up,
                &status);
    assert_int_equal(status, 201);
    char *blob = xstrdup(str(up, "blobId"));
    json_decref(up);
    f->j.limits.max_size_upload = 4;
    jmap_upload(&f->j, ALICE, account(), "image/png", slice_from_cstr("12345"), &up, &status);
    assert_int_equal(status, 413);
    json_decref(up);
    /* a message over the size limit is tooLarge, not stored */
    json_t *tl = call(f, "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
                         "[\"Email/set\", {\"accountId\": \"ACCOUNT\", \"create\": {\"big\": {"
                         "\"mailboxIds\": {\"m1\": true}, \"subject\": \"too long\"}}}, \"s\"]]}");
    assert_string_equal(str(resp(tl, 0, "Email/set"), "notCreated/big/type"), "tooLarge");
    json_decref(tl);
    f->j.limits.max_size_upload = 50u << 20;
    json_t *mbq = call(f, "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["
                          "[\"Mailbox/query\", {\"accountId\": \"ACCOUNT\", \"filter\": "
                          "{\"role\": \"drafts\"}}, \"q\"]]}");
    char *drafts = xstrdup(str(resp(mbq, 0, "Mailbox/query"), "ids/0"));
    json_decref(mbq);
    struct buf b = BUF_INIT;
    buf_printf(&b,
               "{\"using\":[\"urn:ietf:params:jmap:mail\", \"urn:ietf:params:jmap:submission\"],"
               " \"methodCalls\":["
               "[\"Email/set\", {\"accountId\": \"ACCOUNT\", \"create\": {\"k1\": {"
               "\"mailboxIds\": {\"%s\": true}, \"keywords\": {\"$draft\": true},"
               "\"from\": [{\"name\": \"Alice \xc3\x85kerman\", \"email\": \"" ALICE "\"}],"
               "\"to\": [{\"email\": \"" BOB "\"}], \"bcc\": [{\"email\": \"carol@example.test\"}],"
               "\"subject\": \"Caf\xc3\xa9 at noon\","
               "\"textBody\": [{\"partId\": \"1\", \"type\": \"text/plain\"}],"
               "\"bodyValues\": {\"1\": {\"value\": \"See you there\\nA.\"}},"
               "\"attachments\": [{\"blobId\": \"%s\", \"type\": \"image/png\", \"name\": "
               "\"map.png\"}]},"
               "\"k2\": {\"mailboxIds\": {}}}}, \"s\"],"
               "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"ids\": [\"#k1\"], \"properties\": "
               "[\"subject\", \"from\", \"attachments\", \"textBody\", \"bodyValues\", "
               "\"keywords\"], \"fetchAllBodyValues\": true}, \"g\"],"
               "[\"Identity/get\", {\"accountId\": \"ACCOUNT\"}, \"i\"],"
               "[\"EmailSubmission/set\", {\"accountId\": \"ACCOUNT\", \"create\": {\"sub\": {"
               "\"identityId\": \"i0\", \"emailId\": \"#k1\"}}, \"onSuccessUpdateEmail\": "
               "{\"#sub\": {\"keywords/$draft\": null}}}, \"u\"],"
               "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"ids\": [\"#k1\"], \"properties\": "
               "[\"keywords\"]}, \"g2\"]]}",
               drafts, blob);
    json_t *o = call(f, b.data);
    json_t *s = resp(o, 0, "Email/set");
    assert_non_null(str(s, "created/k1/id"));
    assert_string_equal(str(s, "notCreated/k2/type"), "invalidProperties");
    json_t *g = resp(o, 1, "Email/get");
    assert_string_equal(str(g, "list/0/subject"), "Caf\xc3\xa9 at noon");
    assert_string_equal(str(g, "list/0/from/0/name"), "Alice \xc3\x85kerman");
    assert_string_equal(str(g, "list/0/attachments/0/name"), "map.png");
    const char *pid = str(g, "list/0/textBody/0/partId");
    json_t *bv = json_object_get(
        json_object_get(json_array_get(json_object_get(g, "list"), 0), "bodyValues"), pid);
    /* the line break before a boundary belongs to the boundary (RFC 2046 5.1.1) */
    assert_string_equal(str(bv, "value"), "See you there\r\nA.");
    assert_string_equal(str(resp(o, 2, "Identity/get"), "list/0/email"), ALICE);
    json_t *u = resp(o, 3, "EmailSubmission/set");
    assert_string_equal(str(u, "created/sub/id"), "sQ1");
    /* the implicit Email/set of onSuccessUpdateEmail, then the draft keyword gone */
    resp(o, 4, "Email/set");
    json_t *g2 = resp(o, 5, "Email/get");
    assert_int_equal(json_object_size(json_object_get(
                         json_array_get(json_object_get(g2, "list"), 0), "keywords")),
                     0);
    /* the queue got it from alice to bob and carol, without the Bcc field */
    assert_string_equal(f->from, ALICE);
    assert_int_equal(f->n_rcpts, 2);
    assert_null(strstr(f->data.data, "carol@"));
    assert_non_null(strstr(f->data.data, "Subject: =?UTF-8?B?"));
    /* the attachment's bytes came through the composed message */
    struct buf data = BUF_INIT;
    assert_int_equal(
        jmap_download(&f->j, ALICE, account(), str(g, "list/0/attachments/0/blobId"), &data), 200);
    assert_memory_equal(data.data, "\x89PNG fake", 9);
    json_decref(o);

    /* a sender the rule refuses; then Email/import of the upload-free raw message */
    jmap_upload(&f->j, ALICE, account(), "message/rfc822", slice_from_cstr(msg_plain), &up,
                &status);
    assert_int_equal(status, 201);
    buf_reset(&b);
    buf_printf(&b,
               "{\"using\":[\"urn:ietf:params:jmap:mail\", \"urn:ietf:params:jmap:submission\"],"
               " \"methodCalls\":["
               "[\"Email/import\", {\"accountId\": \"ACCOUNT\", \"emails\": {\"m\": {\"blobId\": "
               "\"%s\", \"mailboxIds\": {\"%s\": true}, \"receivedAt\": \"2026-01-02T03:04:05Z\"},"
               " \"x\": {\"blobId\": \"b00\", \"mailboxIds\": {\"%s\": true}}}}, \"i\"],"
               "[\"Email/get\", {\"accountId\": \"ACCOUNT\", \"ids\": [\"#m\"], \"properties\": "
               "[\"receivedAt\", \"subject\"]}, \"g\"],"
               "[\"EmailSubmission/set\", {\"accountId\": \"ACCOUNT\", \"create\": {\"s\": {"
               "\"identityId\": \"i0\", \"emailId\": \"#m\"}}}, \"u\"],"
               "[\"Email/parse\", {\"accountId\": \"ACCOUNT\", \"blobIds\": [\"%s\"], "
               "\"properties\": [\"subject\"]}, \"p\"]]}",
               str(up, "blobId"), drafts, drafts, str(up, "blobId"));
    o = call(f, b.data);
    json_t *im = resp(o, 0, "Email/import");
    assert_non_null(str(im, "created/m/id"));
    assert_string_equal(str(im, "notCreated/x/type"), "blobNotFound");
    assert_string_equal(str(resp(o, 1, "Email/get"), "list/0/receivedAt"), "2026-01-02T03:04:05Z");
    /* from bob: alice may not send as bob */
    assert_string_equal(str(resp(o, 2, "EmailSubmission/set"), "notCreated/s/type"),
                        "forbiddenFrom");
    json_t *p =
        json_object_get(json_object_get(resp(o, 3, "Email/parse"), "parsed"), str(up, "blobId"));
    assert_string_equal(str(p, "subject"), "H\xc3\xa9llo there");
    json_decref(o);
    json_decref(up);
    buf_free(&b);
    buf_free(&data);
    free(blob);
    free(drafts);
}

struct sink {
    struct buf got;
    int ended;
};

static void sink_write(void *ctx, const char *data, size_t len)
{
    buf_append(&((struct sink *)ctx)->got, data, len);
}

static void sink_end(void *ctx)
{
    ((struct sink *)ctx)->ended++;
}

static const struct jmap_push_io sink_io = {sink_write, sink_end, false};

/* How many accounts the worker would be subscribed to. */
static void watch(void *ctx, const char *owner, bool on)
{
    *(int *)ctx += on ? 1 : -1;
}

static void test_push(void **state)
{
    struct fixture *f = *state;
    struct event_base *base = event_base_new();
    int watching = 0;
    struct jmap_push *p = jmap_push_new(base, &f->j, 0, watch, &watching);
    struct sink a = {BUF_INIT, 0}, b = {BUF_INIT, 0}, bob = {BUF_INIT, 0};
    struct buf err = BUF_INIT;
    assert_null(jmap_push_open(p, ALICE, "*", "sometimes", "0", NULL, &sink_io, &a, &err));
    assert_null(jmap_push_open(p, ALICE, "*", "no", "x", NULL, &sink_io, &a, &err));
    struct jmap_push_stream *sa =
        jmap_push_open(p, ALICE, "Email", "no", "0", NULL, &sink_io, &a, &err);
    assert_non_null(sa);
    /* the current state at once: the stream listens from here */
    assert_non_null(strstr(a.got.data, "event: state\nid: "));
    assert_non_null(jmap_push_open(p, ALICE, "Mailbox", "state", "0", NULL, &sink_io, &b, &err));
    assert_int_equal(b.got.len, 0);
    assert_non_null(jmap_push_open(p, BOB, "*", "no", "0", NULL, &sink_io, &bob, &err));
    size_t bob_len = bob.got.len;
    assert_int_equal(jmap_push_streams(p), 3);
    assert_int_equal(watching, 2);
    /* a delivery as the mta makes it, then two events: one state event each stream */
    deliver(f, ALICE, NULL, msg_plain);
    uint64_t st;
    assert_int_equal(store_account_state(f->s, ALICE, &st, &err), 0);
    struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                           .u.mailbox_changed = {ALICE, "INBOX", st}};
    buf_reset(&a.got);
    jmap_push_event(p, &ev);
    jmap_push_event(p, &ev);
    event_base_loop(base, EVLOOP_ONCE);
    char want[64];
    snprintf(want, sizeof(want), "id: %llu\n", (unsigned long long)st);
    assert_non_null(strstr(a.got.data, want));
    assert_non_null(strstr(a.got.data, "\"Email\":"));
    assert_null(strstr(a.got.data, "\"Mailbox\":"));
    assert_null(strstr(strstr(a.got.data, want) + 1, "event: state")); /* coalesced: one */
    /* closeafter=state: told and ended; bob heard nothing */
    assert_non_null(strstr(b.got.data, "\"Mailbox\":"));
    assert_int_equal(b.ended, 1);
    assert_int_equal(bob.got.len, bob_len);
    assert_int_equal(jmap_push_streams(p), 2);
    /* Last-Event-ID behind the state: the missed change at once */
    struct sink c = {BUF_INIT, 0};
    assert_null(jmap_push_open(p, ALICE, "*", "state", "0", "1", &sink_io, &c, &err));
    assert_int_equal(c.ended, 1);
    assert_non_null(strstr(c.got.data, want));
    jmap_push_close(sa);
    assert_int_equal(watching, 1); /* bob's stream is still open */
    /* a 60 s window: the first change after a quiet spell at once, the next one waits */
    struct jmap_push *slow = jmap_push_new(base, &f->j, 60000, NULL, NULL);
    struct sink d = {BUF_INIT, 0};
    assert_non_null(jmap_push_open(slow, ALICE, "*", "no", "0", NULL, &sink_io, &d, &err));
    for (int i = 0; i < 2; i++) {
        deliver(f, ALICE, NULL, msg_plain);
        assert_int_equal(store_account_state(f->s, ALICE, &st, &err), 0);
        ev.u.mailbox_changed.account_state = st;
        buf_reset(&d.got);
        jmap_push_event(slow, &ev);
        event_base_loop(base, EVLOOP_NONBLOCK);
        snprintf(want, sizeof(want), "id: %llu\n", (unsigned long long)st);
        if (i == 0)
            assert_non_null(strstr(buf_cstr(&d.got), want));
        else
            assert_int_equal(d.got.len, 0);
    }
    jmap_push_free(slow);
    buf_free(&d.got);
    jmap_push_free(p);
    event_base_free(base);
    buf_free(&a.got);
    buf_free(&b.got);
    buf_free(&c.got);
    buf_free(&bob.got);
    buf_free(&err);
}

/* Runs body as user; returns the response (status 200). */
static json_t *call_as(struct fixture *f, const char *user, const char *body)
{
    json_t *out = NULL;
    int status = 0;
    jmap_api(&f->j, user, body, strlen(body), &out, &status);
    assert_int_equal(status, 200);
    return out;
}

static size_t ids_of(json_t *o, size_t i, const char *name)
{
    return json_array_size(json_object_get(resp(o, i, name), "ids"));
}

/* alice shares Team with bob ("lr"): a second account in bob's session, only
 * Team in it, its Email readable and not writable; the worker's caches keep
 * bob's view of alice's account apart from alice's own. */
static void test_shared_account(void **state)
{
    struct fixture *f = *state;
    struct buf err = BUF_INIT, b = BUF_INIT, bob = BUF_INIT;
    assert_int_equal(store_mailbox_create(f->s, ALICE, "Team", NULL, &err), 0);
    deliver(f, ALICE, "Team", "Subject: team\r\n\r\nshared\r\n");
    deliver(f, ALICE, "INBOX", "Subject: mine\r\n\r\nnot shared\r\n");
    jmap_account_id(BOB, &bob);
    json_t *s;
    assert_int_equal(jmap_session_json(&f->j, BOB, "https://mx", &s), 0);
    assert_null(json_object_get(json_object_get(s, "accounts"), account()));
    char *state0 = xstrdup(str(s, "state"));
    json_decref(s);
#define QUERY                                                                                      \
    "{\"using\":[\"urn:ietf:params:jmap:mail\"], \"methodCalls\":["                                \
    "[\"Email/query\", {\"accountId\": \"%s\"}, \"q\"],"                                           \
    "[\"Mailbox/get\", {\"accountId\": \"%s\"}, \"m\"]]}"
    buf_printf(&b, QUERY, account(), account());
    json_t *o = call_as(f, BOB, b.data);
    assert_string_equal(str(resp(o, 0, "error"), "type"), "accountNotFound");
    json_decref(o);

    assert_int_equal(store_acl_set(f->s, ALICE, "Team", BOB, "lr", &err), 0);
    assert_int_equal(jmap_session_json(&f->j, BOB, "https://mx", &s), 0);
    json_t *acc = json_object_get(json_object_get(s, "accounts"), account());
    assert_non_null(acc);
    assert_true(json_is_false(json_object_get(acc, "isPersonal")));
    assert_true(json_is_true(json_object_get(acc, "isReadOnly")));
    assert_string_equal(str(s, "primaryAccounts/urn:ietf:params:jmap:mail"), bob.data);
    assert_string_not_equal(str(s, "state"), state0);
    json_decref(s);
    free(state0);

    /* alice first (her whole account in the worker's view), then bob: only Team */
    buf_reset(&b);
    buf_printf(&b, QUERY, account(), account());
    o = call_as(f, ALICE, b.data);
    assert_int_equal(ids_of(o, 0, "Email/query"), 2);
    json_decref(o);
    o = call_as(f, BOB, b.data);
    assert_int_equal(ids_of(o, 0, "Email/query"), 1);
    json_t *list = json_object_get(resp(o, 1, "Mailbox/get"), "list");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(str(resp(o, 1, "Mailbox/get"), "list/0/name"), "Team");
    json_t *rights = json_object_get(json_array_get(list, 0), "myRights");
    assert_true(json_is_true(json_object_get(rights, "mayReadItems")));
    assert_true(json_is_false(json_object_get(rights, "maySetSeen")));
    char *id = xstrdup(str(resp(o, 0, "Email/query"), "ids/0"));
    json_decref(o);
    o = call_as(f, ALICE, b.data); /* and alice's own again: not bob's view */
    assert_int_equal(ids_of(o, 0, "Email/query"), 2);
    json_decref(o);

    /* no "s": $seen refused; Identity is the user's own account's only */
    buf_reset(&b);
    buf_printf(&b,
               "{\"using\":[\"urn:ietf:params:jmap:mail\", \"urn:ietf:params:jmap:submission\"],"
               " \"methodCalls\":[[\"Email/set\", {\"accountId\": \"%s\", \"update\": {\"%s\": "
               "{\"keywords/$seen\": true}}}, \"s\"],"
               "[\"Identity/get\", {\"accountId\": \"%s\"}, \"i\"]]}",
               account(), id, account());
    o = call_as(f, BOB, b.data);
    json_t *nu = json_object_get(json_object_get(resp(o, 0, "Email/set"), "notUpdated"), id);
    assert_string_equal(str(nu, "type"), "forbidden");
    assert_string_equal(str(resp(o, 1, "error"), "type"), "accountNotSupportedByMethod");
    json_decref(o);

    /* taken back: not found again */
    assert_int_equal(store_acl_set(f->s, ALICE, "Team", BOB, "", &err), 0);
    buf_reset(&b);
    buf_printf(&b, QUERY, account(), account());
    o = call_as(f, BOB, b.data);
    assert_string_equal(str(resp(o, 0, "error"), "type"), "accountNotFound");
    json_decref(o);
    free(id);
    buf_free(&b);
    buf_free(&bob);
    buf_free(&err);
#undef QUERY
}

/* How many times needle occurs in the sink's bytes. */
static int count_in(struct sink *k, const char *needle)
{
    int n = 0;
    for (const char *p = buf_cstr(&k->got); (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void loop_exit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopexit(arg, NULL);
}

/* Pings: each stream pinged once its interval passed with nothing sent, at
 * the interval it was given (clamped up to JMAP_PUSH_PING_MIN), streams of
 * one interval on one timer; a stream that was sent a state event later is
 * pinged later; closing streams out of their queue's order. */
static void test_push_ping(void **state)
{
    struct fixture *f = *state;
    struct event_base *base = event_base_new();
    struct jmap_push *p = jmap_push_new(base, &f->j, 0, NULL, NULL);
    struct sink a = {BUF_INIT, 0}, b = {BUF_INIT, 0}, c = {BUF_INIT, 0}, d = {BUF_INIT, 0},
                e = {BUF_INIT, 0};
    struct buf err = BUF_INIT;
    assert_non_null(jmap_push_open(p, ALICE, "*", "no", "1", NULL, &sink_io, &a, &err));
    struct jmap_push_stream *sb =
        jmap_push_open(p, ALICE, "*", "no", "5", NULL, &sink_io, &b, &err);
    assert_non_null(jmap_push_open(p, BOB, "*", "no", "5", NULL, &sink_io, &c, &err));
    struct jmap_push_stream *sd = jmap_push_open(p, BOB, "*", "no", "0", NULL, &sink_io, &d, &err);
    struct jmap_push_stream *se = jmap_push_open(p, BOB, "*", "no", "6", NULL, &sink_io, &e, &err);
    jmap_push_close(sb); /* the front of the 5 s queue */
    /* 3 s in, a change of bob's: c is due 5 s after it, e 6 s after it */
    struct timeval tv = {3, 0};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    assert_int_equal(count_in(&a, "event: ping"), 0);
    deliver(f, BOB, NULL, msg_plain);
    uint64_t st;
    assert_int_equal(store_account_state(f->s, BOB, &st, &err), 0);
    struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                           .u.mailbox_changed = {BOB, "INBOX", st}};
    jmap_push_event(p, &ev);
    event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(count_in(&c, "event: state"), 2);
    /* 5.5 s in: a (5 s, the minimum) pinged once; c not yet (due at 8 s) */
    tv = (struct timeval){2, 500000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    assert_int_equal(count_in(&a, "event: ping\ndata: {\"interval\":5}\n\n"), 1);
    assert_int_equal(count_in(&c, "event: ping"), 0);
    /* 8.5 s in: c pinged once, e (due at 9 s) not, d (ping 0) never */
    struct event *stop = evtimer_new(base, loop_exit, base);
    tv = (struct timeval){3, 0};
    evtimer_add(stop, &tv);
    event_base_dispatch(base);
    assert_int_equal(count_in(&c, "event: ping\ndata: {\"interval\":5}\n\n"), 1);
    assert_int_equal(count_in(&e, "event: ping"), 0);
    assert_int_equal(count_in(&d, "event: ping"), 0);
    assert_int_equal(count_in(&b, "event: ping"), 0); /* closed */
    jmap_push_close(sd);
    jmap_push_close(se);
    assert_int_equal(jmap_push_streams(p), 2);
    event_free(stop);
    jmap_push_free(p);
    event_base_free(base);
    buf_free(&a.got);
    buf_free(&b.got);
    buf_free(&c.got);
    buf_free(&d.got);
    buf_free(&e.got);
    buf_free(&err);
}

/* alice shares Team with bob: bob's stream hears of Team's changes under
 * alice's account id (no event id: the id he resumes from stays his own),
 * never of her INBOX's, nor of Team's once the share is taken back; a
 * mailbox deleted is told to whom could see it. */
static void test_push_shared(void **state)
{
    struct fixture *f = *state;
    struct event_base *base = event_base_new();
    int watching = 0;
    struct jmap_push *p = jmap_push_new(base, &f->j, 0, watch, &watching);
    static const struct jmap_push_io ws_io = {sink_write, sink_end, true};
    struct sink bob = {BUF_INIT, 0}, ws = {BUF_INIT, 0};
    struct buf err = BUF_INIT, alice_id = BUF_INIT;
    jmap_account_id(ALICE, &alice_id);
    assert_int_equal(store_mailbox_create(f->s, ALICE, "Team", NULL, &err), 0);
    assert_int_equal(store_mailbox_create(f->s, ALICE, "Seen", NULL, &err), 0);
    assert_int_equal(store_acl_set(f->s, ALICE, "Team", BOB, "lr", &err), 0);
    assert_int_equal(store_acl_set(f->s, ALICE, "Seen", BOB, "l", &err), 0);
    assert_non_null(jmap_push_open(p, BOB, "*", "no", "0", NULL, &sink_io, &bob, &err));
    assert_non_null(jmap_push_open(p, BOB, "Email", "no", "0", NULL, &ws_io, &ws, &err));
    assert_int_equal(watching, 2); /* bob's account and alice's */
    uint64_t st;
    /* her INBOX, then Seen ("l" only: its messages are not bob's to know of): nothing */
    const char *quiet[] = {"INBOX", "Seen"};
    for (size_t i = 0; i < 2; i++) {
        buf_reset(&bob.got);
        deliver(f, ALICE, quiet[i], msg_plain);
        assert_int_equal(store_account_state(f->s, ALICE, &st, &err), 0);
        struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                               .u.mailbox_changed = {ALICE, quiet[i], st}};
        jmap_push_event(p, &ev);
        event_base_loop(base, EVLOOP_NONBLOCK);
        assert_int_equal(bob.got.len, 0);
    }
    /* Team: a state event under alice's account, without an id */
    deliver(f, ALICE, "Team", msg_plain);
    assert_int_equal(store_account_state(f->s, ALICE, &st, &err), 0);
    struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                           .u.mailbox_changed = {ALICE, "Team", st}};
    jmap_push_event(p, &ev);
    event_base_loop(base, EVLOOP_ONCE);
    assert_non_null(strstr(bob.got.data, alice_id.data));
    assert_non_null(strstr(bob.got.data, "\"Email\":"));
    assert_null(strstr(bob.got.data, "\nid: "));
    /* WebSocket: the StateChange without a pushState (bob resumes from his own) */
    assert_non_null(strstr(ws.got.data, alice_id.data));
    assert_null(strstr(strstr(ws.got.data, alice_id.data), "pushState"));
    /* a new mailbox of hers bob has no right on: nothing; Seen deleted: told (Mailbox) */
    buf_reset(&bob.got);
    assert_int_equal(store_mailbox_create(f->s, ALICE, "Other", NULL, &err), 0);
    struct ipc_event lev = {.type = IPC_EVENT_MAILBOX_LIST,
                            .u.mailbox_list = {ALICE, IPC_LIST_CREATED, "Other", NULL, 0}};
    jmap_push_event(p, &lev);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(bob.got.len, 0);
    assert_int_equal(store_mailbox_delete(f->s, ALICE, "Seen", &err), 0);
    lev.u.mailbox_list = (struct ipc_event_mailbox_list){ALICE, IPC_LIST_DELETED, "Seen", NULL, 0};
    jmap_push_event(p, &lev);
    event_base_loop(base, EVLOOP_ONCE);
    assert_non_null(strstr(bob.got.data, "\"Mailbox\":"));
    assert_null(strstr(bob.got.data, "\"Email\":"));
    /* taken back: Team's changes are no longer bob's to hear of */
    assert_int_equal(store_acl_set(f->s, ALICE, "Team", BOB, "", &err), 0);
    buf_reset(&bob.got);
    deliver(f, ALICE, "Team", msg_plain);
    assert_int_equal(store_account_state(f->s, ALICE, &st, &err), 0);
    ev.u.mailbox_changed.account_state = st;
    jmap_push_event(p, &ev);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(bob.got.len, 0);
    jmap_push_free(p);
    event_base_free(base);
    buf_free(&bob.got);
    buf_free(&ws.got);
    buf_free(&alice_id);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_problems, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_and_method_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailboxes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_brought_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_grows_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_idle_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_import_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_ping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_shared, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
