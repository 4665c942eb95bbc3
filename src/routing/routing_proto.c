/*
 * routing_proto.c - frames of the routing engine on 691 (routing_proto.h):
 * strict decoding and encoding on the IPC frame kit (ipc/frame.h).
 *
 * Must never: accept trailing bytes, a field of the wrong length, or records
 * route_record_valid refuses.
 */
#include "routing/routing_proto.h"

#include "routing/org.h"
#include "routing/route.h"

#include <string.h>

static bool name_slice(struct slice s)
{
    if (s.len == 0 || s.len > ORG_NAME_MAX)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static json_t *json_of(struct slice s, struct buf *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(s.ptr, s.len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        buf_printf(err, "bad JSON: %s", jerr.text);
    return j;
}

static bool decode_update(struct routing_msg *m, struct buf *err)
{
    m->json = json_of(m->a, err);
    if (m->json == NULL)
        return false;
    if (!json_is_array(m->json) || json_array_size(m->json) == 0 ||
        json_array_size(m->json) > ROUTING_MAX_RECORDS) {
        buf_printf(err, "UPDATE: 1 to %d records", ROUTING_MAX_RECORDS);
        return false;
    }
    size_t i;
    json_t *r;
    json_array_foreach(m->json, i, r)
    {
        if (!route_record_valid(r, err))
            return false;
    }
    return true;
}

static bool decode_report(struct routing_msg *m, struct buf *err)
{
    m->json = json_of(m->a, err);
    if (m->json == NULL)
        return false;
    if (!json_is_array(m->json) || json_array_size(m->json) > 1024) {
        buf_append_cstr(err, "REPORT: a list of server names");
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach(m->json, i, v)
    {
        if (!json_is_string(v) || !org_name_ok(json_string_value(v))) {
            buf_append_cstr(err, "REPORT: a list of server names");
            return false;
        }
    }
    return true;
}

bool routing_msg_decode(const struct ipc_frame *f, struct routing_msg *m, struct buf *err)
{
    memset(m, 0, sizeof(*m));
    m->type = f->type;
    struct ipc_reader r;
    ipc_reader_init(&r, f->payload, f->len);
    struct slice nonce, mac;
    bool ok = true;
    switch (f->type) {
    case ROUTING_HELLO:
        m->a = ipc_get_bytes(&r);
        m->b = ipc_get_bytes(&r);
        nonce = ipc_get_bytes(&r);
        m->u = ipc_get_u64(&r);
        ok = ipc_reader_done(&r) && name_slice(m->a) && name_slice(m->b) &&
             nonce.len == ROUTING_NONCE_LEN;
        if (ok)
            memcpy(m->nonce, nonce.ptr, ROUTING_NONCE_LEN);
        break;
    case ROUTING_AUTH:
        mac = ipc_get_bytes(&r);
        ok = ipc_reader_done(&r) && mac.len == ROUTING_MAC_LEN;
        if (ok)
            memcpy(m->mac, mac.ptr, ROUTING_MAC_LEN);
        break;
    case ROUTING_UPDATE:
    case ROUTING_REPORT:
        m->a = ipc_get_bytes(&r);
        if (!ipc_reader_done(&r))
            break;
        return f->type == ROUTING_UPDATE ? decode_update(m, err) : decode_report(m, err);
    case ROUTING_CONFIG:
        m->a = ipc_get_bytes(&r);
        ok = ipc_reader_done(&r) && m->a.len > 0;
        break;
    case ROUTING_ACK:
        m->a = ipc_get_bytes(&r);
        m->u = ipc_get_u64(&r);
        ok = ipc_reader_done(&r) && name_slice(m->a) && m->u > 0;
        break;
    case ROUTING_KEEPALIVE:
        ok = f->len == 0;
        break;
    case ROUTING_ERROR:
        m->a = ipc_get_bytes(&r);
        m->b = ipc_get_bytes(&r);
        ok = ipc_reader_done(&r) && m->a.len <= 64 && m->b.len <= 1024;
        break;
    default:
        buf_printf(err, "unknown frame type %u", (unsigned)f->type);
        return false;
    }
    if (!ok || !ipc_reader_done(&r))
        buf_printf(err, "malformed frame of type %u", (unsigned)f->type);
    return ok && ipc_reader_done(&r);
}

void routing_msg_clear(struct routing_msg *m)
{
    json_decref(m->json);
    m->json = NULL;
}

static void put(struct buf *out, uint16_t type, const struct buf *payload)
{
    ipc_frame_encode(out, type, payload->data, payload->len);
}

void routing_put_hello(struct buf *out, const char *org, const char *server,
                       const unsigned char nonce[ROUTING_NONCE_LEN], uint64_t serial)
{
    struct buf p = BUF_INIT;
    ipc_put_str(&p, org);
    ipc_put_str(&p, server);
    ipc_put_bytes(&p, nonce, ROUTING_NONCE_LEN);
    ipc_put_u64(&p, serial);
    put(out, ROUTING_HELLO, &p);
    buf_free(&p);
}

void routing_put_auth(struct buf *out, const unsigned char mac[ROUTING_MAC_LEN])
{
    struct buf p = BUF_INIT;
    ipc_put_bytes(&p, mac, ROUTING_MAC_LEN);
    put(out, ROUTING_AUTH, &p);
    buf_free(&p);
}

void routing_put_str(struct buf *out, uint16_t type, const char *s)
{
    struct buf p = BUF_INIT;
    ipc_put_str(&p, s);
    put(out, type, &p);
    buf_free(&p);
}

void routing_put_ack(struct buf *out, const char *group, uint64_t seq)
{
    struct buf p = BUF_INIT;
    ipc_put_str(&p, group);
    ipc_put_u64(&p, seq);
    put(out, ROUTING_ACK, &p);
    buf_free(&p);
}

void routing_put_empty(struct buf *out, uint16_t type)
{
    ipc_frame_encode(out, type, NULL, 0);
}

void routing_put_error(struct buf *out, const char *code, const char *text)
{
    struct buf p = BUF_INIT;
    ipc_put_str(&p, code);
    ipc_put_str(&p, text);
    put(out, ROUTING_ERROR, &p);
    buf_free(&p);
}
