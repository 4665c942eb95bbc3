/*
 * fuzz_auth_proto.c - libFuzzer target for the decoders of the auth.sock
 * payloads (auth_proto.h).
 *
 * The first byte picks the decoder (even: a request, as the auth process
 * reads it; odd: a reply, as a worker's auth client reads it); the rest is
 * the payload. Whatever decodes must hold to the limits and, encoded again,
 * give the same bytes back.
 */
#include "auth/auth_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_CREDENTIAL 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool clean(struct slice s, size_t max)
{
    return s.len <= max && (s.len == 0 || memchr(s.ptr, 0, s.len) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct buf again = BUF_INIT;
    if ((data[0] & 1) == 0) {
        struct auth_wire_request w;
        const char *why = NULL;
        if (auth_proto_get_request(p, n, FUZZ_MAX_CREDENTIAL, &w, &why) == 0) {
            if (!clean(w.service, AUTH_PROTO_MAX_SERVICE) ||
                !clean(w.mechanism, AUTH_PROTO_MAX_SERVICE) ||
                !clean(w.authzid, FUZZ_MAX_CREDENTIAL) || !clean(w.username, FUZZ_MAX_CREDENTIAL) ||
                !clean(w.password, FUZZ_MAX_CREDENTIAL) ||
                !clean(w.client_addr, AUTH_PROTO_MAX_ADDR) || (w.flags & ~AUTH_FLAGS_KNOWN))
                __builtin_trap();
            char *f[6] = {slice_strdup(w.service),  slice_strdup(w.mechanism),
                          slice_strdup(w.authzid),  slice_strdup(w.username),
                          slice_strdup(w.password), slice_strdup(w.client_addr)};
            struct auth_request req = {f[0],
                                       f[1],
                                       f[2],
                                       f[3],
                                       f[4],
                                       f[5],
                                       (w.flags & AUTH_FLAG_SECURE) != 0,
                                       (w.flags & AUTH_FLAG_SESSION) != 0,
                                       (w.flags & AUTH_FLAG_END_SESSION) != 0};
            auth_proto_put_request(&again, w.id, &req);
            for (size_t i = 0; i < 6; i++)
                free(f[i]);
            if (again.len != n || memcmp(again.data, p, n) != 0)
                __builtin_trap();
        } else if (why == NULL) {
            __builtin_trap(); /* a refusal always says why (it is logged) */
        }
    } else {
        uint64_t id;
        enum auth_result res;
        struct slice account, session;
        if (auth_proto_get_reply(p, n, &id, &res, &account, &session) == 0) {
            if (res != AUTH_OK && res != AUTH_FAILED && res != AUTH_TEMPFAIL &&
                res != AUTH_RATELIMIT)
                __builtin_trap();
            char *a = slice_strdup(account), *se = slice_strdup(session);
            auth_proto_put_reply(&again, id, res, a, se);
            free(a);
            free(se);
            if (again.len != n || memcmp(again.data, p, n) != 0)
                __builtin_trap();
        }
    }
    buf_free(&again);
    return 0;
}
