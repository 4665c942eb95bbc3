/*
 * cmd_api.c - `wharf api`: one admin API request (doc/admin-api.md) as JSON
 * on stdin, its answer as JSON on stdout ({"status": HTTP status, "body":
 * ...}). wharfd runs it for the http worker's /admin (supervisor/admin.c);
 * an admin or a playbook may pipe requests to it on the server as well.
 *
 * Each request is mapped to the wharf commands that do the work, run here
 * exactly as from a shell (each in a child of its own, because a command
 * drops privileges for good after opening its databases), their --json
 * output parsed and their exit code (sysexits) turned into an HTTP status.
 * So the API has no implementation of its own: `wharf user add` and
 * POST /admin/users are the same code.
 *
 * Must never: put a value the request gave where a command would read it as
 * an option (a value starting with '-' is refused), pass a password on a
 * command line (it goes on the command's stdin), or print anything but the
 * one answer on stdout.
 */
#include "base/alloc.h"
#include "base/fdio.h"
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <sysexits.h>
#include <unistd.h>

/* A request is a small JSON object (the http worker caps bodies at 32k). */
#define API_MAX_REQUEST (64 * 1024)
/* What one command may print: a user list of a large domain, the status. */
#define API_MAX_OUTPUT (32 * 1024 * 1024)
#define API_MAX_ARGS 32

/* One command's outcome. */
struct run {
    int code;       /* sysexits */
    struct buf out; /* stdout */
    struct buf err; /* stderr */
};

struct api {
    struct cli_ctx *ctx;
    json_t *req, *body, *query, *path;
    int status;
    json_t *answer; /* the body of the response */
};

static int status_of(int code)
{
    switch (code) {
    case EX_OK:
        return 200;
    case EX_USAGE:
    case EX_DATAERR:
        return 400;
    case EX_NOUSER:
    case EX_NOHOST:
    case EX_NOINPUT:
        return 404;
    case EX_CANTCREAT:
        return 409;
    case EX_UNAVAILABLE:
    case EX_TEMPFAIL:
        return 503;
    }
    return 500;
}

static void fail(struct api *a, int status, const char *msg)
{
    json_decref(a->answer);
    a->status = status;
    a->answer = json_pack("{s:s}", "error", msg);
}

static int read_back(int fd, struct buf *out)
{
    return lseek(fd, 0, SEEK_SET) == 0 ? fd_read_all(fd, API_MAX_OUTPUT, out) : -1;
}

/* Runs `wharf ARGS...` with input on its stdin, in a child; false when it cannot run. */
static bool run(struct api *a, const char *const *args, const char *input, struct run *r)
{
    r->code = EX_SOFTWARE;
    r->out = (struct buf)BUF_INIT;
    r->err = (struct buf)BUF_INIT;
    cli_cmd_fn fn = cli_command(args[0]);
    int in = memfd_create("api-in", MFD_CLOEXEC), out = memfd_create("api-out", MFD_CLOEXEC),
        err = memfd_create("api-err", MFD_CLOEXEC);
    bool ok = fn != NULL && in >= 0 && out >= 0 && err >= 0 &&
              fd_write_all(in, input ? input : "", input ? strlen(input) : 0) == 0 &&
              lseek(in, 0, SEEK_SET) == 0;
    pid_t pid = ok ? fork() : -1;
    if (pid == 0) {
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(EX_OSERR);
        char *argv[API_MAX_ARGS + 1];
        int argc = 0;
        while (argc < API_MAX_ARGS && args[argc]) {
            argv[argc] = xstrdup(args[argc]);
            argc++;
        }
        argv[argc] = NULL;
        int code = fn(a->ctx, argc, argv);
        fflush(stdout);
        fflush(stderr);
        _exit(code < 0 ? EX_USAGE : code);
    }
    int st = 0;
    if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st)) {
        r->code = WEXITSTATUS(st);
        read_back(out, &r->out);
        read_back(err, &r->err);
    } else {
        ok = false;
    }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (err >= 0)
        close(err);
    if (!ok)
        fail(a, 500, "cannot run the wharf command");
    return ok;
}

