/*
 * test_control.c - unit tests for the component side of the control protocol
 * (control.c) and the frame channel under it, driven over a real socketpair
 * by a peer that plays wharfd with the blocking ipc_send/ipc_recv.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/channel.h"
#include "ipc/control.h"

struct seen {
    int64_t deadline;
    int shutdowns;
    char event[64];
    char payload[64];
    int events;
};

static void cb_status(void *arg, json_t *obj)
{
    json_object_set_new(obj, "connections", json_integer(42));
}

static void cb_shutdown(void *arg, int64_t deadline)
{
    struct seen *s = arg;
    s->deadline = deadline;
    s->shutdowns++;
}

static void cb_event(void *arg, const struct ipc_event *ev)
{
    struct seen *s = arg;
    assert_int_equal(ev->type, IPC_EVENT_MAILBOX_CHANGED);
    snprintf(s->event, sizeof(s->event), "%s", ev->u.mailbox_changed.owner);
    snprintf(s->payload, sizeof(s->payload), "%s", ev->u.mailbox_changed.mailbox);
    s->events++;
}

struct status_seen {
    int calls, nulls;
    json_int_t uptime;
};

static void cb_status_all(void *arg, json_t *status)
{
    struct status_seen *s = arg;
    s->calls++;
    if (status == NULL)
        s->nulls++;
    else
        s->uptime = json_integer_value(json_object_get(status, "uptime"));
}

/* Runs the loop until nothing is left to do right now. */
static void spin(struct event_base *base)
{
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

static void test_control_protocol(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct event_base *base = event_base_new();
    struct wharf_config cfg;
    config_init(&cfg);
    struct component_ctx ctx = {
        .name = "smtp", .n_workers = 2, .worker_index = 1, .cfg = &cfg, .control_fd = sv[0]};
    struct seen seen = {0};
    struct control_callbacks cb = {cb_status, cb_shutdown, cb_event, &seen};
    struct control *c = control_open(base, &ctx, &cb);
    spin(base);

    /* HELLO: component name and pid. */
    uint16_t type;
    struct buf in = BUF_INIT, out = BUF_INIT;
    assert_int_equal(ipc_recv(sv[1], 1 << 20, &type, &in), 0);
    assert_int_equal(type, IPC_HELLO);
    struct ipc_reader r;
    ipc_reader_init(&r, in.data, in.len);
    assert_true(slice_eq(ipc_get_bytes(&r), SLICE_LIT("smtp")));
    assert_int_equal(ipc_get_u64(&r), (uint64_t)getpid());
    assert_true(ipc_reader_done(&r));

    /* STATUS: the callback's figures in a JSON object. */
    assert_int_equal(ipc_send(sv[1], IPC_STATUS_REQUEST, NULL, 0), 0);
    spin(base);
    assert_int_equal(ipc_recv(sv[1], 1 << 20, &type, &in), 0);
    assert_int_equal(type, IPC_STATUS);
    json_t *j = json_loadb(in.data, in.len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "connections")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "component")), "smtp");
    assert_int_equal(json_integer_value(json_object_get(j, "worker")), 1);
    json_decref(j);

    /* SUBSCRIBE out: the type, for every owner. */
    control_subscribe(c, IPC_EVENT_MAILBOX_CHANGED, IPC_SUBSCRIBE_ALL, NULL);
    spin(base);
    assert_int_equal(ipc_recv(sv[1], 1 << 20, &type, &in), 0);
    assert_int_equal(type, IPC_SUBSCRIBE);
    struct ipc_subscriptions subs = {0};
    const char *why;
    assert_int_equal(ipc_subscriptions_apply(&subs, in.data, in.len, &why), 0);
    assert_int_equal(subs.all, UINT64_C(1) << IPC_EVENT_MAILBOX_CHANGED);
    ipc_subscriptions_free(&subs);

    /* A malformed EVENT is dropped, not delivered. */
    ipc_put_u64(&out, IPC_EVENT_MAILBOX_CHANGED);
    ipc_put_str(&out, "alice");
    assert_int_equal(ipc_send(sv[1], IPC_EVENT, out.data, out.len), 0);
    spin(base);
    assert_int_equal(seen.events, 0);

    /* EVENT in, delivered one byte at a time, and EVENT out. */
    buf_reset(&out);
    struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                           .u.mailbox_changed = {.owner = "alice", .mailbox = "INBOX"}};
    ipc_event_encode(&out, &ev);
    struct buf wire = BUF_INIT;
    ipc_frame_encode(&wire, IPC_EVENT, out.data, out.len);
    for (size_t i = 0; i < wire.len; i++) {
        assert_int_equal(write(sv[1], wire.data + i, 1), 1);
        spin(base);
        assert_int_equal(seen.events, i + 1 == wire.len ? 1 : 0);
    }
    assert_string_equal(seen.event, "alice");
    assert_string_equal(seen.payload, "INBOX");
    ev = (struct ipc_event){.type = IPC_EVENT_SPOOL_NEW, .u.spool_new.queue_id = "Q123"};
    control_publish(c, &ev);
    assert_int_equal(ipc_send(sv[1], IPC_STATUS_REQUEST, NULL, 0), 0);
    spin(base);
    assert_int_equal(ipc_recv(sv[1], 1 << 20, &type, &in), 0);
    assert_int_equal(type, IPC_EVENT);
    assert_int_equal(ipc_event_decode(in.data, in.len, &ev, &why), 0);
    assert_int_equal(ev.type, IPC_EVENT_SPOOL_NEW);
    assert_string_equal(ev.u.spool_new.queue_id, "Q123");
    ipc_event_clear(&ev);
    assert_int_equal(ipc_recv(sv[1], 1 << 20, &type, &in), 0);
    assert_int_equal(type, IPC_STATUS);
    j = json_loadb(in.data, in.len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "events_received")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "events_published")), 1);
    json_decref(j);

    /* STATUS_ALL: asked with an id, answered with it; a cancelled one is dropped. */
    struct status_seen ss = {0};
    uint64_t h1 = control_status_all(c, cb_status_all, &ss);
    uint64_t h2 = control_status_all(c, cb_status_all, &ss);
    assert_int_not_equal(h1, h2);
    control_status_all_cancel(c, h2);
    spin(base);
    uint64_t ids[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ipc_recv(sv[1], 1 << 20, &type, &in), 0);
        assert_int_equal(type, IPC_STATUS_ALL_REQUEST);
        ipc_reader_init(&r, in.data, in.len);
        ids[i] = ipc_get_u64(&r);
        assert_true(ipc_reader_done(&r));
    }
    for (int i = 1; i >= 0; i--) {
        buf_reset(&out);
        ipc_put_u64(&out, ids[i]);
        ipc_put_str(&out, "{\"uptime\": 7}");
        assert_int_equal(ipc_send(sv[1], IPC_STATUS_ALL, out.data, out.len), 0);
    }
    spin(base);
    assert_int_equal(ss.calls, 1);
    assert_int_equal(ss.uptime, 7);
    /* One still waiting when wharfd goes away hears NULL. */
    control_status_all(c, cb_status_all, &ss);

    /* SHUTDOWN carries the deadline. */
    buf_reset(&out);
    ipc_put_u64(&out, 123456);
    assert_int_equal(ipc_send(sv[1], IPC_SHUTDOWN, out.data, out.len), 0);
    spin(base);
    assert_int_equal(seen.shutdowns, 1);
    assert_int_equal(seen.deadline, 123456);

    /* The supervisor going away means: shut down now. */
    close(sv[1]);
    int64_t before = monotonic_ms();
    spin(base);
    assert_int_equal(seen.shutdowns, 2);
    assert_true(seen.deadline >= before && seen.deadline <= monotonic_ms());
    assert_int_equal(ss.calls, 2);
    assert_int_equal(ss.nulls, 1);

    control_close(c);
    event_base_free(base);
    config_free(&cfg);
    buf_free(&in);
    buf_free(&out);
    buf_free(&wire);
}

