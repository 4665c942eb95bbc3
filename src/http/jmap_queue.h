/*
 * jmap_queue.h - the http worker's side of EmailSubmission: the sender rule
 * and the spool (struct jmap_submit's functions, ctx a struct jmap_queue).
 */
#ifndef WHARF_HTTP_JMAP_QUEUE_H
#define WHARF_HTTP_JMAP_QUEUE_H

#include "base/config.h"
#include "directory/directory_client.h"
#include "http/jmap.h"

struct jmap_queue {
    const struct wharf_config *cfg;
    struct directory_client *dir; /* the worker's directory client */
    void (*publish)(void *ctx, const struct ipc_event *ev);
    void *publish_ctx;
};

int jmap_queue_sender_ok(void *ctx, const char *user, const char *from);
int jmap_queue_enqueue(void *ctx, const char *user, const char *from, const char *const *rcpts,
                       size_t n, struct slice data, struct buf *id_r, struct buf *err);

#endif