static void run_free(struct run *r)
{
    buf_free(&r->out);
    buf_free(&r->err);
}

/* The command's own words for a failure: its stderr without "wharf: " and newlines. */
static void fail_run(struct api *a, struct run *r)
{
    struct buf msg = BUF_INIT;
    const char *p = buf_cstr(&r->err);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, "wharf: ", 7) == 0) {
            p += 7;
            len -= 7;
        }
        if (len > 0)
            buf_printf(&msg, "%s%.*s", msg.len ? "; " : "", (int)len, p);
        p += len + (nl != NULL);
    }
    fail(a, status_of(r->code), msg.len ? buf_cstr(&msg) : "the command failed");
    buf_free(&msg);
}

/* What a command prints on success. */
enum output {
    OUT_NONE,
    OUT_JSON,  /* one JSON document (--json of most commands) */
    OUT_LINES, /* a JSON object per line, as `mailq --json` (Postfix's postqueue -j) */
};

/* Each line of text as a JSON value, in an array; NULL when one is not JSON. */
static json_t *json_lines(struct buf *text)
{
    json_t *arr = json_array();
    const char *p = buf_cstr(text);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_error_t jerr;
        json_t *v = len ? json_loadb(p, len, 0, &jerr) : NULL;
        if (len && v == NULL) {
            json_decref(arr);
            return NULL;
        }
        if (v)
            json_array_append_new(arr, v);
        p += len + (nl != NULL);
    }
    return arr;
}

/*
 * Runs the command; on success the answer is its stdout as out says, with
 * status ok_status. Returns true on success.
 */
static bool command(struct api *a, const char *const *args, const char *input, enum output json,
                    int ok_status)
{
    struct run r;
    if (!run(a, args, input, &r))
        return false;
    bool ok = r.code == EX_OK;
    if (!ok) {
        fail_run(a, &r);
    } else {
        a->status = ok_status;
        json_decref(a->answer);
        a->answer = NULL;
        if (json != OUT_NONE) {
            json_error_t jerr;
            a->answer = json == OUT_LINES ? json_lines(&r.out)
                                          : json_loadb(r.out.data, r.out.len, 0, &jerr);
            if (a->answer == NULL) {
                fail(a, 500, "the command's output is not JSON");
                ok = false;
            }
        }
    }
    run_free(&r);
    return ok;
}

/* A string field of the body (or query): present, not empty, never an option. */
static const char *field(struct api *a, json_t *from, const char *name)
{
    const char *v = json_string_value(json_object_get(from, name));
    if (v == NULL || v[0] == '\0' || v[0] == '-' || strlen(v) > 1024) {
        struct buf m = BUF_INIT;
        buf_printf(&m, "\"%s\" must be a non-empty string that does not start with '-'", name);
        fail(a, 400, buf_cstr(&m));
        buf_free(&m);
        return NULL;
    }
    return v;
}

/* A quota figure of the body: absent (def, which may be out), a count, or a size text ("1G"). */
static bool quota_field(struct api *a, const char *name, const char *def, char out[32])
{
    json_t *v = json_object_get(a->body, name);
    if (v == NULL) {
        if (out != def)
            snprintf(out, 32, "%s", def);
        return true;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        snprintf(out, 32, "%lld", (long long)json_integer_value(v));
        return true;
    }
    const char *s = json_string_value(v);
    if (s && s[0] && s[0] != '-' && strlen(s) < 32) {
        snprintf(out, 32, "%s", s);
        return true;
    }
    struct buf m = BUF_INIT;
    buf_printf(&m, "\"%s\" must be a byte count, a size such as \"1G\", or \"unlimited\"", name);
    fail(a, 400, buf_cstr(&m));
    buf_free(&m);
    return false;
}

/* A password of the body, for a command's stdin: one line. */
static const char *password_field(struct api *a)
{
    const char *pw = json_string_value(json_object_get(a->body, "password"));
    if (pw == NULL || pw[0] == '\0' || strpbrk(pw, "\r\n") != NULL) {
        fail(a, 400, "\"password\" must be a non-empty string on one line");
        return NULL;
    }
    return pw;
}

