/*
 * event.c - encoding and strict decoding of the bus events, and the
 * subscription table wharfd keeps per process (event.h).
 *
 * Must never accept an event it cannot represent exactly, nor allocate more
 * than the fields' caps allow.
 */
#include "ipc/event.h"
#include "base/alloc.h"
#include "ipc/frame.h"

#include <stdlib.h>
#include <string.h>

#define MAX_STRINGS 3 /* the most string fields of one event type */

static const char *const type_names[] = {
    [IPC_EVENT_MAILBOX_CHANGED] = "mailbox-changed",
    [IPC_EVENT_MAILBOX_LIST] = "mailbox-list",
    [IPC_EVENT_SPOOL_NEW] = "spool-new",
    [IPC_EVENT_QUEUE_CTL] = "queue-ctl",
    [IPC_EVENT_TEST_HOOK] = "test-hook",
    [IPC_EVENT_EVICT_IDLE] = "evict-idle",
};

const char *ipc_event_type_name(enum ipc_event_type type)
{
    if (type < 1 || type > IPC_EVENT_TYPE_MAX)
        return "unknown";
    return type_names[type];
}

const char *ipc_event_owner(const struct ipc_event *ev)
{
    switch (ev->type) {
    case IPC_EVENT_MAILBOX_CHANGED:
        return ev->u.mailbox_changed.owner;
    case IPC_EVENT_MAILBOX_LIST:
        return ev->u.mailbox_list.owner;
    default:
        return NULL;
    }
}

static void put_opt(struct buf *b, const char *s)
{
    ipc_put_str(b, s ? s : "");
}

void ipc_event_encode(struct buf *out, const struct ipc_event *ev)
{
    ipc_put_u64(out, (uint64_t)ev->type);
    switch (ev->type) {
    case IPC_EVENT_MAILBOX_CHANGED: {
        const struct ipc_event_mailbox_changed *e = &ev->u.mailbox_changed;
        ipc_put_str(out, e->owner);
        ipc_put_str(out, e->mailbox);
        ipc_put_u64(out, e->account_state);
        break;
    }
    case IPC_EVENT_MAILBOX_LIST: {
        const struct ipc_event_mailbox_list *e = &ev->u.mailbox_list;
        ipc_put_str(out, e->owner);
        ipc_put_u64(out, (uint64_t)e->change);
        ipc_put_str(out, e->name);
        put_opt(out, e->change == IPC_LIST_RENAMED ? e->old_name : NULL);
        ipc_put_u64(out, e->account_state);
        break;
    }
    case IPC_EVENT_SPOOL_NEW:
        ipc_put_str(out, ev->u.spool_new.queue_id);
        break;
    case IPC_EVENT_QUEUE_CTL:
        ipc_put_u64(out, (uint64_t)ev->u.queue_ctl.action);
        put_opt(out, ev->u.queue_ctl.queue_id);
        break;
    case IPC_EVENT_TEST_HOOK:
        ipc_put_str(out, ev->u.test_hook.component);
        ipc_put_str(out, ev->u.test_hook.action);
        break;
    case IPC_EVENT_EVICT_IDLE:
        ipc_put_str(out, ev->u.evict_idle.service);
        ipc_put_u64(out, ev->u.evict_idle.slot);
        ipc_put_str(out, ev->u.evict_idle.client);
        break;
    case IPC_EVENT_NONE:
        break;
    }
}

/* ---- decoding ---- */

/* A string field: non-empty unless allow_empty, at most max bytes, no NUL. */
static bool text_ok(struct slice s, size_t max, bool allow_empty)
{
    return (allow_empty || s.len > 0) && s.len <= max &&
           (s.len == 0 || memchr(s.ptr, '\0', s.len) == NULL);
}

static bool queue_id_ok(struct slice id)
{
    if (id.len == 0 || id.len > IPC_EVENT_QUEUE_ID_MAX)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        char c = id.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return false;
    }
    return true;
}

/* The decoder's string fields, copied into one allocation once all are valid. */
struct strings {
    struct slice s[MAX_STRINGS];
    const char **dst[MAX_STRINGS];
    size_t n;
};

static void want(struct strings *st, struct slice s, const char **dst)
{
    st->s[st->n] = s;
    st->dst[st->n] = dst;
    st->n++;
}

static void copy_strings(struct strings *st, struct ipc_event *ev)
{
    size_t total = 0;
    for (size_t i = 0; i < st->n; i++)
        total += st->s[i].len + 1;
    char *p = xmalloc(total ? total : 1);
    ev->owned_ = p;
    for (size_t i = 0; i < st->n; i++) {
        if (st->s[i].len)
            memcpy(p, st->s[i].ptr, st->s[i].len);
        p[st->s[i].len] = '\0';
        *st->dst[i] = p;
        p += st->s[i].len + 1;
    }
}

