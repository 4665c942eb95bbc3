/*
 * fuzz_event.c - libFuzzer target for the decoders of the bus (event.h).
 *
 * The first byte picks the decoder (even: an IPC_EVENT payload, as wharfd
 * and every component read it; odd: an IPC_SUBSCRIBE payload, as wharfd
 * reads it); the rest is the payload. An event that decodes must hold to the
 * caps and, encoded again, give the same bytes back; a subscription that
 * applies must be matchable and freed without a leak.
 */
#include "ipc/event.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    const char *why;
    if ((data[0] & 1) == 0) {
        struct ipc_event ev;
        if (ipc_event_decode(p, n, &ev, &why) == 0) {
            const char *owner = ipc_event_owner(&ev);
            if (owner != NULL && (owner[0] == '\0' || strlen(owner) > IPC_EVENT_OWNER_MAX))
                __builtin_trap();
            struct buf again = BUF_INIT;
            ipc_event_encode(&again, &ev);
            if (again.len != n || memcmp(again.data, p, n) != 0)
                __builtin_trap();
            buf_free(&again);
            ipc_event_clear(&ev);
        } else if (ev.owned_ != NULL || ev.type != IPC_EVENT_NONE) {
            __builtin_trap();
        }
    } else {
        struct ipc_subscriptions subs = {0};
        if (ipc_subscriptions_apply(&subs, p, n, &why) == 0) {
            struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                                   .u.mailbox_changed = {"alice", "INBOX", 0}};
            (void)ipc_subscriptions_match(&subs, &ev);
        } else if (subs.all != 0 || subs.n_owners != 0) {
            __builtin_trap();
        }
        ipc_subscriptions_free(&subs);
    }
    return 0;
}
