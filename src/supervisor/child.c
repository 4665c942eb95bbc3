/*
 * child.c - start-up of a component process re-executed by wharfd.
 *
 * Reads the configuration, picks up the control socket and the listening
 * sockets it was handed (see base/component.h), and calls the component's
 * main. Never binds a socket itself.
 */
#include "supervisor/child.h"
#include "base/alloc.h"
#include "base/log.h"
#include "supervisor/services.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

static void parse_listeners(struct component_ctx *ctx)
{
    const char *env = getenv(COMPONENT_LISTENERS_ENV);
    if (env == NULL || *env == '\0')
        return;
    char *copy = xstrdup(env), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL)
            log_fatal(EX_SOFTWARE, "bad %s entry '%s'", COMPONENT_LISTENERS_ENV, tok);
        *eq = '\0';
        ctx->listeners =
            xreallocarray(ctx->listeners, ctx->n_listeners + 1, sizeof(*ctx->listeners));
        ctx->listeners[ctx->n_listeners++] =
            (struct component_listener){.service = xstrdup(tok), .fd = atoi(eq + 1)};
    }
    free(copy);
}

/* Maps the shared connection table named by WHARF_CONNTAB ("FD/SLOT"); without it, count alone. */
static void attach_conntab(struct component_ctx *ctx)
{
    const char *env = getenv(COMPONENT_CONNTAB_ENV);
    int fd;
    unsigned slot;
    if (env == NULL || *env == '\0')
        return;
    if (sscanf(env, "%d/%u", &fd, &slot) != 2 || fd < 0)
        log_fatal(EX_SOFTWARE, "bad %s '%s'", COMPONENT_CONNTAB_ENV, env);
    struct buf err = BUF_INIT;
    ctx->conntab = conntab_attach(fd, slot, &err);
    if (ctx->conntab == NULL)
        log_error("%s; connection limits are counted by this process alone", buf_cstr(&err));
    ctx->conntab_slot = slot;
    buf_free(&err);
}

/* Fixed so that glibc's dynamic thresholds never take over (see tune_malloc). */
#define CHILD_MMAP_THRESHOLD (256 * 1024)
#define CHILD_TRIM_THRESHOLD (1024 * 1024)

/*
 * Long-lived processes that now and then hold a large temporary buffer (a
 * SELECT of 100,000 messages, a big FETCH answer, a spool batch) must give its
 * memory back. glibc raises its mmap and trim thresholds after the first
 * large mmap'd block is freed (up to 32 MiB and twice that), so from then on
 * such buffers come from the heap and stay there. Fixed thresholds keep large
 * blocks in mmap (unmapped when freed) and trim the heap's free top.
 */
static void tune_malloc(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, CHILD_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, CHILD_TRIM_THRESHOLD);
#endif
}

void child_run(int argc, char **argv)
{
    const char *name = NULL, *config_path = NULL;
    char **assignments = xcalloc((size_t)argc, sizeof(char *));
    size_t n_assign = 0;
    unsigned worker = 0, n_workers = 1;
    bool foreground = getenv("WHARF_LOG_STDERR") != NULL;

    enum { OPT_COMPONENT = 1000, OPT_WORKER };
    static const struct option longopts[] = {
        {"component", required_argument, NULL, OPT_COMPONENT},
        {"worker", required_argument, NULL, OPT_WORKER},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:o:f", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_COMPONENT:
            name = optarg;
            break;
        case OPT_WORKER:
            if (sscanf(optarg, "%u/%u", &worker, &n_workers) != 2 || n_workers == 0 ||
                worker >= n_workers)
                log_fatal(EX_USAGE, "bad --worker '%s'", optarg);
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'o':
            assignments[n_assign++] = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        default:
            exit(EX_USAGE);
        }
    }
    log_init(name ? name : "wharfd", foreground ? LOG_TO_STDERR : LOG_TO_SYSLOG);
    const struct component_def *def = name ? component_find(name) : NULL;
    if (def == NULL || def->main == NULL)
        log_fatal(EX_USAGE, "unknown or unbuilt component '%s'", name ? name : "");

    struct wharf_config *cfg = xcalloc(1, sizeof(*cfg));
    struct buf err = BUF_INIT;
    if (config_read(cfg, config_path, assignments, n_assign, &err) != 0)
        log_fatal(EX_CONFIG, "%s", buf_cstr(&err));
    buf_free(&err);
    free(assignments);
    log_set_debug(cfg->log_debug);

    struct component_ctx ctx = {
        .name = def->name,
        .def = def,
        .worker_index = worker,
        .n_workers = n_workers,
        .cfg = cfg,
        .control_fd = COMPONENT_CONTROL_FD,
    };
    parse_listeners(&ctx);
    attach_conntab(&ctx);
    tune_malloc();
    component_title_start(&ctx, def->kind == COMPONENT_WORKERS);
    int rc = def->main(&ctx);
    exit(rc);
}
