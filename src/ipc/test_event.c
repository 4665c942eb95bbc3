/*
 * test_event.c - unit tests for the typed bus events and the subscription
 * table (event.h): every type round-trips, the decoder refuses what it cannot
 * represent exactly, and subscriptions select by type and by owner.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ipc/event.h"
#include "ipc/frame.h"

static void roundtrip(const struct ipc_event *in, struct ipc_event *out)
{
    struct buf b = BUF_INIT;
    ipc_event_encode(&b, in);
    const char *why = NULL;
    assert_int_equal(ipc_event_decode(b.data, b.len, out, &why), 0);
    assert_int_equal(out->type, in->type);
    /* Every strict prefix is refused, and so is one trailing byte. */
    for (size_t n = 0; n < b.len; n++) {
        struct ipc_event bad;
        assert_int_equal(ipc_event_decode(b.data, n, &bad, &why), -1);
        assert_null(bad.owned_);
    }
    buf_append_byte(&b, 0);
    struct ipc_event bad;
    assert_int_equal(ipc_event_decode(b.data, b.len, &bad, &why), -1);
    assert_string_equal(why, "trailing bytes");
    buf_free(&b);
}

static void test_roundtrip(void **state)
{
    struct ipc_event out;
    struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                           .u.mailbox_changed = {"alice@example.test", "Work/Q1", 42}};
    roundtrip(&ev, &out);
    assert_string_equal(out.u.mailbox_changed.owner, "alice@example.test");
    assert_string_equal(out.u.mailbox_changed.mailbox, "Work/Q1");
    assert_int_equal(out.u.mailbox_changed.account_state, 42);
    assert_string_equal(ipc_event_owner(&out), "alice@example.test");
    ipc_event_clear(&out);

    ev = (struct ipc_event){.type = IPC_EVENT_MAILBOX_LIST,
                            .u.mailbox_list = {"bob", IPC_LIST_RENAMED, "New", "Old", 0}};
    roundtrip(&ev, &out);
    assert_int_equal(out.u.mailbox_list.change, IPC_LIST_RENAMED);
    assert_string_equal(out.u.mailbox_list.name, "New");
    assert_string_equal(out.u.mailbox_list.old_name, "Old");
    ipc_event_clear(&out);

    /* old_name only travels with a rename. */
    ev.u.mailbox_list.change = IPC_LIST_SUBSCRIBED;
    roundtrip(&ev, &out);
    assert_null(out.u.mailbox_list.old_name);
    ipc_event_clear(&out);

    ev = (struct ipc_event){.type = IPC_EVENT_SPOOL_NEW, .u.spool_new.queue_id = "4F2a9"};
    roundtrip(&ev, &out);
    assert_string_equal(out.u.spool_new.queue_id, "4F2a9");
    assert_null(ipc_event_owner(&out));
    ipc_event_clear(&out);

    ev = (struct ipc_event){.type = IPC_EVENT_QUEUE_CTL, .u.queue_ctl = {IPC_QUEUE_HOLD, NULL}};
    roundtrip(&ev, &out);
    assert_int_equal(out.u.queue_ctl.action, IPC_QUEUE_HOLD);
    assert_null(out.u.queue_ctl.queue_id);
    ipc_event_clear(&out);

    ev = (struct ipc_event){.type = IPC_EVENT_TEST_HOOK, .u.test_hook = {"imap", "exec"}};
    roundtrip(&ev, &out);
    assert_string_equal(out.u.test_hook.component, "imap");
    assert_string_equal(out.u.test_hook.action, "exec");
    ipc_event_clear(&out);

    ev = (struct ipc_event){.type = IPC_EVENT_EVICT_IDLE, .u.evict_idle = {"pop3", 7, "192.0.2.1"}};
    roundtrip(&ev, &out);
    assert_string_equal(out.u.evict_idle.service, "pop3");
    assert_int_equal(out.u.evict_idle.slot, 7);
    assert_string_equal(out.u.evict_idle.client, "192.0.2.1");
    assert_null(ipc_event_owner(&out));
    ipc_event_clear(&out);
}

static int decode_raw(struct buf *b)
{
    struct ipc_event ev;
    const char *why;
    int r = ipc_event_decode(b->data, b->len, &ev, &why);
    ipc_event_clear(&ev);
    buf_reset(b);
    return r;
}

