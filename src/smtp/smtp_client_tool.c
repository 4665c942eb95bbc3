/*
 * smtp_client_tool.c - a test helper: delivers the message on stdin through
 * the SMTP client engine to ADDRESS PORT and prints every result, one line
 * each, for the integration tests (tests/integration/test_smtp_client.py).
 * Not installed, not for production: it never resolves MX, retries or queues.
 *
 * usage: smtp_client_tool [-h helo] [-f sender] -r rcpt [-r rcpt...]
 *        [-t none|may|require|verify] [-c cafile] [-n servername]
 *        [-u user -p pass] [-N transactions] [-T timeout_ms] [-8] [-U]
 *        [-R hdrs|full] [-e envid] [-O] [-S] ADDRESS PORT < message
 *   -O sends ORCPT=rfc822;RCPT, -S NOTIFY=SUCCESS,FAILURE.
 * output: "txn I rcpt ADDRESS CODE ENH local=L dsn=D tls=T TEXT" per recipient,
 *         then "session ok" or "session error CODE ENH TEXT", and the caps.
 */
#include "base/alloc.h"
#include "base/buf.h"
#include "net/net_tls_client.h"
#include "smtp/smtp_client.h"
#include "spool/spool.h"

#include <event2/event.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int n_done;

static void print_clean(const char *s)
{
    for (; *s; s++)
        putchar(*s == '\n' || *s == '\r' ? '|' : *s);
}

static void on_txn(struct smtp_client *c, struct smtp_client_txn *t, void *arg)
{
    for (size_t i = 0; i < t->n_rcpts; i++) {
        const struct smtp_client_result *r = &t->rcpts[i].result;
        printf("txn %d rcpt ", (int)(intptr_t)t->arg);
        print_clean(t->rcpts[i].address);
        printf(" %d %s local=%d dsn=%d tls=%d ", r->code, r->enh[0] ? r->enh : "-", r->local,
               t->peer_dsn, t->tls);
        print_clean(buf_cstr((struct buf *)&r->text));
        putchar('\n');
    }
    n_done++;
}

static void on_done(struct smtp_client *c, void *arg)
{
    const struct smtp_client_result *e = smtp_client_error(c);
    if (e == NULL)
        printf("session ok\n");
    else {
        printf("session error %d %s ", e->code, e->enh);
        print_clean(buf_cstr((struct buf *)&e->text));
        putchar('\n');
    }
    const struct smtp_caps *k = smtp_client_caps(c);
    printf("caps pipelining=%d chunking=%d 8bitmime=%d smtputf8=%d dsn=%d size=%llu tls=%d\n",
           k->pipelining, k->chunking, k->eightbitmime, k->smtputf8, k->dsn,
           (unsigned long long)k->size, smtp_client_tls_active(c));
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    struct smtp_client_params p = {.helo_name = "client.test", .tls = SMTP_TLS_MAY};
    const char *sender = "", *ca = NULL, *ret = NULL, *envid = NULL;
    const char *rcpts[2000];
    size_t n_rcpts = 0;
    int n_txn = 1, opt;
    bool eight = false, utf8 = false, orcpt = false, notify = false;
    long long timeout = 0;
    while ((opt = getopt(argc, argv, "h:f:r:t:c:n:u:p:N:T:8UR:e:OS")) != -1) {
        switch (opt) {
        case 'h':
            p.helo_name = optarg;
            break;
        case 'f':
            sender = optarg;
            break;
        case 'r':
            if (n_rcpts < 2000)
                rcpts[n_rcpts++] = optarg;
            break;
        case 't':
            if (!smtp_tls_policy_parse(optarg, &p.tls))
                return 64;
            break;
        case 'c':
            ca = optarg;
            break;
        case 'n':
            p.tls_servername = optarg;
            break;
        case 'u':
            p.auth_user = optarg;
            break;
        case 'p':
            p.auth_pass = optarg;
            break;
        case 'N':
            n_txn = atoi(optarg);
            break;
        case 'T':
            timeout = atoll(optarg);
            break;
        case '8':
            eight = true;
            break;
        case 'U':
            utf8 = true;
            break;
        case 'R':
            ret = optarg;
            break;
        case 'e':
            envid = optarg;
            break;
        case 'O':
            orcpt = true;
            break;
        case 'S':
            notify = true;
            break;
        default:
            return 64;
        }
    }
    if (argc - optind != 2 || n_rcpts == 0 || n_txn < 1 || n_txn > 1000) {
        fprintf(stderr, "usage: smtp_client_tool [options] -r RCPT ADDRESS PORT < message\n");
        return 64;
    }
    p.connect_timeout = p.greeting_timeout = p.command_timeout = p.data_init_timeout =
        p.data_block_timeout = p.data_done_timeout = timeout;

    struct buf msg = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        buf_append(&msg, chunk, n);

    struct buf err = BUF_INIT;
    if (p.tls != SMTP_TLS_NONE) {
        p.tls_ctx = net_tls_client_ctx_new(ca, &err);
        if (p.tls_ctx == NULL) {
            fprintf(stderr, "%s\n", buf_cstr(&err));
            return 70;
        }
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai) != 0) {
        fprintf(stderr, "bad address\n");
        return 64;
    }
    struct event_base *base = event_base_new();
    struct smtp_client *c = smtp_client_new(base, &p, on_txn, on_done, base);
    struct smtp_client_txn *txns = xcalloc((size_t)n_txn, sizeof(*txns));
    for (int t = 0; t < n_txn; t++) {
        struct smtp_client_rcpt *rs = xcalloc(n_rcpts, sizeof(*rs));
        for (size_t i = 0; i < n_rcpts; i++) {
            rs[i].address = rcpts[i];
            if (orcpt) {
                struct buf o = BUF_INIT;
                buf_printf(&o, "rfc822;%s", rcpts[i]);
                rs[i].orcpt = buf_steal(&o, NULL);
            }
            if (notify)
                rs[i].notify = SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE;
        }
        txns[t] = (struct smtp_client_txn){.sender = sender,
                                           .data = buf_slice(&msg),
                                           .body = eight ? SMTP_CLIENT_8BITMIME : SMTP_CLIENT_7BIT,
                                           .smtputf8 = utf8,
                                           .ret_hdrs = ret && strcmp(ret, "hdrs") == 0,
                                           .ret_full = ret && strcmp(ret, "full") == 0,
                                           .envid = envid,
                                           .rcpts = rs,
                                           .n_rcpts = n_rcpts,
                                           .arg = (void *)(intptr_t)t};
        smtp_client_send(c, &txns[t]);
    }
    smtp_client_quit(c);
    smtp_client_connect(c, ai->ai_addr, ai->ai_addrlen);
    event_base_dispatch(base);
    smtp_client_free(c);
    for (int t = 0; t < n_txn; t++) {
        for (size_t i = 0; i < n_rcpts; i++) {
            smtp_client_result_clear(&txns[t].rcpts[i].result);
            free((char *)txns[t].rcpts[i].orcpt);
        }
        free(txns[t].rcpts);
    }
    free(txns);
    freeaddrinfo(ai);
    event_base_free(base);
    if (p.tls_ctx)
        SSL_CTX_free(p.tls_ctx);
    buf_free(&msg);
    buf_free(&err);
    return n_done == n_txn ? 0 : 1;
}
