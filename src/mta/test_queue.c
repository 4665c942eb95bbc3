/*
 * test_queue.c - the mta's spool bookkeeping with a crash between the store
 * commit and the spool update: the redelivery is recognised, the message is
 * stored once and the entry then removed. The spool and the directory are
 * tiny stubs defined in THIS FILE ONLY (their real implementations are
 * tested in src/spool and src/directory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "mta/mta_queue.h"
#include "spool/spool.h"

/* ---- spool stub: one entry, state kept in this process ---- */

static int n_removed, n_updates;
static enum spool_rcpt_state states[3];
static const char *const rcpt_addrs[3] = {"alice@example.test", "x@remote.test",
                                          "bob@example.test"};
static size_t n_rcpts = 3;

int spool_read(const struct wharf_config *cfg, const char *id, struct spool_message *msg,
               struct buf *err)
{
    memset(msg, 0, sizeof(*msg));
    if (strcmp(id, "GONE") == 0) { /* finished and removed since it was announced */
        buf_printf(err, "open queue/GONE: No such file or directory");
        return 1;
    }
    if (strcmp(id, "DAMAGED") == 0) {
        buf_printf(err, "queue/DAMAGED: damaged");
        return -1;
    }
    snprintf(msg->env.id, sizeof(msg->env.id), "%s", id);
    msg->env.rcpts = xcalloc(n_rcpts, sizeof(*msg->env.rcpts));
    msg->env.n_rcpts = n_rcpts;
    for (size_t i = 0; i < n_rcpts; i++) {
        msg->env.rcpts[i].address = xstrdup(rcpt_addrs[i]);
        msg->env.rcpts[i].state = states[i];
    }
    buf_init(&msg->data);
    buf_append_cstr(&msg->data, "Subject: queued\r\n\r\nbody\r\n");
    return 0;
}

int spool_update_rcpts(const struct wharf_config *cfg, const struct spool_message *msg,
                       struct buf *err)
{
    for (size_t i = 0; i < msg->env.n_rcpts; i++)
        states[i] = msg->env.rcpts[i].state;
    n_updates++;
    return 0;
}

int spool_remove(const struct wharf_config *cfg, const char *id, struct buf *err)
{
    n_removed++;
    return 0;
}

int spool_retire(const struct wharf_config *cfg, const char *id, struct buf *err)
{
    return 0;
}

int spool_remove_retired(const struct wharf_config *cfg, const char *id, struct buf *err)
{
    return spool_remove(cfg, id, err);
}

int spool_list_retired(const struct wharf_config *cfg, char ***ids_r, size_t *n_r, struct buf *err)
{
    *ids_r = NULL;
    *n_r = 0;
    return 0;
}

int spool_delete(const struct wharf_config *cfg, const char *id, struct buf *err)
{
    return spool_remove(cfg, id, err);
}

int spool_control(const struct wharf_config *cfg, const char *id, enum spool_ctl c, struct buf *err)
{
    return 0; /* `wharf queue` actions are not exercised here */
}

int spool_list(const struct wharf_config *cfg, char ***ids_r, size_t *n_r, struct buf *err)
{
    *ids_r = xcalloc(1, sizeof(char *));
    (*ids_r)[0] = xstrdup("Q1");
    *n_r = 1;
    return 0;
}

void spool_list_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

void spool_message_free(struct spool_message *msg)
{
    for (size_t i = 0; i < msg->env.n_rcpts; i++)
        free(msg->env.rcpts[i].address);
    free(msg->env.rcpts);
    buf_free(&msg->data);
}

/* ---- directory stub: @example.test is local, one account per address ---- */

int directory_resolve(struct directory *d, const char *address, struct directory_result *r,
                      struct buf *err)
{
    memset(r, 0, sizeof(*r));
    const char *at = strchr(address, '@');
    if (at == NULL || strcmp(at + 1, "example.test") != 0) {
        r->kind = DIRECTORY_NOT_LOCAL;
        return 0;
    }
    r->kind = DIRECTORY_LOCAL;
    r->targets = xcalloc(1, sizeof(*r->targets));
    r->targets[0].account = xstrdup(address);
    r->n_targets = 1;
    return 0;
}

void directory_result_free(struct directory_result *r)
{
    for (size_t i = 0; i < r->n_targets; i++)
        free(r->targets[i].account);
    free(r->targets);
    free(r->remote); /* this stub never fills it */
}

int directory_quota(struct directory *d, const char *account, uint64_t *b, uint64_t *m)
{
    *b = *m = 0;
    return 0;
}