static void test_strict(void **state)
{
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, 99); /* unknown type */
    assert_int_equal(decode_raw(&b), -1);
    ipc_put_u64(&b, IPC_EVENT_MAILBOX_CHANGED);
    ipc_put_str(&b, ""); /* no owner */
    ipc_put_str(&b, "INBOX");
    ipc_put_u64(&b, 0);
    assert_int_equal(decode_raw(&b), -1);
    ipc_put_u64(&b, IPC_EVENT_MAILBOX_CHANGED);
    ipc_put_bytes(&b, "al\0ce", 5); /* NUL inside */
    ipc_put_str(&b, "INBOX");
    ipc_put_u64(&b, 0);
    assert_int_equal(decode_raw(&b), -1);
    ipc_put_u64(&b, IPC_EVENT_MAILBOX_LIST);
    ipc_put_str(&b, "alice");
    ipc_put_u64(&b, 7); /* unknown change */
    ipc_put_str(&b, "X");
    ipc_put_str(&b, "");
    ipc_put_u64(&b, 0);
    assert_int_equal(decode_raw(&b), -1);
    ipc_put_u64(&b, IPC_EVENT_MAILBOX_LIST);
    ipc_put_str(&b, "alice");
    ipc_put_u64(&b, IPC_LIST_CREATED);
    ipc_put_str(&b, "X");
    ipc_put_str(&b, "Y"); /* an old name without a rename */
    ipc_put_u64(&b, 0);
    assert_int_equal(decode_raw(&b), -1);
    ipc_put_u64(&b, IPC_EVENT_MAILBOX_LIST);
    ipc_put_str(&b, "alice");
    ipc_put_u64(&b, IPC_LIST_RENAMED);
    ipc_put_str(&b, "X");
    ipc_put_str(&b, ""); /* a rename without the old name */
    ipc_put_u64(&b, 0);
    assert_int_equal(decode_raw(&b), -1);
    ipc_put_u64(&b, IPC_EVENT_SPOOL_NEW);
    ipc_put_str(&b, "../etc"); /* not a queue id */
    assert_int_equal(decode_raw(&b), -1);
    ipc_put_u64(&b, IPC_EVENT_QUEUE_CTL);
    ipc_put_u64(&b, IPC_QUEUE_DELETE + 1);
    ipc_put_str(&b, "");
    assert_int_equal(decode_raw(&b), -1);
    char big[IPC_EVENT_MAILBOX_MAX + 1];
    memset(big, 'm', sizeof(big));
    ipc_put_u64(&b, IPC_EVENT_MAILBOX_CHANGED);
    ipc_put_str(&b, "alice");
    ipc_put_bytes(&b, big, sizeof(big)); /* over the cap */
    ipc_put_u64(&b, 0);
    assert_int_equal(decode_raw(&b), -1);
    ipc_put_u64(&b, IPC_EVENT_MAILBOX_CHANGED);
    ipc_put_str(&b, "alice");
    ipc_put_bytes(&b, big, sizeof(big) - 1); /* at the cap */
    ipc_put_u64(&b, 0);
    assert_int_equal(decode_raw(&b), 0);
    buf_free(&b);
}

static void apply(struct ipc_subscriptions *subs, enum ipc_event_type t, enum ipc_subscribe_op op,
                  const char *owner, int want)
{
    struct buf b = BUF_INIT;
    ipc_subscribe_encode(&b, t, op, owner);
    const char *why;
    assert_int_equal(ipc_subscriptions_apply(subs, b.data, b.len, &why), want);
    buf_free(&b);
}

static void test_subscriptions(void **state)
{
    struct ipc_subscriptions subs = {0};
    struct ipc_event alice = {.type = IPC_EVENT_MAILBOX_CHANGED,
                              .u.mailbox_changed = {"alice", "INBOX", 0}};
    struct ipc_event bob = {.type = IPC_EVENT_MAILBOX_CHANGED,
                            .u.mailbox_changed = {"bob", "INBOX", 0}};
    struct ipc_event list = {.type = IPC_EVENT_MAILBOX_LIST,
                             .u.mailbox_list = {"alice", IPC_LIST_CREATED, "X", NULL, 0}};
    struct ipc_event spool = {.type = IPC_EVENT_SPOOL_NEW, .u.spool_new.queue_id = "Q1"};

    /* Nothing subscribed: nothing relayed. */
    assert_false(ipc_subscriptions_match(&subs, &alice));
    assert_false(ipc_subscriptions_match(&subs, &spool));

    /* By owner: only that owner's events of that type. */
    apply(&subs, IPC_EVENT_MAILBOX_CHANGED, IPC_SUBSCRIBE_OWNER, "alice", 0);
    apply(&subs, IPC_EVENT_MAILBOX_CHANGED, IPC_SUBSCRIBE_OWNER, "alice", 0); /* idempotent */
    assert_int_equal(subs.n_owners, 1);
    assert_true(ipc_subscriptions_match(&subs, &alice));
    assert_false(ipc_subscriptions_match(&subs, &bob));
    assert_false(ipc_subscriptions_match(&subs, &list));
    apply(&subs, IPC_EVENT_MAILBOX_CHANGED, IPC_UNSUBSCRIBE_OWNER, "alice", 0);
    assert_false(ipc_subscriptions_match(&subs, &alice));

    /* Every owner; NONE drops the type with its owners. */
    apply(&subs, IPC_EVENT_SPOOL_NEW, IPC_SUBSCRIBE_ALL, NULL, 0);
    assert_true(ipc_subscriptions_match(&subs, &spool));
    apply(&subs, IPC_EVENT_MAILBOX_LIST, IPC_SUBSCRIBE_OWNER, "alice", 0);
    apply(&subs, IPC_EVENT_MAILBOX_LIST, IPC_SUBSCRIBE_ALL, NULL, 0);
    assert_true(ipc_subscriptions_match(&subs, &list));
    apply(&subs, IPC_EVENT_MAILBOX_LIST, IPC_SUBSCRIBE_NONE, NULL, 0);
    assert_false(ipc_subscriptions_match(&subs, &list));
    assert_int_equal(subs.n_owners, 0);
    assert_true(ipc_subscriptions_match(&subs, &spool));

    /* Malformed requests change nothing. */
    apply(&subs, 99, IPC_SUBSCRIBE_ALL, NULL, -1);
    apply(&subs, IPC_EVENT_MAILBOX_CHANGED, IPC_SUBSCRIBE_OWNER, "", -1);
    apply(&subs, IPC_EVENT_MAILBOX_CHANGED, IPC_SUBSCRIBE_ALL, "alice", -1);
    apply(&subs, IPC_EVENT_MAILBOX_CHANGED, 9, NULL, -1);
    assert_false(ipc_subscriptions_match(&subs, &alice));
    ipc_subscriptions_free(&subs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_subscriptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