static size_t nseg(struct api *a)
{
    return json_array_size(a->path);
}

static const char *seg(struct api *a, size_t i)
{
    const char *s = json_string_value(json_array_get(a->path, i));
    return s ? s : "";
}

/* The path segment i as a command argument ('-' first: refused). */
static const char *seg_arg(struct api *a, size_t i)
{
    const char *s = seg(a, i);
    if (s[0] == '-' || s[0] == '\0') {
        fail(a, 400, "a name in the path must not start with '-'");
        return NULL;
    }
    return s;
}

/* GET of a list: `wharf CMD list [FILTER] --json`, FILTER from the query's param; {key: [...]}. */
static void list_filtered(struct api *a, const char *cmd, const char *param, const char *key)
{
    const char *f = json_string_value(json_object_get(a->query, param));
    if (f && (f[0] == '-' || f[0] == '\0')) {
        fail(a, 400, "a filter must not be empty or start with '-'");
        return;
    }
    const char *args[] = {cmd, "list", f ? f : "--json", f ? "--json" : NULL, NULL};
    if (command(a, args, NULL, OUT_JSON, 200))
        a->answer = json_pack("{s:o}", key, a->answer);
}

/* ---- users and quotas ---- */

/* The account's row of `wharf user list DOMAIN --json` into a->answer; 404 when none. */
static bool user_get(struct api *a, const char *account)
{
    const char *at = strrchr(account, '@');
    if (at == NULL || at[1] == '\0' || at[1] == '-') {
        fail(a, 400, "an account is a full address (user@domain)");
        return false;
    }
    if (!command(a, (const char *[]){"user", "list", at + 1, "--json", NULL}, NULL, OUT_JSON, 200))
        return false;
    size_t i;
    json_t *row;
    json_array_foreach(a->answer, i, row)
    {
        const char *name = json_string_value(json_object_get(row, "account"));
        if (name && strcasecmp(name, account) == 0) {
            json_incref(row);
            json_decref(a->answer);
            a->answer = row;
            return true;
        }
    }
    fail(a, 404, "no such account");
    return false;
}

/* PATCH /users/U and PUT /quotas/U: password and/or quotas; answers the account's row. */
static void user_update(struct api *a, const char *account, bool quota_only)
{
    if (!user_get(a, account))
        return;
    char qb[32], qm[32];
    snprintf(qb, sizeof(qb), "%lld",
             (long long)json_integer_value(json_object_get(a->answer, "quota_bytes")));
    snprintf(qm, sizeof(qm), "%lld",
             (long long)json_integer_value(json_object_get(a->answer, "quota_messages")));
    const char *kb = quota_only ? "bytes" : "quota_bytes",
               *km = quota_only ? "messages" : "quota_messages";
    bool quota = json_object_get(a->body, kb) || json_object_get(a->body, km);
    bool pw = !quota_only && json_object_get(a->body, "password");
    if (!quota && !pw) {
        fail(a, 400,
             quota_only ? "nothing to change (bytes, messages)"
                        : "nothing to change (password, quota_bytes, quota_messages)");
        return;
    }
    if (!quota_field(a, kb, qb, qb) || !quota_field(a, km, qm, qm))
        return;
    if (pw) {
        const char *p = password_field(a);
        struct buf line = BUF_INIT;
        if (p)
            buf_printf(&line, "%s\n", p);
        bool ok =
            p && command(a, (const char *[]){"user", "passwd", account, "--password-stdin", NULL},
                         buf_cstr(&line), OUT_NONE, 200);
        explicit_bzero(line.data, line.len);
        buf_free(&line);
        if (!ok)
            return;
    }
    if (quota &&
        !command(a, (const char *[]){"user", "quota", account, qb, qm, NULL}, NULL, OUT_NONE, 200))
        return;
    user_get(a, account);
}

