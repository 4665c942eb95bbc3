/*
 * fuzz_ipc_frame.c - libFuzzer target for the IPC frame reader (frame.h,
 * channel.h) and the field reader every payload decoder is built on, with
 * the payloads of the supervisor protocol (control.h) as components read
 * them.
 *
 * The input is a byte stream as a peer would send it. Frames are taken off
 * it one by one, both from a flat buffer (ipc_frame_parse) and from a
 * libevent buffer (ipc_evbuffer_frame, as every channel reads): both must
 * agree, never read past the input, never accept a frame over the limit or
 * with flags set, and stop at the first error. Each frame's payload is then
 * read as HELLO (str, u64), SHUTDOWN (u64) or EVENT (str, str) by its type:
 * the reader must never run past the payload nor call a short read done.
 */
#include "ipc/channel.h"
#include "ipc/frame.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_MAX_PAYLOAD 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_payload(const struct ipc_frame *f)
{
    struct ipc_reader r;
    ipc_reader_init(&r, f->payload, f->len);
    const char *end = f->payload + f->len;
    switch (f->type) {
    case IPC_HELLO: {
        struct slice name = ipc_get_bytes(&r);
        ipc_get_u64(&r);
        if (!r.failed && (name.ptr < f->payload || name.ptr + name.len > end))
            __builtin_trap();
        break;
    }
    case IPC_SHUTDOWN:
        ipc_get_u64(&r);
        break;
    default: {
        struct slice name = ipc_get_bytes(&r);
        struct slice payload = ipc_get_bytes(&r);
        if (!r.failed && (name.ptr + name.len > end || payload.ptr + payload.len > end))
            __builtin_trap();
        break;
    }
    }
    if (r.left > f->len || (r.failed && ipc_reader_done(&r)))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct evbuffer *in = evbuffer_new();
    evbuffer_add(in, data, size);
    size_t off = 0;
    for (;;) {
        struct ipc_frame f, g;
        size_t used = 0, used_ev = 0;
        enum ipc_parse_result r =
            ipc_frame_parse(data + off, size - off, FUZZ_MAX_PAYLOAD, &f, &used);
        enum ipc_parse_result r_ev = ipc_evbuffer_frame(in, FUZZ_MAX_PAYLOAD, &g, &used_ev);
        if (r != r_ev)
            __builtin_trap();
        if (r != IPC_PARSE_OK)
            break;
        if (used != used_ev || used != IPC_HEADER_SIZE + f.len || f.len > FUZZ_MAX_PAYLOAD ||
            used > size - off || f.type != g.type || f.len != g.len ||
            memcmp(f.payload, g.payload, f.len) != 0 || data[off + 6] != 0 || data[off + 7] != 0)
            __builtin_trap();
        read_payload(&f);
        evbuffer_drain(in, used_ev);
        off += used;
    }
    evbuffer_free(in);
    return 0;
}
