/*
 * directory_proto.c - encoding and strict decoding of the directory lookup
 * frames (directory_proto.h).
 */
#include "directory/directory_proto.h"
#include "base/alloc.h"
#include "ipc/frame.h"

#include <stdlib.h>
#include <string.h>

void directory_answer_free(struct directory_answer *a)
{
    free(a->home);
    free(a->dn);
    xfree_secret(a->secret);
    for (size_t i = 0; i < a->n_targets; i++) {
        free(a->accounts[i]);
        free(a->folders[i]);
    }
    free(a->accounts);
    free(a->folders);
    for (size_t i = 0; i < a->n_remote; i++)
        free(a->remote[i]);
    free(a->remote);
    memset(a, 0, sizeof(*a));
}

static bool text_ok(struct slice s, size_t max)
{
    return s.len <= max && (s.len == 0 || memchr(s.ptr, '\0', s.len) == NULL);
}

void directory_proto_put_lookup(struct buf *payload, uint64_t id, enum directory_query q,
                                const char *key)
{
    ipc_put_u64(payload, id);
    ipc_put_u64(payload, (uint64_t)q);
    ipc_put_str(payload, key);
}

int directory_proto_get_lookup(const void *payload, size_t len, uint64_t *id_r,
                               enum directory_query *q_r, struct slice *key_r, const char **why_r)
{
    struct ipc_reader rd;
    ipc_reader_init(&rd, payload, len);
    *id_r = ipc_get_u64(&rd);
    uint64_t q = ipc_get_u64(&rd);
    *key_r = ipc_get_bytes(&rd);
    if (!ipc_reader_done(&rd)) {
        *why_r = rd.failed ? "short or truncated fields" : "trailing bytes";
        return -1;
    }
    if (q != DIRECTORY_Q_RECIPIENT && q != DIRECTORY_Q_ACCOUNT && q != DIRECTORY_Q_LOGIN) {
        *why_r = "unknown query";
        return -1;
    }
    if (!text_ok(*key_r, DIRECTORY_PROTO_MAX_KEY)) {
        *why_r = "key too long or containing NUL";
        return -1;
    }
    *q_r = (enum directory_query)q;
    return 0;
}

void directory_proto_put_answer(struct buf *payload, uint64_t id, const struct directory_answer *a)
{
    ipc_put_u64(payload, id);
    ipc_put_u64(payload, (uint64_t)a->status);
    ipc_put_u64(payload, (uint64_t)a->kind);
    ipc_put_u64(payload, (a->loop ? DIRECTORY_FLAG_LOOP : 0) |
                             (a->no_secret ? DIRECTORY_FLAG_NO_SECRET : 0));
    ipc_put_u64(payload, a->quota_bytes);
    ipc_put_u64(payload, a->quota_messages);
    ipc_put_str(payload, a->home ? a->home : "");
    ipc_put_str(payload, a->dn ? a->dn : "");
    ipc_put_str(payload, a->secret ? a->secret : "");
    ipc_put_u64(payload, a->n_targets);
    for (size_t i = 0; i < a->n_targets; i++) {
        ipc_put_str(payload, a->accounts[i]);
        ipc_put_str(payload, a->folders[i] ? a->folders[i] : "");
    }
    ipc_put_u64(payload, a->n_remote);
    for (size_t i = 0; i < a->n_remote; i++)
        ipc_put_str(payload, a->remote[i]);
}

/* Reads one string of at most max bytes; NULL on failure. */
static char *get_text_max(struct ipc_reader *rd, size_t max)
{
    struct slice s = ipc_get_bytes(rd);
    if (rd->failed || !text_ok(s, max)) {
        rd->failed = true;
        return NULL;
    }
    return slice_strdup(s);
}

static char *get_text(struct ipc_reader *rd)
{
    return get_text_max(rd, DIRECTORY_PROTO_MAX_KEY);
}

/* A count of entries of at least min_bytes each: never more than what is left. */
static size_t get_count(struct ipc_reader *rd, size_t min_bytes)
{
    uint64_t n = ipc_get_u64(rd);
    if (rd->failed || n > rd->left / min_bytes) {
        rd->failed = true;
        return 0;
    }
    return (size_t)n;
}

int directory_proto_get_answer(const void *payload, size_t len, uint64_t *id_r,
                               struct directory_answer *a)
{
    memset(a, 0, sizeof(*a));
    struct ipc_reader rd;
    ipc_reader_init(&rd, payload, len);
    *id_r = ipc_get_u64(&rd);
    uint64_t status = ipc_get_u64(&rd);
    uint64_t kind = ipc_get_u64(&rd);
    uint64_t flags = ipc_get_u64(&rd);
    a->quota_bytes = ipc_get_u64(&rd);
    a->quota_messages = ipc_get_u64(&rd);
    if (rd.failed || status > DIRECTORY_LOOKUP_TEMPFAIL || kind > DIRECTORY_NO_SUCH_USER ||
        (flags & ~(uint64_t)(DIRECTORY_FLAG_LOOP | DIRECTORY_FLAG_NO_SECRET)) != 0)
        return -1;
    a->status = (enum directory_lookup_status)status;
    a->kind = (enum directory_resolve_kind)kind;
    a->loop = (flags & DIRECTORY_FLAG_LOOP) != 0;
    a->no_secret = (flags & DIRECTORY_FLAG_NO_SECRET) != 0;
    a->home = get_text(&rd);
    a->dn = get_text(&rd);
    a->secret = get_text_max(&rd, DIRECTORY_PROTO_MAX_SECRET);
    size_t n = get_count(&rd, 8); /* two strings of at least 4 bytes each */
    if (rd.failed)
        return -1;
    a->accounts = xcalloc(n ? n : 1, sizeof(char *));
    a->folders = xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n && !rd.failed; i++) {
        a->accounts[i] = get_text(&rd);
        a->folders[i] = get_text(&rd);
        a->n_targets = i + 1;
    }
    n = get_count(&rd, 4);
    if (rd.failed)
        return -1;
    a->remote = xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n && !rd.failed; i++) {
        a->remote[i] = get_text(&rd);
        a->n_remote = i + 1;
    }
    return ipc_reader_done(&rd) ? 0 : -1;
}
