/*
 * jmap_thread.c - Thread/get (RFC 8621 3).
 *
 * Threads: every Email is a thread of its own ("t" + its body hash), which
 * RFC 8621 allows (the server decides what a thread is); never a thread id
 * another account could read.
 */
#include "http/jmap_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

json_t *jmap_thread_get(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *ids, *props;
    if (!jmap_check_account(r, args, err_r) || !jmap_get_ids(r, args, &ids, err_r) ||
        !jmap_get_properties(args, &props, err_r))
        return NULL;
    if (ids == NULL) {
        *err_r = jmap_error("requestTooLarge", "give the thread ids");
        return NULL;
    }
    json_t *state = jmap_state(r);
    if (state == NULL) {
        *err_r = jmap_error("serverFail", "account state");
        return NULL;
    }
    json_t *list = json_array(), *not_found = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        const char *s = json_string_value(id);
        char hash[65], eid[70] = "";
        if (s[0] == 't')
            snprintf(eid, sizeof(eid), "e%s", s + 1);
        struct store_account_message *c = NULL;
        size_t n = 0;
        struct buf err = BUF_INIT;
        if (s[0] == 't' && jmap_email_id_parse(eid, hash) &&
            store_account_messages(r->j->store, r->user, hash, 0, false, &c, &n, &err) == 0 &&
            n > 0)
            json_array_append_new(list, json_pack("{s:s, s:[s]}", "id", s, "emailIds", eid));
        else
            json_array_append(not_found, id);
        store_account_messages_free(c, n);
        buf_free(&err);
    }
    return jmap_get_result(r, state, list, not_found);
}