static void users(struct api *a, const char *m)
{
    const char *acct = nseg(a) >= 2 ? seg_arg(a, 1) : NULL;
    if (nseg(a) >= 2 && acct == NULL)
        return;
    if (nseg(a) == 1 && strcmp(m, "GET") == 0) {
        list_filtered(a, "user", "domain", "users");
    } else if (nseg(a) == 1 && strcmp(m, "POST") == 0) {
        const char *u = field(a, a->body, "account");
        const char *pw = u ? password_field(a) : NULL;
        char qb[32], qm[32];
        if (pw == NULL || !quota_field(a, "quota_bytes", "unlimited", qb) ||
            !quota_field(a, "quota_messages", "unlimited", qm))
            return;
        struct buf line = BUF_INIT;
        buf_printf(&line, "%s\n", pw);
        bool ok = command(a,
                          (const char *[]){"user", "add", u, "--password-stdin", "--quota", qb,
                                           "--quota-messages", qm, NULL},
                          buf_cstr(&line), OUT_NONE, 201);
        explicit_bzero(line.data, line.len);
        buf_free(&line);
        if (ok && user_get(a, u))
            a->status = 201;
    } else if (nseg(a) == 2 && strcmp(m, "GET") == 0) {
        user_get(a, acct);
    } else if (nseg(a) == 2 && strcmp(m, "PATCH") == 0) {
        user_update(a, acct, false);
    } else if (nseg(a) == 2 && strcmp(m, "DELETE") == 0) {
        command(a, (const char *[]){"user", "del", acct, NULL}, NULL, OUT_NONE, 204);
    } else if (nseg(a) == 3 && strcmp(seg(a, 2), "mailboxes") == 0 && strcmp(m, "GET") == 0) {
        command(a, (const char *[]){"mailbox", "list", acct, "--json", NULL}, NULL, OUT_JSON, 200);
    } else {
        fail(a, 405, "method not allowed here");
    }
}

static void quotas(struct api *a, const char *m)
{
    const char *acct = nseg(a) == 2 ? seg_arg(a, 1) : NULL;
    if (acct == NULL) {
        if (nseg(a) != 2)
            fail(a, 404, "use /admin/quotas/ACCOUNT");
        return;
    }
    if (strcmp(m, "PUT") == 0) {
        user_update(a, acct, true);
    } else if (strcmp(m, "GET") != 0) {
        return fail(a, 405, "method not allowed here");
    } else if (!user_get(a, acct)) {
        return;
    }
    if (a->status != 200)
        return;
    json_t *row = json_incref(a->answer);
    if (command(a, (const char *[]){"mailbox", "stats", acct, "--json", NULL}, NULL, OUT_JSON,
                200)) {
        json_t *q = json_pack("{s:s, s:O, s:O, s:O, s:O}", "account", acct, "bytes",
                              json_object_get(row, "quota_bytes"), "messages",
                              json_object_get(row, "quota_messages"), "bytes_used",
                              json_object_get(a->answer, "quota_bytes_used"), "messages_used",
                              json_object_get(a->answer, "quota_messages_used"));
        json_decref(a->answer);
        a->answer = q;
    }
    json_decref(row);
}

/* ---- domains, aliases, public folders, ACLs, queue, tokens ---- */

static void domains(struct api *a, const char *m)
{
    if (nseg(a) == 1 && strcmp(m, "GET") == 0) {
        if (command(a, (const char *[]){"domain", "list", "--json", NULL}, NULL, OUT_JSON, 200))
            a->answer = json_pack("{s:o}", "domains", a->answer);
    } else if (nseg(a) == 1 && strcmp(m, "POST") == 0) {
        const char *d = field(a, a->body, "domain");
        if (d && command(a, (const char *[]){"domain", "add", d, NULL}, NULL, OUT_NONE, 201))
            a->answer = json_pack("{s:s}", "domain", d);
    } else if (nseg(a) == 2 && strcmp(m, "DELETE") == 0) {
        const char *d = seg_arg(a, 1);
        if (d)
            command(a, (const char *[]){"domain", "del", d, NULL}, NULL, OUT_NONE, 204);
    } else {
        fail(a, 405, "method not allowed here");
    }
}

