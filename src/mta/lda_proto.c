/*
 * lda_proto.c - the pure parts of `wharf deliver`: line-end conversion, the
 * deliver.sock payloads, user names and exit codes. No I/O here.
 */
#include "mta/lda.h"
#include "base/alloc.h"
#include "ipc/frame.h"

#include <string.h>
#include <sysexits.h>

void lda_crlf(struct slice in, struct buf *out)
{
    size_t start = 0;
    for (size_t i = 0; i < in.len; i++) {
        if (in.ptr[i] != '\n' || (i > 0 && in.ptr[i - 1] == '\r'))
            continue;
        buf_append(out, in.ptr + start, i - start);
        buf_append(out, "\r\n", 2);
        start = i + 1;
    }
    buf_append(out, in.ptr + start, in.len - start);
}

void lda_encode_request(struct buf *out, const char *user, const char *folder, struct slice msg)
{
    ipc_put_str(out, user);
    ipc_put_str(out, folder ? folder : "");
    ipc_put_bytes(out, msg.ptr, msg.len);
}

int lda_decode_request(const void *payload, size_t len, struct slice *user, struct slice *folder,
                       struct slice *msg)
{
    struct ipc_reader r;
    ipc_reader_init(&r, payload, len);
    *user = ipc_get_bytes(&r);
    *folder = ipc_get_bytes(&r);
    *msg = ipc_get_bytes(&r);
    return ipc_reader_done(&r) && user->len > 0 ? 0 : -1;
}

void lda_encode_reply(struct buf *out, int code, const char *text)
{
    ipc_put_u64(out, (uint64_t)code);
    ipc_put_str(out, text);
}

int lda_decode_reply(const void *payload, size_t len, int *code_r, struct slice *text)
{
    struct ipc_reader r;
    ipc_reader_init(&r, payload, len);
    uint64_t code = ipc_get_u64(&r);
    *text = ipc_get_bytes(&r);
    if (!ipc_reader_done(&r) || code > 255)
        return -1;
    *code_r = (int)code;
    return 0;
}

char *lda_user_address(const struct wharf_config *cfg, const char *user)
{
    if (strchr(user, '@') || cfg->mydomains.n == 0)
        return xstrdup(user);
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s@%s", user, cfg->mydomains.v[0]);
    return buf_steal(&b, NULL);
}

int lda_status_code(enum local_status st)
{
    switch (st) {
    case LOCAL_DELIVERED:
    case LOCAL_FORWARDS_PENDING: /* local part done; `wharf deliver` does not relay */
        return EX_OK;
    case LOCAL_NO_USER:
    case LOCAL_LOOP:
    case LOCAL_NOT_LOCAL:
        return EX_NOUSER;
    case LOCAL_TEMPFAIL:
        break;
    }
    return EX_TEMPFAIL;
}
