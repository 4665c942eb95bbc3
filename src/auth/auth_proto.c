/*
 * auth_proto.c - encoding and strict decoding of the auth frames.
 */
#include "auth/auth_proto.h"
#include "ipc/frame.h"

#include <string.h>

void auth_proto_put_request(struct buf *payload, uint64_t id, const struct auth_request *req)
{
    ipc_put_u64(payload, id);
    ipc_put_str(payload, req->service ? req->service : "");
    ipc_put_str(payload, req->mechanism ? req->mechanism : "");
    ipc_put_str(payload, req->authzid ? req->authzid : "");
    ipc_put_str(payload, req->username ? req->username : "");
    ipc_put_str(payload, req->password ? req->password : "");
    ipc_put_str(payload, req->client_addr ? req->client_addr : "");
    ipc_put_u64(payload, (req->secure ? AUTH_FLAG_SECURE : 0) |
                             (req->session ? AUTH_FLAG_SESSION : 0) |
                             (req->end_session ? AUTH_FLAG_END_SESSION : 0));
}

static bool field_ok(struct slice s, size_t max)
{
    return s.len <= max && (s.len == 0 || memchr(s.ptr, '\0', s.len) == NULL);
}

int auth_proto_get_request(const void *payload, size_t len, size_t max_credential,
                           struct auth_wire_request *r, const char **why_r)
{
    struct ipc_reader rd;
    ipc_reader_init(&rd, payload, len);
    r->id = ipc_get_u64(&rd);
    r->service = ipc_get_bytes(&rd);
    r->mechanism = ipc_get_bytes(&rd);
    r->authzid = ipc_get_bytes(&rd);
    r->username = ipc_get_bytes(&rd);
    r->password = ipc_get_bytes(&rd);
    r->client_addr = ipc_get_bytes(&rd);
    r->flags = ipc_get_u64(&rd);
    if (!ipc_reader_done(&rd)) {
        *why_r = rd.failed ? "short or truncated fields" : "trailing bytes";
        return -1;
    }
    if (!field_ok(r->service, AUTH_PROTO_MAX_SERVICE) ||
        !field_ok(r->mechanism, AUTH_PROTO_MAX_SERVICE) ||
        !field_ok(r->client_addr, AUTH_PROTO_MAX_ADDR) || !field_ok(r->authzid, max_credential) ||
        !field_ok(r->username, max_credential) || !field_ok(r->password, max_credential)) {
        *why_r = "field too long or containing NUL";
        return -1;
    }
    if ((r->flags & ~(uint64_t)AUTH_FLAGS_KNOWN) != 0) {
        *why_r = "unknown flags";
        return -1;
    }
    return 0;
}

void auth_proto_put_reply(struct buf *payload, uint64_t id, enum auth_result result,
                          const char *account, const char *session)
{
    ipc_put_u64(payload, id);
    ipc_put_u64(payload, (uint64_t)result);
    ipc_put_str(payload, account ? account : "");
    ipc_put_str(payload, session ? session : "");
}

int auth_proto_get_reply(const void *payload, size_t len, uint64_t *id_r,
                         enum auth_result *result_r, struct slice *account_r,
                         struct slice *session_r)
{
    struct ipc_reader rd;
    ipc_reader_init(&rd, payload, len);
    *id_r = ipc_get_u64(&rd);
    uint64_t res = ipc_get_u64(&rd);
    *account_r = ipc_get_bytes(&rd);
    *session_r = ipc_get_bytes(&rd);
    if (!ipc_reader_done(&rd) || res > AUTH_RATELIMIT || !field_ok(*account_r, 1024) ||
        !field_ok(*session_r, 128))
        return -1;
    *result_r = (enum auth_result)res;
    return 0;
}