static void aliases(struct api *a, const char *m)
{
    if (nseg(a) == 1 && strcmp(m, "GET") == 0) {
        list_filtered(a, "alias", "domain", "aliases");
    } else if (nseg(a) == 1 && strcmp(m, "POST") == 0) {
        const char *addr = field(a, a->body, "address");
        json_t *t = json_object_get(a->body, "targets");
        if (addr == NULL)
            return;
        size_t n = json_array_size(t);
        if (n == 0 || n > API_MAX_ARGS - 4)
            return fail(a, 400, "\"targets\" must be a list of 1 to 28 addresses");
        const char *args[API_MAX_ARGS + 1] = {"alias", "add", addr};
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(t, i));
            if (s == NULL || s[0] == '\0' || s[0] == '-')
                return fail(a, 400, "a target must be a string that does not start with '-'");
            args[3 + i] = s;
        }
        args[3 + n] = NULL;
        if (command(a, args, NULL, OUT_NONE, 201))
            a->answer = json_pack("{s:s, s:O}", "address", addr, "targets", t);
    } else if (nseg(a) == 2 && strcmp(m, "DELETE") == 0) {
        const char *addr = seg_arg(a, 1);
        if (addr)
            command(a, (const char *[]){"alias", "del", addr, NULL}, NULL, OUT_NONE, 204);
    } else {
        fail(a, 405, "method not allowed here");
    }
}

/* The folder named by the path after /admin/public/ (a name may hold '/'). */
static bool public_name(struct api *a, struct buf *out)
{
    for (size_t i = 1; i < nseg(a); i++)
        buf_printf(out, "%s%s", i > 1 ? "/" : "", seg(a, i));
    if (out->len == 0 || out->data[0] == '-') {
        fail(a, 400, "a folder name must not start with '-'");
        return false;
    }
    return true;
}

static void public_folders(struct api *a, const char *m)
{
    if (nseg(a) == 1 && strcmp(m, "GET") == 0) {
        if (command(a, (const char *[]){"public", "list", "--json", NULL}, NULL, OUT_JSON, 200))
            a->answer = json_pack("{s:o}", "folders", a->answer);
    } else if (nseg(a) == 1 && strcmp(m, "POST") == 0) {
        const char *name = field(a, a->body, "name");
        const char *news =
            json_object_get(a->body, "newsgroups") ? field(a, a->body, "newsgroups") : NULL;
        if (name == NULL || (json_object_get(a->body, "newsgroups") && news == NULL))
            return;
        const char *args[] = {"public", "add", name, news ? "--newsgroups" : NULL, news, NULL};
        if (command(a, args, NULL, OUT_NONE, 201))
            a->answer = json_pack("{s:s}", "name", name);
    } else if (nseg(a) >= 2 && strcmp(m, "DELETE") == 0) {
        struct buf name = BUF_INIT;
        if (public_name(a, &name))
            command(a, (const char *[]){"public", "del", buf_cstr(&name), NULL}, NULL, OUT_NONE,
                    204);
        buf_free(&name);
    } else {
        fail(a, 405, "method not allowed here");
    }
}

static void acl(struct api *a, const char *m)
{
    bool get = strcmp(m, "GET") == 0, put = strcmp(m, "PUT") == 0, del = strcmp(m, "DELETE") == 0;
    if (nseg(a) != 1 || !(get || put || del))
        return fail(a, 405, "method not allowed here");
    json_t *from = put ? a->body : a->query;
    const char *owner = field(a, from, "owner");
    const char *mailbox = owner ? field(a, from, "mailbox") : NULL;
    const char *id = mailbox && !get ? field(a, from, "identifier") : NULL;
    const char *rights = id && put ? json_string_value(json_object_get(from, "rights")) : NULL;
    if (mailbox == NULL || (!get && id == NULL))
        return;
    if (put && (rights == NULL || rights[0] == '-'))
        return fail(a, 400, "\"rights\" must be a string of RFC 4314 rights");
    if (get) {
        if (command(a, (const char *[]){"acl", "get", owner, mailbox, "--json", NULL}, NULL,
                    OUT_JSON, 200))
            a->answer =
                json_pack("{s:s, s:s, s:o}", "owner", owner, "mailbox", mailbox, "acl", a->answer);
    } else if (put) {
        if (command(a, (const char *[]){"acl", "set", owner, mailbox, id, rights, NULL}, NULL,
                    OUT_NONE, 200))
            a->answer = json_pack("{s:s, s:s, s:s, s:s}", "owner", owner, "mailbox", mailbox,
                                  "identifier", id, "rights", rights);
    } else {
        command(a, (const char *[]){"acl", "del", owner, mailbox, id, NULL}, NULL, OUT_NONE, 204);
    }
}

