/*
 * jmap_session.c - the JMAP session resource (RFC 8620 2): capabilities with
 * every limit the engine enforces, the user's personal account and the
 * accounts others share with them (jmap_account.c), and the
 * API, upload, download and event source URLs, absolute (clients such as
 * jmap-jam do not resolve relative ones).
 *
 * Must never advertise a limit that jmap_api/jmap_upload do not enforce.
 */
#include "http/jmap_int.h"

#include <string.h>

#define JMAP_WEBSOCKET "urn:ietf:params:jmap:websocket"

int jmap_session_json(struct jmap *j, const char *user, const char *base_url, json_t **out)
{
    const struct jmap_limits *l = &j->limits;
    struct buf id = BUF_INIT, u = BUF_INIT;
    jmap_account_id(user, &id);
    json_t *core = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:[s]}", "maxSizeUpload",
        (json_int_t)l->max_size_upload, "maxConcurrentUpload", (json_int_t)l->max_concurrent_upload,
        "maxSizeRequest", (json_int_t)l->max_size_request, "maxConcurrentRequests",
        (json_int_t)l->max_concurrent_requests, "maxCallsInRequest",
        (json_int_t)l->max_calls_in_request, "maxObjectsInGet", (json_int_t)l->max_objects_in_get,
        "maxObjectsInSet", (json_int_t)l->max_objects_in_set, "collationAlgorithms",
        "i;ascii-casemap");
    json_t *mail =
        json_pack("{s:n, s:I, s:I, s:[s,s], s:b}", "maxMailboxesPerEmail", "maxMailboxDepth",
                  (json_int_t)STORE_MAILBOX_DEPTH_MAX, "maxSizeMailboxName",
                  (json_int_t)STORE_MAILBOX_NAME_MAX, "emailQuerySortOptions", "receivedAt",
                  "sentAt", "mayCreateTopLevelMailbox", 1);
    json_object_set_new(mail, "maxSizeAttachmentsPerEmail",
                        json_integer((json_int_t)l->max_size_upload));
    json_t *submission = json_pack("{s:i, s:{}}", "maxDelayedSend", 0, "submissionExtensions");
    /* the accounts others share: mail only, no mailbox made at their top level */
    json_t *shared_mail = json_deep_copy(mail);
    json_object_set_new(shared_mail, "mayCreateTopLevelMailbox", json_false());
    json_t *acct_caps =
        json_pack("{s:o, s:o, s:{}}", JMAP_MAIL, mail, JMAP_SUBMISSION, submission, JMAP_VACATION);
    json_t *accounts = json_object();
    json_object_set_new(accounts, id.data,
                        json_pack("{s:s, s:b, s:b, s:o}", "name", user, "isPersonal", 1,
                                  "isReadOnly", 0, "accountCapabilities", acct_caps));
    struct buf state = BUF_INIT;
    if (jmap_shared_accounts(j, user, accounts, shared_mail, &state) != 0)
        buf_append_cstr(&state, JMAP_SESSION_STATE); /* the personal account alone */
    json_decref(shared_mail);
    json_t *primary = json_pack("{s:s, s:s, s:s}", JMAP_MAIL, id.data, JMAP_SUBMISSION, id.data,
                                JMAP_VACATION, id.data);
    json_t *caps = json_pack("{s:o, s:{}, s:{}, s:{}}", JMAP_CORE, core, JMAP_MAIL, JMAP_SUBMISSION,
                             JMAP_VACATION);
    json_t *s = json_pack("{s:o, s:o, s:o, s:s}", "capabilities", caps, "accounts", accounts,
                          "primaryAccounts", primary, "username", user);
    buf_printf(&u, "%s/jmap/api/", base_url);
    json_object_set_new(s, "apiUrl", json_string(u.data));
    buf_reset(&u);
    buf_printf(&u, "%s/jmap/download/{accountId}/{blobId}/{name}?type={type}", base_url);
    json_object_set_new(s, "downloadUrl", json_string(u.data));
    buf_reset(&u);
    buf_printf(&u, "%s/jmap/upload/{accountId}/", base_url);
    json_object_set_new(s, "uploadUrl", json_string(u.data));
    buf_reset(&u);
    buf_printf(&u, "%s/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}",
               base_url);
    json_object_set_new(s, "eventSourceUrl", json_string(u.data));
    /* RFC 8887: the same host, over wss (the upgrade is on 443 like everything else) */
    buf_reset(&u);
    buf_printf(&u, "wss%s/jmap/ws/", base_url + strlen("https"));
    json_object_set_new(caps, JMAP_WEBSOCKET,
                        json_pack("{s:s, s:b}", "url", u.data, "supportsPush", 1));
    json_object_set_new(s, "state", json_string(state.data));
    buf_free(&state);
    buf_free(&u);
    buf_free(&id);
    *out = s;
    return 0;
}