/* An oversized frame ends the channel instead of being buffered. */
static int closes;
static void on_frame(void *arg, const struct ipc_frame *f)
{
    fail_msg("no frame expected");
}
static void on_close(void *arg)
{
    closes++;
    ipc_channel_free(arg ? *(struct ipc_channel **)arg : NULL);
}

static void test_channel_limit(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct event_base *base = event_base_new();
    static struct ipc_channel *ch;
    ch = ipc_channel_new(base, sv[0], 16, on_frame, on_close, &ch);
    assert_int_equal(ipc_send(sv[1], IPC_EVENT, "0123456789abcdefX", 17), 0);
    spin(base);
    assert_int_equal(closes, 1);
    close(sv[1]);
    event_base_free(base);
}

/* Frames sent while the socket takes only part of them (the first at once,
 * the rest through the bufferevent) arrive whole and in order. */
static void no_frame(void *arg, const struct ipc_frame *f)
{
}
static void no_close(void *arg)
{
}

static void test_channel_send_order(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    struct event_base *base = event_base_new();
    struct ipc_channel *ch = ipc_channel_new(base, sv[0], 1 << 16, no_frame, no_close, NULL);
    struct buf want = BUF_INIT, got = BUF_INIT;
    char payload[5000];
    for (int i = 0; i < 40; i++) {
        size_t len = (size_t)(i * 997) % sizeof(payload);
        memset(payload, 'a' + i % 26, len);
        ipc_channel_send_now(ch, IPC_EVENT, payload, len);
        unsigned char hdr[8] = {0, 0, (unsigned char)(len >> 8), (unsigned char)len, 0, IPC_EVENT,
                                0, 0};
        buf_append(&want, hdr, sizeof(hdr));
        buf_append(&want, payload, len);
    }
    for (int spins = 0; got.len < want.len && spins < 100000; spins++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        char chunk[8192];
        ssize_t n = recv(sv[1], chunk, sizeof(chunk), MSG_DONTWAIT);
        if (n > 0)
            buf_append(&got, chunk, (size_t)n);
    }
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    ipc_channel_free(ch);
    close(sv[1]);
    event_base_free(base);
    buf_free(&want);
    buf_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_protocol),
        cmocka_unit_test(test_channel_limit),
        cmocka_unit_test(test_channel_send_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
