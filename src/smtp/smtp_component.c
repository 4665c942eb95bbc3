/*
 * smtp_component.c - the smtp worker process: serves 25 (MX), 587
 * (submission) and 465 (smtps) on the sockets wharfd passed, many sessions
 * per process over the shared net runtime.
 *
 * Must never: bind a socket, or run as root past net_worker_new.
 */
#include "smtp/smtp.h"

#include "base/alloc.h"
#include "base/log.h"
#include "net/net_proxy.h"
#include "smtp/smtp_server.h"
#include "auth/auth_client.h"
#include "smtp/smtp_checks.h"

#include <event2/event.h>

#include <string.h>
#include <sysexits.h>

static void smtp_status(void *arg, json_t *obj)
{
    struct smtp_server *srv = arg;
    uint64_t batches, messages;
    smtp_commit_stats(srv->commit, &batches, &messages);
    json_object_set_new(obj, "sessions", json_integer((json_int_t)srv->sessions));
    json_object_set_new(obj, "queued", json_integer((json_int_t)srv->queued));
    json_object_set_new(obj, "rejected", json_integer((json_int_t)srv->rejected));
    json_object_set_new(obj, "spool_batches", json_integer((json_int_t)batches));
    smtp_policy_status(srv->policy, obj);
}

static int smtp_main(struct component_ctx *ctx)
{
    const struct wharf_config *cfg = ctx->cfg;
    enum dotread_newline nl;
    if (strcmp(cfg->smtp_bare_newline, "reject") == 0)
        nl = DOTREAD_NEWLINE_REJECT;
    else if (strcmp(cfg->smtp_bare_newline, "normalize") == 0)
        nl = DOTREAD_NEWLINE_NORMALIZE;
    else
        log_fatal(EX_CONFIG, "smtp_bare_newline must be reject or normalize, not '%s'",
                  cfg->smtp_bare_newline);

    struct net_worker *w = net_worker_new(ctx);
    struct smtp_server srv = {
        .w = w,
        .cfg = cfg,
        .limits =
            {
                .max_size = cfg->smtp_max_message_size,
                .max_line = (size_t)cfg->smtp_max_data_line_length,
                .max_header = (size_t)cfg->smtp_max_header_size,
                .newline = nl,
            },
    };
    struct buf err = BUF_INIT;
    if (spool_init(cfg, &err) != 0)
        log_fatal(EX_CANTCREAT, "%s", buf_cstr(&err));
    buf_free(&err);
    srv.policy = smtp_policy_new(net_worker_base(w), cfg);
    srv.commit = smtp_commit_new(net_worker_base(w), cfg, cfg->smtp_spool_group_commit);
    srv.auth = auth_client_new(net_worker_base(w), cfg);
    srv.checks = smtp_checks_new(net_worker_base(w), cfg, &err);
    if (srv.checks == NULL)
        log_fatal(EX_CONFIG, "%s", buf_cstr(&err));
    static const struct {
        const char *name;
        enum smtp_service_kind kind;
        enum net_tls_mode tls;
    } svcs[] = {
        {"smtp", SMTP_SERVICE_MX, NET_TLS_STARTTLS},
        {"submission", SMTP_SERVICE_SUBMISSION, NET_TLS_STARTTLS},
        {"smtps", SMTP_SERVICE_SMTPS, NET_TLS_IMPLICIT},
    };
    struct smtp_service service[3];
    struct net_service_limits lim = {
        .idle_timeout_ms = cfg->smtp_command_timeout,
        .refuse_line = NULL,
    };
    struct buf refuse = BUF_INIT;
    buf_printf(&refuse, "421 4.7.0 %s Error: too many connections from your address\r\n",
               cfg->myhostname);
    lim.refuse_line = buf_cstr(&refuse);
    /* submission and smtps are for users, who log in: a client that does not
     * within submission_login_timeout holds a slot for nothing (slowloris) */
    struct net_service_limits sub_lim = lim;
    sub_lim.login_timeout_ms = cfg->submission_login_timeout;
    size_t served = 0;
    for (size_t i = 0; i < 3; i++) {
        service[i] = (struct smtp_service){.srv = &srv, .kind = svcs[i].kind};
        if (net_worker_serve(w, svcs[i].name, svcs[i].tls, &smtp_session_proto, &service[i],
                             svcs[i].kind == SMTP_SERVICE_MX ? &lim : &sub_lim))
            served++;
    }
    buf_free(&refuse);
    if (served == 0)
        log_warning("no smtp listener was passed to this worker");
    net_worker_set_status(w, smtp_status, &srv);
    log_info("smtp worker %u/%u ready (%zu services)", ctx->worker_index + 1, ctx->n_workers,
             served);
    int rc = net_worker_run(w);
    smtp_commit_free(srv.commit);
    smtp_checks_free(srv.checks);
    auth_client_free(srv.auth);
    smtp_policy_free(srv.policy);
    net_worker_free(w);
    return rc;
}

/* The checks' options (actions, milters, DNS lists, the public suffix list), parsed
 * by building the checks once on a loop that never runs. */
static int smtp_check_config(const struct wharf_config *cfg, struct buf *err)
{
    struct event_base *base = event_base_new();
    if (base == NULL) {
        buf_printf(err, "cannot create an event loop");
        return -1;
    }
    struct smtp_checks *c = smtp_checks_new(base, cfg, err);
    smtp_checks_free(c);
    event_base_free(base);
    if (c == NULL)
        return -1;
    return net_proxy_check_config(cfg, err); /* the front-end's options */
}

static const char *const smtp_sandbox_data[] = {"spool", NULL};

const struct component_def smtp_component = {
    .name = "smtp",
    .exchange_name = "SMTP",
    .kind = COMPONENT_WORKERS,
    .main = smtp_main,
    .job = "receive mail: MX on 25, submission with AUTH on 587 and 465",
    .sandbox_data = smtp_sandbox_data, /* the queue it writes accepted mail to */
    .check_config = smtp_check_config,
};
