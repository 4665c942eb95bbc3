/*
 * test_frame.c - unit tests for IPC frames: round trips, limits, byte-at-a-time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/frame.h"

static void test_roundtrip_fields(void **state)
{
    struct buf payload = BUF_INIT, wire = BUF_INIT;
    ipc_put_str(&payload, "smtp");
    ipc_put_u64(&payload, 12345678901234ULL);
    ipc_put_bytes(&payload, "a\0b", 3);
    ipc_frame_encode(&wire, IPC_HELLO, payload.data, payload.len);

    struct ipc_frame f;
    size_t used;
    assert_int_equal(ipc_frame_parse(wire.data, wire.len, 1024, &f, &used), IPC_PARSE_OK);
    assert_int_equal(used, wire.len);
    assert_int_equal(f.type, IPC_HELLO);
    struct ipc_reader r;
    ipc_reader_init(&r, f.payload, f.len);
    struct slice s = ipc_get_bytes(&r);
    assert_true(slice_eq(s, SLICE_LIT("smtp")));
    assert_int_equal(ipc_get_u64(&r), 12345678901234ULL);
    s = ipc_get_bytes(&r);
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.ptr, "a\0b", 3);
    assert_true(ipc_reader_done(&r));
    /* Reading past the end fails and stays failed. */
    ipc_get_u64(&r);
    assert_false(ipc_reader_done(&r));
    buf_free(&payload);
    buf_free(&wire);
}

static void test_byte_at_a_time(void **state)
{
    struct buf wire = BUF_INIT;
    ipc_frame_encode(&wire, IPC_EVENT, "hello", 5);
    struct ipc_frame f;
    size_t used;
    for (size_t n = 0; n < wire.len; n++)
        assert_int_equal(ipc_frame_parse(wire.data, n, 1024, &f, &used), IPC_PARSE_NEED_MORE);
    assert_int_equal(ipc_frame_parse(wire.data, wire.len, 1024, &f, &used), IPC_PARSE_OK);
    buf_free(&wire);
}

static void test_limits(void **state)
{
    struct buf wire = BUF_INIT;
    ipc_frame_encode(&wire, IPC_EVENT, "0123456789", 10);
    struct ipc_frame f;
    size_t used;
    assert_int_equal(ipc_frame_parse(wire.data, wire.len, 9, &f, &used), IPC_PARSE_ERROR);
    /* An oversized header is refused before its payload arrives. */
    assert_int_equal(ipc_frame_parse(wire.data, IPC_HEADER_SIZE, 9, &f, &used), IPC_PARSE_ERROR);
    wire.data[7] = 1; /* reserved flags */
    assert_int_equal(ipc_frame_parse(wire.data, wire.len, 1024, &f, &used), IPC_PARSE_ERROR);
    /* A field length that runs past the payload fails the reader. */
    struct ipc_reader r;
    const unsigned char bad[] = {0, 0, 0, 9, 'a'};
    ipc_reader_init(&r, bad, sizeof(bad));
    struct slice s = ipc_get_bytes(&r);
    assert_null(s.ptr);
    assert_false(ipc_reader_done(&r));
    buf_free(&wire);
}

static void test_socket_io(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(ipc_send(sv[0], IPC_CTL_REQUEST, "{}", 2), 0);
    uint16_t type;
    struct buf in = BUF_INIT;
    assert_int_equal(ipc_recv(sv[1], 1024, &type, &in), 0);
    assert_int_equal(type, IPC_CTL_REQUEST);
    assert_string_equal(in.data, "{}");
    /* A short frame at end of stream is an error, not a guess. */
    assert_int_equal(write(sv[0], "\0\0\0\5\0\1\0\0ab", 10), 10);
    close(sv[0]);
    assert_int_equal(ipc_recv(sv[1], 1024, &type, &in), -1);
    close(sv[1]);
    buf_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_fields),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_socket_io),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
