/*
 * component_loop.c - the skeleton of every component process (component_loop.h).
 *
 * Must never: block, or keep a process running past its supervisor (control.c
 * sees to that).
 */
#include "ipc/component_loop.h"
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/log.h"
#include "base/sandbox.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sysexits.h>

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct component_loop *loop = arg;
    if (loop->hooks.shutdown)
        loop->hooks.shutdown(loop->hooks.arg, monotonic_ms() + loop->cfg->shutdown_timeout);
    else
        event_base_loopexit(loop->base, NULL);
}

struct component_loop *component_loop_start(struct component_ctx *ctx,
                                            const struct component_hooks *hooks)
{
    struct component_loop *loop = xcalloc(1, sizeof(*loop));
    loop->ctx = ctx;
    loop->cfg = ctx->cfg;
    loop->hooks = *hooks;
    umask(077);
    struct buf err = BUF_INIT;
    if (datadir_prepare(ctx->cfg, &err) != 0)
        log_fatal(EX_CANTCREAT, "%s", buf_cstr(&err));
    buf_free(&err);
    if (hooks->as_root)
        hooks->as_root(hooks->arg);
    if (hooks->run_as)
        component_drop_privileges_to(hooks->run_as);
    else
        component_drop_privileges(ctx->cfg);
    signal(SIGPIPE, SIG_IGN);
    loop->base = event_base_new();
    if (loop->base == NULL ||
        (hooks->priorities > 1 && event_base_priority_init(loop->base, hooks->priorities) != 0))
        log_fatal(EX_OSERR, "cannot create the event loop");
    struct control_callbacks cb = {.status = hooks->status,
                                   .shutdown = hooks->shutdown,
                                   .event = hooks->event,
                                   .arg = hooks->arg};
    loop->control = control_open(loop->base, ctx, &cb);
    loop->sig_term = evsignal_new(loop->base, SIGTERM, on_signal, loop);
    loop->sig_int = evsignal_new(loop->base, SIGINT, on_signal, loop);
    evsignal_add(loop->sig_term, NULL);
    evsignal_add(loop->sig_int, NULL);
    if (hooks->sandbox) {
        /* From here on, no exec, no ptrace, and only the files the component names. */
        static const char *const none[] = {NULL};
        sandbox_enter(ctx->cfg, ctx->name,
                      ctx->def && ctx->def->sandbox_data ? ctx->def->sandbox_data : none);
    }
    return loop;
}

int component_loop_run(struct component_loop *loop)
{
    event_base_dispatch(loop->base);
    return EX_OK;
}

void component_loop_free(struct component_loop *loop)
{
    if (loop == NULL)
        return;
    control_close(loop->control);
    event_free(loop->sig_term);
    event_free(loop->sig_int);
    event_base_free(loop->base);
    free(loop);
}