static const char *decode_fields(struct ipc_reader *r, struct ipc_event *ev, struct strings *st)
{
    switch (ev->type) {
    case IPC_EVENT_MAILBOX_CHANGED: {
        struct ipc_event_mailbox_changed *e = &ev->u.mailbox_changed;
        struct slice owner = ipc_get_bytes(r), mailbox = ipc_get_bytes(r);
        e->account_state = ipc_get_u64(r);
        if (r->failed)
            return "short or truncated fields";
        if (!text_ok(owner, IPC_EVENT_OWNER_MAX, false) ||
            !text_ok(mailbox, IPC_EVENT_MAILBOX_MAX, false))
            return "bad owner or mailbox name";
        want(st, owner, &e->owner);
        want(st, mailbox, &e->mailbox);
        return NULL;
    }
    case IPC_EVENT_MAILBOX_LIST: {
        struct ipc_event_mailbox_list *e = &ev->u.mailbox_list;
        struct slice owner = ipc_get_bytes(r);
        uint64_t change = ipc_get_u64(r);
        struct slice name = ipc_get_bytes(r), old = ipc_get_bytes(r);
        e->account_state = ipc_get_u64(r);
        if (r->failed)
            return "short or truncated fields";
        if (change > IPC_LIST_UNSUBSCRIBED)
            return "unknown mailbox-list change";
        e->change = (enum ipc_mailbox_list_change)change;
        bool renamed = e->change == IPC_LIST_RENAMED;
        if (!text_ok(owner, IPC_EVENT_OWNER_MAX, false) ||
            !text_ok(name, IPC_EVENT_MAILBOX_MAX, false) ||
            !text_ok(old, IPC_EVENT_MAILBOX_MAX, !renamed) || (!renamed && old.len > 0))
            return "bad owner or mailbox name";
        want(st, owner, &e->owner);
        want(st, name, &e->name);
        if (renamed)
            want(st, old, &e->old_name);
        return NULL;
    }
    case IPC_EVENT_SPOOL_NEW: {
        struct slice id = ipc_get_bytes(r);
        if (r->failed)
            return "short or truncated fields";
        if (!queue_id_ok(id))
            return "bad queue id";
        want(st, id, &ev->u.spool_new.queue_id);
        return NULL;
    }
    case IPC_EVENT_QUEUE_CTL: {
        uint64_t action = ipc_get_u64(r);
        struct slice id = ipc_get_bytes(r);
        if (r->failed)
            return "short or truncated fields";
        if (action > IPC_QUEUE_DELETE)
            return "unknown queue action";
        ev->u.queue_ctl.action = (enum ipc_queue_action)action;
        if (id.len > 0 && !queue_id_ok(id))
            return "bad queue id";
        if (id.len > 0)
            want(st, id, &ev->u.queue_ctl.queue_id);
        return NULL;
    }
    case IPC_EVENT_TEST_HOOK: {
        struct slice component = ipc_get_bytes(r), action = ipc_get_bytes(r);
        if (r->failed)
            return "short or truncated fields";
        if (!text_ok(component, IPC_EVENT_WORD_MAX, false) ||
            !text_ok(action, IPC_EVENT_WORD_MAX, false))
            return "bad component or action";
        want(st, component, &ev->u.test_hook.component);
        want(st, action, &ev->u.test_hook.action);
        return NULL;
    }
    case IPC_EVENT_EVICT_IDLE: {
        struct ipc_event_evict_idle *e = &ev->u.evict_idle;
        struct slice service = ipc_get_bytes(r);
        e->slot = ipc_get_u64(r);
        struct slice client = ipc_get_bytes(r);
        if (r->failed)
            return "short or truncated fields";
        if (!text_ok(service, IPC_EVENT_WORD_MAX, false) ||
            !text_ok(client, IPC_EVENT_WORD_MAX, false))
            return "bad service or client";
        want(st, service, &e->service);
        want(st, client, &e->client);
        return NULL;
    }
    case IPC_EVENT_NONE:
        break;
    }
    return "unknown event type";
}

