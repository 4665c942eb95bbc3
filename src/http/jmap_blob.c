/*
 * jmap_blob.c - blobs (RFC 8620 6): upload, download, and the blob ids of
 * Email parts. A blob id is "b" + a body's SHA-256 (an upload or a whole
 * message, the store's content address) or "b" + hash + "." + part number
 * (a part of that message, its transfer encoding undone).
 *
 * A user reads only bodies of their own account (store_account_blob_read
 * checks it), or of an Email in a mailbox shared with them that they may
 * read (download_shared): another account's hash is "not found", never a
 * leak of whether it exists.
 */
#include "http/jmap_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

/* Splits a blob id into its hash and part number (0: the whole body). */
static bool blob_id_parse(const char *id, char hash[65], size_t *part_r)
{
    size_t len = strlen(id);
    if (len < 65 || id[0] != 'b')
        return false;
    for (size_t i = 1; i < 65; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    memcpy(hash, id + 1, 64);
    hash[64] = '\0';
    *part_r = 0;
    if (len == 65)
        return true;
    if (id[65] != '.' || len > 65 + 10 || id[66] < '1' || id[66] > '9')
        return false;
    size_t p = 0;
    for (const char *c = id + 66; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        p = p * 10 + (size_t)(*c - '0');
    }
    *part_r = p;
    return true;
}

/* Part number n (preorder, the root is 1) of msg, or NULL. */
static const struct mime_part *part_nth(const struct mime_part *p, size_t *n)
{
    if (--*n == 0)
        return p;
    if (p->kind == MIME_MULTIPART)
        for (const struct mime_part *c = p->children; c; c = c->next) {
            const struct mime_part *f = part_nth(c, n);
            if (f)
                return f;
        }
    return NULL;
}

int jmap_blob_read(struct jmap *j, const char *user, const char *blob_id, struct buf *out,
                   struct buf *err)
{
    char hash[65];
    size_t part;
    if (!blob_id_parse(blob_id, hash, &part))
        return 1;
    if (part == 0)
        return store_account_blob_read(j->store, user, hash, out, err);
    struct buf whole = BUF_INIT;
    int rc = store_account_blob_read(j->store, user, hash, &whole, err);
    if (rc == 0) {
        struct mime_message msg;
        mime_parse(&msg, buf_slice(&whole), NULL);
        size_t n = part;
        const struct mime_part *p = part_nth(msg.root, &n);
        if (p == NULL || p->kind == MIME_MULTIPART)
            rc = 1;
        else {
            const struct mime_field *f = mime_part_field(&msg, p, "Content-Transfer-Encoding");
            struct buf cte = BUF_INIT;
            if (f)
                mime_unfold(mime_field_value(&msg, f), &cte);
            buf_reset(out);
            mime_decode_cte(buf_slice(&cte), mime_part_body(&msg, p), out);
            buf_free(&cte);
        }
        mime_message_free(&msg);
    }
    buf_free(&whole);
    return rc;
}

void jmap_upload(struct jmap *j, const char *user, const char *account_id, const char *type,
                 struct slice data, json_t **out, int *http_status)
{
    struct buf id = BUF_INIT, err = BUF_INIT;
    jmap_account_id(user, &id);
    if (strcmp(account_id, id.data) != 0) {
        *out = jmap_problem("accountNotFound", 404, "no such account");
        *http_status = 404;
    } else if (data.len > j->limits.max_size_upload) {
        *out = json_pack("{s:s, s:i, s:s, s:s}", "type", "urn:ietf:params:jmap:error:limit",
                         "status", 413, "limit", "maxSizeUpload", "detail",
                         "the blob is larger than maxSizeUpload");
        *http_status = 413;
    } else {
        char hash[65];
        if (store_upload(j->store, user, data, hash, &err) != 0) {
            *out = jmap_problem("serverFail", 500, "the blob could not be stored");
            *http_status = 500;
        } else {
            struct buf bid = BUF_INIT;
            buf_printf(&bid, "b%s", hash);
            *out = json_pack("{s:s, s:s, s:s, s:I}", "accountId", id.data, "blobId", bid.data,
                             "type", type && *type ? type : "application/octet-stream", "size",
                             (json_int_t)data.len);
            *http_status = 201;
            buf_free(&bid);
        }
    }
    buf_free(&id);
    buf_free(&err);
}

/* Reads blob_id of a shared account (account_id) user may see: only the body
 * of an Email with a copy in a mailbox user may read ("r"). 200, 404, 500. */
static int download_shared(struct jmap *j, const char *user, const char *account_id,
                           const char *blob_id, struct buf *data, struct buf *err)
{
    struct jmap_req r = {.j = j, .user = user, .login = user};
    buf_init(&r.account_id);
    buf_init(&r.view_key);
    char hash[65];
    size_t part;
    int status = 404;
    int rc = jmap_account_select(&r, account_id, err);
    if (rc < 0)
        status = 500;
    else if (rc == 0 && r.acl && blob_id_parse(blob_id, hash, &part)) {
        struct store_account_message *c = NULL;
        size_t n = 0;
        if (jmap_account_messages(&r, hash, 0, &c, &n, err) != 0)
            status = 500;
        else if (n > 0) {
            rc = jmap_blob_read(j, r.user, blob_id, data, err);
            status = rc == 0 ? 200 : rc > 0 ? 404 : 500;
        }
        store_account_messages_free(c, n);
    }
    jmap_req_free(&r);
    return status;
}

int jmap_download(struct jmap *j, const char *user, const char *account_id, const char *blob_id,
                  struct buf *data)
{
    struct buf id = BUF_INIT, err = BUF_INIT;
    jmap_account_id(user, &id);
    int status = 404;
    if (strcmp(account_id, id.data) == 0) {
        int rc = jmap_blob_read(j, user, blob_id, data, &err);
        status = rc == 0 ? 200 : rc > 0 ? 404 : 500;
    } else
        status = download_shared(j, user, account_id, blob_id, data, &err);
    buf_free(&id);
    buf_free(&err);
    return status;
}
