/*
 * cmd_queue.c - `wharf queue list|show|flush|hold|release|delete|requeue`:
 * look at and steer the mail queue (Postfix: mailq, postcat -q, postqueue -f,
 * postsuper -h/-H/-d/-r).
 *
 * While wharfd runs, changes are asked of the mta over the bus (IPC_EVENT_QUEUE_CTL, ipc/event.h),
 * because the mta is the only writer of queue entries; they happen
 * asynchronously, a moment later. When wharfd is stopped, the spool is changed
 * here directly (the files keep their owner). Never writes an entry while the
 * mta may be writing it, and never prints message bytes that are not asked for
 * (`show` without --body prints the envelope only).
 */
#include "cli/cli.h"

#include "base/buf.h"
#include "ipc/control.h"
#include "ipc/event.h"
#include "spool/spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

static int usage(void)
{
    fprintf(stderr, "usage: wharf queue [nexthops] [--json]\n"
                    "       wharf queue list [--json]\n"
                    "       wharf queue show ID [--body|--json]\n"
                    "       wharf queue flush|hold|release|delete|requeue ID...|ALL\n"
                    "       wharf queue flush|hold|release|delete|requeue --nexthop NEXTHOP\n");
    return EX_USAGE;
}

/* Reads every entry of the spool into *v (entries finished or damaged meanwhile left out). */
static int queue_read_all(struct cli_ctx *ctx, struct spool_message **v_r, size_t *n_r)
{
    char **ids;
    size_t n, k = 0;
    struct buf err = BUF_INIT;
    if (spool_list(ctx->cfg, &ids, &n, &err) != 0) {
        fprintf(stderr, "queue: %s\n", buf_cstr(&err));
        buf_free(&err);
        return errno == EACCES ? EX_NOPERM : EX_IOERR;
    }
    struct spool_message *v = calloc(n ? n : 1, sizeof(*v));
    if (v == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        buf_reset(&err);
        if (spool_read(ctx->cfg, ids[i], &v[k], &err) == 0)
            k++;
    }
    spool_list_free(ids, n);
    buf_free(&err);
    *v_r = v;
    *n_r = k;
    return 0;
}

/* The queue a pending recipient waits in (spool_rcpt.via), "none" before its first
 * outbound attempt (a local recipient, or one not tried yet). */
static const char *rcpt_queue(const struct spool_rcpt *r)
{
    return r->via ? r->via : "none";
}

/*
 * `wharf queue [nexthops] [--json]`: the queue by next hop (doc/mta-out.md, "Queues by next
 * hop"): each next hop with its entries, recipients, the reasons they wait and their ids.
 * An entry with recipients at two next hops is in both queues (as in Exchange); within one
 * queue it is counted once.
 */
static int queue_nexthops(struct cli_ctx *ctx, bool json)
{
    struct spool_message *v;
    size_t n;
    int rc = queue_read_all(ctx, &v, &n);
    if (rc != 0)
        return rc;
    json_t *hops = json_object(); /* next hop -> {entries, recipients, reasons, queue_ids} */
    json_t *order = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct spool_envelope *e = &v[i].env;
        for (size_t j = 0; j < e->n_rcpts; j++) {
            const struct spool_rcpt *r = &e->rcpts[j];
            if (r->state != SPOOL_RCPT_PENDING)
                continue;
            const char *name = rcpt_queue(r);
            json_t *h = json_object_get(hops, name);
            if (h == NULL) {
                h = json_pack("{s:s, s:i, s:i, s:o, s:o}", "next_hop", name, "entries", 0,
                              "recipients", 0, "reasons", json_object(), "queue_ids", json_array());
                json_object_set_new(hops, name, h);
                json_array_append(order, h);
            }
            json_t *qids = json_object_get(h, "queue_ids");
            size_t nq = json_array_size(qids);
            if (nq == 0 || strcmp(json_string_value(json_array_get(qids, nq - 1)), e->id) != 0) {
                json_array_append_new(qids, json_string(e->id));
                json_object_set_new(
                    h, "entries",
                    json_integer(json_integer_value(json_object_get(h, "entries")) + 1));
            }
            json_object_set_new(
                h, "recipients",
                json_integer(json_integer_value(json_object_get(h, "recipients")) + 1));
            const char *why = r->waits ? r->waits : e->hold ? "on hold" : "not tried yet";
            json_t *reasons = json_object_get(h, "reasons");
            json_object_set_new(
                reasons, why, json_integer(json_integer_value(json_object_get(reasons, why)) + 1));
        }
        spool_message_free(&v[i]);
    }
    free(v);
    if (json) {
        json_t *o = json_pack("{s:O}", "next_hops", order);
        cli_print_json(o);
        json_decref(o);
    } else if (json_array_size(order) == 0) {
        printf("Mail queue is empty\n");
    } else {
        size_t k;
        json_t *h;
        json_array_foreach(order, k, h)
        {
            json_int_t ne = json_integer_value(json_object_get(h, "entries"));
            json_int_t nr = json_integer_value(json_object_get(h, "recipients"));
            printf("%s: %lld entr%s, %lld recipient%s\n",
                   json_string_value(json_object_get(h, "next_hop")), (long long)ne,
                   ne == 1 ? "y" : "ies", (long long)nr, nr == 1 ? "" : "s");
            const char *why;
            json_t *cnt;
            json_object_foreach(json_object_get(h, "reasons"), why, cnt)
                printf("  (%s) x%lld\n", why, (long long)json_integer_value(cnt));
            size_t q;
            json_t *id;
            json_array_foreach(json_object_get(h, "queue_ids"), q, id)
                printf("  %s\n", json_string_value(id));
        }
    }
    json_decref(order);
    json_decref(hops);
    return 0;
}

