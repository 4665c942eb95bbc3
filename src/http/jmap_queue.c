/*
 * jmap_queue.c - where EmailSubmission/set hands mail over in the http
 * worker: the sender rule of SMTP submission (the directory must resolve
 * the envelope sender to the logged-in account) and the spool, as an smtp
 * worker writes it (a Received field, fsync'd before the answer), then the
 * bus's spool-new event that wakes the mta.
 *
 * Never queues a message whose file is not durable, and never lets a user
 * send as an address the directory does not give them.
 */
#include "http/jmap_queue.h"
#include "base/alloc.h"
#include "base/date.h"
#include "base/log.h"
#include "spool/spool.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int jmap_queue_sender_ok(void *ctx, const char *user, const char *from)
{
    struct jmap_queue *q = ctx;
    /* an account's own address: what the directory answers for it */
    if (strcasecmp(user, from) == 0)
        return 1;
    if (q->dir == NULL)
        return 0;
    struct directory_answer a;
    int fresh = directory_client_peek(q->dir, DIRECTORY_Q_RECIPIENT, from, &a);
    if (fresh < 0)
        return -1; /* the lookup it started fills the cache for the retry */
    int owned = 0;
    for (size_t i = 0; a.kind == DIRECTORY_LOCAL && i < a.n_targets; i++)
        if (strcasecmp(a.accounts[i], user) == 0)
            owned = 1;
    directory_answer_free(&a);
    return owned;
}

int jmap_queue_enqueue(void *ctx, const char *user, const char *from, const char *const *rcpts,
                       size_t n, struct slice data, struct buf *id_r, struct buf *err)
{
    struct jmap_queue *q = ctx;
    struct spool_message m;
    memset(&m, 0, sizeof(m));
    struct spool_envelope *e = &m.env;
    spool_new_id(e->id);
    e->sender = xstrdup(from);
    e->rcpts = xcalloc(n, sizeof(*e->rcpts));
    e->n_rcpts = n;
    for (size_t i = 0; i < n; i++)
        e->rcpts[i].address = xstrdup(rcpts[i]);
    e->body = SPOOL_BODY_7BIT;
    for (size_t i = 0; i < data.len; i++)
        if ((unsigned char)data.ptr[i] >= 0x80)
            e->body = SPOOL_BODY_8BITMIME;
    e->auth_user = xstrdup(user);
    e->client = xstrdup("jmap");
    time_t now = time(NULL);
    e->arrival = (int64_t)now;
    buf_init(&m.data);
    char date[DATE_RFC5322_SIZE];
    date_rfc5322_format(now, date, sizeof(date));
    buf_printf(&m.data, "Received: by %s (Wharf) with HTTPSA id %s; %s\r\n", q->cfg->myhostname,
               e->id, date);
    buf_append_slice(&m.data, data);
    int rc = spool_write(q->cfg, &m, err);
    if (rc == 0) {
        log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queue active)", e->id, from, m.data.len, n);
        buf_append_cstr(id_r, e->id);
        if (q->publish) {
            struct ipc_event ev = {.type = IPC_EVENT_SPOOL_NEW, .u.spool_new.queue_id = e->id};
            q->publish(q->publish_ctx, &ev);
        }
    }
    spool_message_free(&m);
    return rc;
}