static void queue(struct api *a, const char *m)
{
    if (nseg(a) == 2 && strcmp(m, "GET") == 0 && strcmp(seg(a, 1), "nexthops") == 0) {
        /* the queue by next hop, as `wharf queue nexthops --json` */
        command(a, (const char *[]){"queue", "nexthops", "--json", NULL}, NULL, OUT_JSON, 200);
        return;
    }
    const char *id = nseg(a) >= 2 ? seg_arg(a, 1) : NULL;
    if (nseg(a) >= 2 && id == NULL)
        return;
    if (nseg(a) == 1 && strcmp(m, "GET") == 0) {
        if (command(a, (const char *[]){"queue", "list", "--json", NULL}, NULL, OUT_LINES, 200))
            a->answer = json_pack("{s:o}", "messages", a->answer);
    } else if (nseg(a) == 2 && strcmp(m, "GET") == 0) {
        command(a, (const char *[]){"queue", "show", id, "--json", NULL}, NULL, OUT_JSON, 200);
    } else if (nseg(a) == 2 && strcmp(m, "DELETE") == 0) {
        command(a, (const char *[]){"queue", "delete", id, NULL}, NULL, OUT_NONE, 204);
    } else if (nseg(a) == 3 && strcmp(m, "POST") == 0) {
        const char *action = seg(a, 2);
        if (strcmp(action, "flush") != 0 && strcmp(action, "hold") != 0 &&
            strcmp(action, "release") != 0 && strcmp(action, "requeue") != 0)
            return fail(a, 404, "actions: flush, hold, release, requeue");
        /* The mta carries it out a moment later (it alone writes queue entries): 202. */
        if (command(a, (const char *[]){"queue", action, id, NULL}, NULL, OUT_NONE, 202))
            a->answer = json_pack("{s:s, s:s}", "id", id, "action", action);
    } else {
        fail(a, 405, "method not allowed here");
    }
}

static void tokens(struct api *a, const char *m)
{
    if (nseg(a) == 1 && strcmp(m, "GET") == 0) {
        list_filtered(a, "token", "account", "tokens");
    } else if (nseg(a) == 1 && strcmp(m, "POST") == 0) {
        const char *u = field(a, a->body, "account");
        json_t *scope = json_object_get(a->body, "scope");
        if (u != NULL && scope != NULL && !json_is_null(scope) &&
            (!json_is_string(scope) || strcmp(json_string_value(scope), "admin") != 0)) {
            fail(a, 400, "\"scope\" is \"admin\" or absent");
            return;
        }
        bool admin = scope != NULL && json_is_string(scope);
        struct run r;
        if (u == NULL ||
            !run(a, (const char *[]){"token", "add", u, admin ? "--scope" : NULL, "admin", NULL},
                 NULL, &r))
            return;
        if (r.code != EX_OK) {
            fail_run(a, &r);
        } else {
            while (r.out.len && r.out.data[r.out.len - 1] == '\n')
                r.out.data[--r.out.len] = '\0';
            a->status = 201;
            json_decref(a->answer);
            /* Shown this once, like `wharf token add` prints it. */
            a->answer = json_pack("{s:s, s:s}", "account", u, "token", buf_cstr(&r.out));
        }
        explicit_bzero(r.out.data, r.out.len);
        run_free(&r);
    } else if (nseg(a) == 2 && strcmp(m, "DELETE") == 0) {
        const char *id = seg_arg(a, 1);
        if (id)
            command(a, (const char *[]){"token", "revoke", id, NULL}, NULL, OUT_NONE, 204);
    } else {
        fail(a, 405, "method not allowed here");
    }
}

