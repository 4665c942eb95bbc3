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
    fprintf(stderr, "usage: wharf queue list [--json]\n"
                    "       wharf queue show ID [--body|--json]\n"
                    "       wharf queue flush|hold|release|delete|requeue ID...|ALL\n");
    return EX_USAGE;
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
    if (argc < 2)
        return usage();
    const char *sub = argv[1];
    if (strcmp(sub, "list") == 0)
        return cmd_mailq(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0) {
        bool json = argc == 4 && strcmp(argv[3], "--json") == 0;
        if (argc < 3 || argc > 4 || (argc == 4 && !json && strcmp(argv[3], "--body") != 0))
            return usage();
        return queue_show(ctx, argv[2], argc == 4 && !json, json);
    }
    return queue_act(ctx, sub, argc - 2, argv + 2);
}
