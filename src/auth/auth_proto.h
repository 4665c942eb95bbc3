/*
 * auth_proto.h - the payloads of IPC_AUTH_REQUEST and IPC_AUTH_REPLY
 * (ipc/frame.h fields, in this order), shared by the auth process and the
 * auth client so that both sides read the same format.
 *
 *   IPC_AUTH_REQUEST: u64 id, str service, str mechanism, str authzid,
 *                     str username, str password, str client_addr, u64 flags
 *   IPC_AUTH_REPLY:   u64 id, u64 result (enum auth_result), str account,
 *                     str session
 *
 * id is the client's, echoed back (replies may come out of order: a failed
 * login is answered late on purpose). flags: AUTH_FLAG_SECURE; AUTH_FLAG_SESSION
 * (a PLAIN or LOGIN check that succeeds also makes a session token, sent
 * back in session: the webmail's sign-in); AUTH_FLAG_END_SESSION (a BEARER
 * check of a session token that succeeds also revokes it: sign-out).
 * account is "" unless result is AUTH_OK; session is "" unless one was made. Decoding refuses any
 * frame with a field too long, a NUL inside a string, unknown flags or bytes left over: the auth
 * process then closes that connection, it never guesses.
 */
#ifndef WHARF_AUTH_AUTH_PROTO_H
#define WHARF_AUTH_AUTH_PROTO_H

#include "auth/auth_client.h"
#include "base/buf.h"

#include <stdint.h>

#define AUTH_FLAG_SECURE 1u
#define AUTH_FLAG_SESSION 2u
#define AUTH_FLAG_END_SESSION 4u
#define AUTH_FLAGS_KNOWN (AUTH_FLAG_SECURE | AUTH_FLAG_SESSION | AUTH_FLAG_END_SESSION)
#define AUTH_PROTO_MAX_SERVICE 32 /* "submission" and friends */
#define AUTH_PROTO_MAX_ADDR 64    /* an IPv6 address in text is at most 45 */

struct auth_wire_request {
    uint64_t id;
    struct slice service, mechanism, authzid, username, password, client_addr;
    uint64_t flags;
};

void auth_proto_put_request(struct buf *payload, uint64_t id, const struct auth_request *req);
/* Returns 0, or -1 with a static reason ("field too long", ...) in *why_r. */
int auth_proto_get_request(const void *payload, size_t len, size_t max_credential,
                           struct auth_wire_request *r, const char **why_r);

void auth_proto_put_reply(struct buf *payload, uint64_t id, enum auth_result result,
                          const char *account, const char *session);
int auth_proto_get_reply(const void *payload, size_t len, uint64_t *id_r,
                         enum auth_result *result_r, struct slice *account_r,
                         struct slice *session_r);

#endif