/*
 * A user's own app passwords, from the webmail's Settings (the http worker
 * marks the request "self", with the account and its session's id:
 * doc/webmail.md): its app and admin tokens, never its sessions; a new one
 * (never admin-scoped) only from a session signed in less than
 * API_SELF_FRESH_S ago; a revocation of its own tokens only. The rest of the
 * API is not there.
 */
#define API_SELF_FRESH_S (10 * 60)

static void self_tokens(struct api *a, const char *m, const char *user)
{
    const char *session = json_string_value(json_object_get(a->req, "session"));
    if (!command(a, (const char *[]){"token", "list", user, "--json", NULL}, NULL, OUT_JSON, 200))
        return;
    json_t *all = a->answer, *mine = json_array(), *t;
    a->answer = NULL;
    bool fresh = false, owned = false;
    size_t i;
    json_array_foreach(all, i, t)
    {
        const char *id = json_string_value(json_object_get(t, "id"));
        const char *kind = json_string_value(json_object_get(t, "kind"));
        json_int_t created = json_integer_value(json_object_get(t, "created"));
        if (id == NULL || kind == NULL)
            continue;
        if (strcmp(kind, "session") == 0) {
            fresh |= session != NULL && strcmp(id, session) == 0 &&
                     created + API_SELF_FRESH_S >= (json_int_t)time(NULL);
            continue;
        }
        owned |= nseg(a) == 2 && strcmp(id, seg(a, 1)) == 0;
        json_array_append(mine, t);
    }
    json_decref(all);
    if (nseg(a) == 1 && strcmp(m, "GET") == 0) {
        a->status = 200;
        a->answer = json_pack("{s:o}", "tokens", mine);
        return;
    }
    json_decref(mine);
    if (nseg(a) == 1 && strcmp(m, "POST") == 0 && !fresh) {
        fail(a, 403, "sign in again to make an app password (the sign-in is too old)");
    } else if (nseg(a) == 2 && strcmp(m, "DELETE") == 0 && !owned) {
        fail(a, 404, "no such token");
    } else if ((nseg(a) == 1 && strcmp(m, "POST") == 0) || nseg(a) == 2) {
        /* The admin API's own request, for this account and no scope. */
        json_object_set_new(a->req, "body", json_pack("{s:s}", "account", user));
        a->body = json_object_get(a->req, "body");
        tokens(a, m);
    } else {
        fail(a, 405, "method not allowed here");
    }
}

/*
 * The directory of the user's own domain, for the webmail's address
 * autocomplete ("self"): its accounts and aliases, addresses only (no
 * quotas, no alias targets), never another domain's.
 */
static void self_directory(struct api *a, const char *m, const char *user)
{
    const char *at = strrchr(user, '@');
    if (nseg(a) != 1 || strcmp(m, "GET") != 0)
        return fail(a, 405, "GET only");
    if (at == NULL || at[1] == '\0' || at[1] == '-')
        return fail(a, 404, "the account has no domain");
    const char *domain = at + 1;
    json_t *out = json_array(), *v;
    size_t dlen = strlen(domain), i;
    const char *key;
    /* Only DOMAIN's addresses, whatever a command printed. */
#define OWN(addr)                                                                                  \
    ((addr) != NULL && strlen(addr) > dlen + 1 && (addr)[strlen(addr) - dlen - 1] == '@' &&        \
     strcasecmp((addr) + strlen(addr) - dlen, domain) == 0)
    if (command(a, (const char *[]){"user", "list", domain, "--json", NULL}, NULL, OUT_JSON, 200)) {
        json_array_foreach(a->answer, i, v)
        {
            const char *addr = json_string_value(json_object_get(v, "account"));
            if (OWN(addr))
                json_array_append_new(out, json_string(addr));
        }
    }
    if (a->status == 200 && command(a, (const char *[]){"alias", "list", domain, "--json", NULL},
                                    NULL, OUT_JSON, 200)) {
        json_object_foreach(a->answer, key, v)
        {
            if (OWN(key))
                json_array_append_new(out, json_string(key));
        }
    }
#undef OWN
    if (a->status != 200) {
        json_decref(out);
        return;
    }
    json_decref(a->answer);
    a->answer = json_pack("{s:s, s:o}", "domain", domain, "addresses", out);
}