/* ---- tests ---- */

static char *store_dir;

static void run_queue_once(void)
{
    struct buf err = BUF_INIT;
    struct store *s = store_open_dir(store_dir, NULL, &err);
    assert_non_null(s);
    struct event_base *base = event_base_new();
    event_base_priority_init(base, 3);
    struct mta_batch b;
    mta_batch_init(&b, base, 16, s, NULL, NULL, NULL);
    struct mta_queue *q = mta_queue_new(NULL, &b);
    mta_queue_scan(q);
    event_base_loop(base, EVLOOP_NONBLOCK);
    mta_batch_flush(&b);
    mta_queue_free(q);
    mta_batch_free(&b);
    event_base_free(base);
    store_close(s);
    buf_free(&err);
}

static void crash_hook(const char *point)
{
    if (strcmp(point, "committed") == 0)
        _exit(42);
}

static uint64_t inbox_count(const char *owner)
{
    struct buf err = BUF_INIT;
    struct store *s = store_open_dir(store_dir, NULL, &err);
    struct store_mailbox mb;
    assert_int_equal(store_mailbox_get(s, owner, "INBOX", &mb, &err), 0);
    uint64_t n = mb.messages;
    store_mailbox_free(&mb);
    store_close(s);
    buf_free(&err);
    return n;
}

static void test_crash_between_commit_and_spool_update(void **state)
{
    char tmpl[] = "/tmp/wharf-test-queue-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    store_dir = tmpl;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store_set_fault_hook(crash_hook);
        run_queue_once();
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 42);
    /* The crashed mta committed but never told the spool. */
    assert_int_equal(n_updates + n_removed, 0);
    assert_int_equal(inbox_count("alice@example.test"), 1);

    /* The restarted mta picks the entry up again: recognised, not stored twice. */
    run_queue_once();
    assert_int_equal(inbox_count("alice@example.test"), 1);
    assert_int_equal(inbox_count("bob@example.test"), 1);
    assert_int_equal(states[0], SPOOL_RCPT_DELIVERED);
    assert_int_equal(states[1], SPOOL_RCPT_PENDING); /* remote: never dropped */
    assert_int_equal(states[2], SPOOL_RCPT_DELIVERED);
    assert_int_equal(n_removed, 0);
    assert_int_equal(n_updates, 1);

    /* Once only local recipients remained done, the entry goes. */
    n_rcpts = 1;                    /* the remote recipient went elsewhere (outbound, later) */
    states[0] = SPOOL_RCPT_PENDING; /* even a lost update is safe */
    run_queue_once();
    assert_int_equal(inbox_count("alice@example.test"), 1);
    assert_int_equal(n_removed, 1);
    char *argv[] = {"rm", "-rf", tmpl, NULL};
    pid = fork();
    if (pid == 0) {
        execvp("rm", argv);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
}

/* What the mta logs while fn runs (stderr captured in a file). */
static char *captured_log(void (*fn)(struct mta_queue *), struct mta_queue *q)
{
    char path[] = "/tmp/wharf-test-queue-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn(q);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *s = xcalloc(1, (size_t)len + 1);
    assert_int_equal(pread(fd, s, (size_t)len, 0), len);
    close(fd);
    return s;
}

static void take_gone(struct mta_queue *q)
{
    mta_queue_take(q, "GONE");
}

static void take_damaged(struct mta_queue *q)
{
    mta_queue_take(q, "DAMAGED");
}

/* A spool-new announcement (or a scan's listing) that arrives after the
 * entry was delivered and removed is normal: no "error:" line. A damaged
 * entry still is one. */
static void test_take_after_removal_is_no_error(void **state)
{
    (void)state;
    log_init("mta", LOG_TO_STDERR);
    struct event_base *base = event_base_new();
    event_base_priority_init(base, 3);
    struct mta_batch b;
    mta_batch_init(&b, base, 16, NULL, NULL, NULL, NULL);
    struct mta_queue *q = mta_queue_new(NULL, &b);
    char *gone = captured_log(take_gone, q);
    assert_null(strstr(gone, "error:"));
    char *damaged = captured_log(take_damaged, q);
    assert_non_null(strstr(damaged, "error: DAMAGED: cannot read spool entry"));
    free(gone);
    free(damaged);
    mta_queue_free(q);
    mta_batch_free(&b);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_between_commit_and_spool_update),
        cmocka_unit_test(test_take_after_removal_is_no_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