/* The ids of the entries with a pending recipient in the queue of next hop hop. */
static int queue_ids_at(struct cli_ctx *ctx, const char *hop, char ***ids_r, size_t *n_r)
{
    struct spool_message *v;
    size_t n, k = 0;
    int rc = queue_read_all(ctx, &v, &n);
    if (rc != 0)
        return rc;
    char **ids = calloc(n ? n : 1, sizeof(*ids));
    if (ids == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        const struct spool_envelope *e = &v[i].env;
        bool at = false;
        for (size_t j = 0; j < e->n_rcpts && !at; j++)
            at = e->rcpts[j].state == SPOOL_RCPT_PENDING &&
                 strcmp(rcpt_queue(&e->rcpts[j]), hop) == 0;
        if (at && (ids[k] = strdup(e->id)) != NULL)
            k++;
        spool_message_free(&v[i]);
    }
    free(v);
    *ids_r = ids;
    *n_r = k;
    return 0;
}

/* `queue show ID --json`: the envelope as one object (the admin API's GET /admin/queue/ID). */
static void queue_show_json(const struct spool_message *m)
{
    const struct spool_envelope *e = &m->env;
    json_t *rcpts = json_array();
    for (size_t i = 0; i < e->n_rcpts; i++)
        json_array_append_new(rcpts, json_pack("{s:s, s:s, s:s?}", "address", e->rcpts[i].address,
                                               "state", spool_rcpt_state_name(e->rcpts[i].state),
                                               "orcpt", e->rcpts[i].orcpt));
    json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s?, s:s, s:i, s:I, s:s?, s:s?, s:o}",
                          "queue_id", e->id, "arrival", (json_int_t)e->arrival, "size",
                          (json_int_t)m->data.len, "sender", e->sender, "client",
                          e->client ? e->client : "", "auth_user", e->auth_user, "state",
                          e->hold       ? "hold"
                          : e->attempts ? "deferred"
                                        : "active",
                          (int)e->attempts, "next_attempt", (json_int_t)(e->next_attempt / 1000),
                          "reason", e->last_reason, "tls_policy", e->last_tls, "recipients", rcpts);
    cli_print_json(o);
    json_decref(o);
}

static int queue_show(struct cli_ctx *ctx, const char *id, bool body, bool json)
{
    struct spool_message m;
    struct buf err = BUF_INIT;
    if (spool_read(ctx->cfg, id, &m, &err) != 0) {
        fprintf(stderr, "queue show: %s\n", buf_cstr(&err));
        buf_free(&err);
        return EX_NOINPUT;
    }
    buf_free(&err);
    if (json) {
        queue_show_json(&m);
        spool_message_free(&m);
        return 0;
    }
    const struct spool_envelope *e = &m.env;
    char date[64];
    time_t t = (time_t)e->arrival;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("queue_id: %s\narrival: %s\nsize: %zu\nsender: <%s>\nclient: %s\n", e->id, date,
           m.data.len, e->sender, e->client ? e->client : "");
    if (e->auth_user)
        printf("auth_user: %s\n", e->auth_user);
    printf("state: %s\nattempts: %u\n",
           e->hold       ? "hold"
           : e->attempts ? "deferred"
                         : "active",
           e->attempts);
    if (e->next_attempt) {
        t = (time_t)(e->next_attempt / 1000);
        gmtime_r(&t, &tm);
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
        printf("next_attempt: %s\n", date);
    }
    if (e->last_reason)
        printf("reason: %s\n", e->last_reason);
    if (e->last_tls)
        printf("tls_policy: %s\n", e->last_tls);
    for (size_t i = 0; i < e->n_rcpts; i++)
        printf("recipient: <%s> %s%s%s\n", e->rcpts[i].address,
               spool_rcpt_state_name(e->rcpts[i].state), e->rcpts[i].orcpt ? " orcpt=" : "",
               e->rcpts[i].orcpt ? e->rcpts[i].orcpt : "");
    if (body) {
        printf("\n");
        fflush(stdout);
        fwrite(m.data.data, 1, m.data.len, stdout);
    }
    spool_message_free(&m);
    return 0;
}

