/*
 * fuzz_routing_frame.c - libFuzzer target for the frames of the routing
 * engine on 691 (routing_proto.h): a byte stream as a peer would send it
 * inside TLS, cut into frames with the IPC frame kit under the 691 limit,
 * each decoded strictly (HELLO, AUTH, UPDATE with its link-state records,
 * ACK, KEEPALIVE, CONFIG, REPORT, ERROR). Decoding stops at the first bad
 * frame, as the connection would close; nothing may crash or leak.
 */
#include "routing/routing_proto.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (;;) {
        struct ipc_frame f;
        size_t used;
        if (ipc_frame_parse(data + off, size - off, ROUTING_MAX_FRAME, &f, &used) != IPC_PARSE_OK)
            break;
        struct routing_msg m;
        struct buf err = BUF_INIT;
        bool ok = routing_msg_decode(&f, &m, &err);
        routing_msg_clear(&m);
        buf_free(&err);
        if (!ok)
            break;
        off += used;
    }
    return 0;
}