int ipc_event_decode(const void *payload, size_t len, struct ipc_event *ev, const char **why_r)
{
    memset(ev, 0, sizeof(*ev));
    struct ipc_reader r;
    ipc_reader_init(&r, payload, len);
    uint64_t type = ipc_get_u64(&r);
    const char *why = NULL;
    struct strings st = {.n = 0};
    if (r.failed)
        why = "short or truncated fields";
    else if (type < 1 || type > IPC_EVENT_TYPE_MAX)
        why = "unknown event type";
    else {
        ev->type = (enum ipc_event_type)type;
        why = decode_fields(&r, ev, &st);
    }
    if (why == NULL && !ipc_reader_done(&r))
        why = "trailing bytes";
    if (why != NULL) {
        memset(ev, 0, sizeof(*ev));
        *why_r = why;
        return -1;
    }
    copy_strings(&st, ev);
    return 0;
}

void ipc_event_clear(struct ipc_event *ev)
{
    free(ev->owned_);
    memset(ev, 0, sizeof(*ev));
}

/* ---- subscriptions ---- */

void ipc_subscribe_encode(struct buf *out, enum ipc_event_type type, enum ipc_subscribe_op op,
                          const char *owner)
{
    ipc_put_u64(out, (uint64_t)type);
    ipc_put_u64(out, (uint64_t)op);
    put_opt(out, owner);
}

static size_t find_owner(const struct ipc_subscriptions *subs, enum ipc_event_type type,
                         struct slice owner)
{
    for (size_t i = 0; i < subs->n_owners; i++)
        if (subs->owners[i].type == type && slice_eq(slice_from_cstr(subs->owners[i].owner), owner))
            return i;
    return subs->n_owners;
}

static void drop_owner(struct ipc_subscriptions *subs, size_t i)
{
    free(subs->owners[i].owner);
    subs->owners[i] = subs->owners[--subs->n_owners];
}

int ipc_subscriptions_apply(struct ipc_subscriptions *subs, const void *payload, size_t len,
                            const char **why_r)
{
    struct ipc_reader r;
    ipc_reader_init(&r, payload, len);
    uint64_t type = ipc_get_u64(&r), op = ipc_get_u64(&r);
    struct slice owner = ipc_get_bytes(&r);
    if (!ipc_reader_done(&r)) {
        *why_r = r.failed ? "short or truncated fields" : "trailing bytes";
        return -1;
    }
    if (type < 1 || type > IPC_EVENT_TYPE_MAX) {
        *why_r = "unknown event type";
        return -1;
    }
    bool names_owner = op == IPC_SUBSCRIBE_OWNER || op == IPC_UNSUBSCRIBE_OWNER;
    if (op > IPC_UNSUBSCRIBE_OWNER || !text_ok(owner, IPC_EVENT_OWNER_MAX, !names_owner) ||
        (!names_owner && owner.len > 0)) {
        *why_r = "bad operation or owner";
        return -1;
    }
    enum ipc_event_type t = (enum ipc_event_type)type;
    uint64_t bit = UINT64_C(1) << t;
    size_t i = find_owner(subs, t, owner);
    switch ((enum ipc_subscribe_op)op) {
    case IPC_SUBSCRIBE_NONE:
        subs->all &= ~bit;
        for (size_t j = subs->n_owners; j-- > 0;)
            if (subs->owners[j].type == t)
                drop_owner(subs, j);
        break;
    case IPC_SUBSCRIBE_ALL:
        subs->all |= bit;
        break;
    case IPC_SUBSCRIBE_OWNER:
        if (i == subs->n_owners) {
            subs->owners = xreallocarray(subs->owners, subs->n_owners + 1, sizeof(*subs->owners));
            subs->owners[subs->n_owners++] = (struct ipc_owner_sub){t, slice_strdup(owner)};
        }
        break;
    case IPC_UNSUBSCRIBE_OWNER:
        if (i < subs->n_owners)
            drop_owner(subs, i);
        break;
    }
    return 0;
}

bool ipc_subscriptions_match(const struct ipc_subscriptions *subs, const struct ipc_event *ev)
{
    if (ev->type < 1 || ev->type > IPC_EVENT_TYPE_MAX)
        return false;
    if (subs->all & (UINT64_C(1) << ev->type))
        return true;
    const char *owner = ipc_event_owner(ev);
    if (owner == NULL)
        return false;
    for (size_t i = 0; i < subs->n_owners; i++)
        if (subs->owners[i].type == ev->type && strcmp(subs->owners[i].owner, owner) == 0)
            return true;
    return false;
}

void ipc_subscriptions_free(struct ipc_subscriptions *subs)
{
    for (size_t i = 0; i < subs->n_owners; i++)
        free(subs->owners[i].owner);
    free(subs->owners);
    memset(subs, 0, sizeof(*subs));
}