/* wharfd is stopped: change the file here, keeping its owner for the mta. */
static int act_offline(struct cli_ctx *ctx, const char *id, bool del, enum spool_ctl c)
{
    struct buf err = BUF_INIT;
    int rc;
    if (del)
        rc = spool_delete(ctx->cfg, id, &err);
    else {
        char *dir = config_data_path(ctx->cfg, "spool");
        struct buf path = BUF_INIT;
        buf_printf(&path, "%s/queue/%s", dir, id);
        struct stat st;
        bool have = stat(buf_cstr(&path), &st) == 0;
        rc = spool_control(ctx->cfg, id, c, &err);
        if (rc == 0 && have && chown(buf_cstr(&path), st.st_uid, st.st_gid) != 0 && errno != EPERM)
            fprintf(stderr, "queue: chown %s: %s\n", buf_cstr(&path), strerror(errno));
        buf_free(&path);
        free(dir);
    }
    if (rc != 0)
        fprintf(stderr, "queue: %s: %s\n", id, buf_cstr(&err));
    buf_free(&err);
    return rc;
}

static int queue_act(struct cli_ctx *ctx, const char *action, int n, char **ids)
{
    bool del = strcmp(action, "delete") == 0;
    enum spool_ctl c = SPOOL_CTL_FLUSH;
    if ((!del && !spool_ctl_parse(action, &c)) || n == 0)
        return usage();
    int status = 0;
    for (int i = 0; i < n; i++) {
        bool all = strcmp(ids[i], "ALL") == 0;
        struct spool_message m; /* the id must name an entry (spool_read checks its syntax) */
        struct buf err = BUF_INIT;
        if (!all && spool_read(ctx->cfg, ids[i], &m, &err) != 0) {
            fprintf(stderr, "queue: %s: %s\n", ids[i], buf_cstr(&err));
            buf_free(&err);
            status = EX_NOINPUT;
            continue;
        }
        if (!all)
            spool_message_free(&m);
        buf_free(&err);
        struct ipc_event ev = {
            .type = IPC_EVENT_QUEUE_CTL,
            .u.queue_ctl = {.action = del ? IPC_QUEUE_DELETE : (enum ipc_queue_action)c,
                            .queue_id = all ? NULL : ids[i]}};
        if (control_notify(ctx->cfg, &ev) == 0)
            printf("%s: %s requested\n", ids[i], action);
        else if (all) {
            char **list;
            size_t k;
            if (spool_list(ctx->cfg, &list, &k, &err) != 0) {
                fprintf(stderr, "queue: %s\n", buf_cstr(&err));
                status = EX_IOERR;
            } else {
                for (size_t j = 0; j < k; j++)
                    if (act_offline(ctx, list[j], del, c) != 0)
                        status = EX_IOERR;
                spool_list_free(list, k);
            }
            buf_free(&err);
        } else if (act_offline(ctx, ids[i], del, c) != 0)
            status = EX_IOERR;
        else
            printf("%s: %s done\n", ids[i], action);
    }
    return status;
}

int cmd_queue(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--json") == 0)
        return argc <= 2 ? queue_nexthops(ctx, argc == 2) : usage();
    const char *sub = argv[1];
    if (strcmp(sub, "nexthops") == 0) {
        bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
        if (argc > 3 || (argc == 3 && !json))
            return usage();
        return queue_nexthops(ctx, json);
    }
    if (strcmp(sub, "list") == 0)
        return cmd_mailq(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0) {
        bool json = argc == 4 && strcmp(argv[3], "--json") == 0;
        if (argc < 3 || argc > 4 || (argc == 4 && !json && strcmp(argv[3], "--body") != 0))
            return usage();
        return queue_show(ctx, argv[2], argc == 4 && !json, json);
    }
    if (argc == 4 && strcmp(argv[2], "--nexthop") == 0) {
        char **ids;
        size_t n;
        int rc = queue_ids_at(ctx, argv[3], &ids, &n);
        if (rc != 0)
            return rc;
        if (n == 0)
            printf("no entry waits for next hop %s\n", argv[3]);
        else
            rc = queue_act(ctx, sub, (int)n, ids);
        spool_list_free(ids, n);
        return rc;
    }
    return queue_act(ctx, sub, argc - 2, argv + 2);
}