static void self_request(struct api *a, const char *m)
{
    const char *user = json_string_value(json_object_get(a->req, "user"));
    if (user == NULL || user[0] == '\0' || user[0] == '-' || nseg(a) < 1 || nseg(a) > 2)
        return fail(a, 404, "no such resource");
    if (strcmp(seg(a, 0), "tokens") == 0)
        return self_tokens(a, m, user);
    if (strcmp(seg(a, 0), "directory") == 0)
        return self_directory(a, m, user);
    fail(a, 404, "no such resource");
}

static void dispatch(struct api *a)
{
    const char *m = json_string_value(json_object_get(a->req, "method"));
    const char *what = seg(a, 0);
    if (m == NULL)
        return fail(a, 400, "no method");
    if (strcmp(m, "HEAD") == 0)
        m = "GET";
    if (json_is_true(json_object_get(a->req, "self")))
        return self_request(a, m);
    bool get1 = nseg(a) == 1 && strcmp(m, "GET") == 0;
    if (nseg(a) == 0 && strcmp(m, "GET") == 0) {
        a->status = 200;
        a->answer = json_pack("[sssssssssss]", "status", "ports", "domains", "users", "aliases",
                              "quotas", "public", "acl", "queue", "tokens", "reload");
    } else if (strcmp(what, "status") == 0) {
        if (get1)
            command(a, (const char *[]){"status", "--json", NULL}, NULL, OUT_JSON, 200);
        else
            fail(a, 405, "GET only");
    } else if (strcmp(what, "ports") == 0) {
        if (get1)
            command(a, (const char *[]){"ports", "--json", NULL}, NULL, OUT_JSON, 200);
        else
            fail(a, 405, "GET only");
    } else if (strcmp(what, "reload") == 0) {
        if (nseg(a) == 1 && strcmp(m, "POST") == 0 &&
            command(a, (const char *[]){"reload", NULL}, NULL, OUT_NONE, 200))
            a->answer = json_pack("{s:b}", "reloaded", 1);
        else if (!(nseg(a) == 1 && strcmp(m, "POST") == 0))
            fail(a, 405, "POST only");
    } else if (strcmp(what, "domains") == 0) {
        domains(a, m);
    } else if (strcmp(what, "users") == 0) {
        users(a, m);
    } else if (strcmp(what, "quotas") == 0) {
        quotas(a, m);
    } else if (strcmp(what, "aliases") == 0) {
        aliases(a, m);
    } else if (strcmp(what, "public") == 0) {
        public_folders(a, m);
    } else if (strcmp(what, "acl") == 0) {
        acl(a, m);
    } else if (strcmp(what, "queue") == 0) {
        queue(a, m);
    } else if (strcmp(what, "tokens") == 0) {
        tokens(a, m);
    } else {
        fail(a, 404, "no such resource");
    }
}

int cmd_api(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: wharf api < REQUEST.json  (doc/admin-api.md)\n");
        return EX_USAGE;
    }
    struct buf in = BUF_INIT;
    struct api a = {.ctx = ctx, .status = 500};
    json_error_t jerr;
    if (fd_read_all(0, API_MAX_REQUEST, &in) == 0)
        a.req = json_loadb(in.data, in.len, 0, &jerr);
    buf_free(&in);
    a.path = json_object_get(a.req, "path");
    a.query = json_object_get(a.req, "query");
    a.body = json_object_get(a.req, "body");
    if (!json_is_object(a.req) || !json_is_array(a.path))
        fail(&a, 400, "a request is {\"method\", \"path\": [...], \"query\", \"body\"}");
    else
        dispatch(&a);
    json_t *out =
        json_pack("{s:i, s:o}", "status", a.status, "body", a.answer ? a.answer : json_null());
    char *text = json_dumps(out, JSON_COMPACT);
    puts(text);
    free(text);
    json_decref(out);
    json_decref(a.req);
    return EX_OK;
}
