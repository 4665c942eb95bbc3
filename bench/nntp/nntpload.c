/*
 * nntpload.c - NNTP load for bench/nntp/run: CONNS threads, each on its own
 * connection, COUNT operations each, one command at a time as a plain client
 * does (TAKETHIS: pipelined, as a feeding server does).
 *
 *   nntpload HOST PORT post     CONNS COUNT GROUP TAG   POST, 4 KiB articles
 *   nntpload HOST PORT article  CONNS COUNT GROUP       ARTICLE n over the group
 *   nntpload HOST PORT takethis CONNS COUNT GROUP TAG   MODE STREAM, TAKETHIS (window 64)
 *
 * Prints "ops=N secs=S rate=R" (R: operations answered with success per second).
 * A bench tool, not part of Wharf: no error goes unreported, nothing is retried.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *mode, *group, *tag;
static int port, count;

struct conn {
    int fd;
    char buf[1 << 16];
    size_t len, off;
};

static void die(const char *what)
{
    fprintf(stderr, "nntpload: %s\n", what);
    exit(1);
}

static void send_all(struct conn *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(c->fd, p, n);
        if (w <= 0)
            die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* The next line (without CRLF) into line; its length. */
static size_t read_line(struct conn *c, char *line, size_t max)
{
    for (;;) {
        for (size_t i = c->off; i + 1 < c->len; i++) {
            if (c->buf[i] == '\r' && c->buf[i + 1] == '\n') {
                size_t n = i - c->off < max - 1 ? i - c->off : max - 1;
                memcpy(line, c->buf + c->off, n);
                line[n] = '\0';
                c->off = i + 2;
                return n;
            }
        }
        if (c->off > 0) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (c->len == sizeof(c->buf))
            die("line too long");
        ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (r <= 0)
            die("read");
        c->len += (size_t)r;
    }
}

static int code_of(struct conn *c)
{
    char line[1024];
    read_line(c, line, sizeof(line));
    return atoi(line);
}

static void cmd(struct conn *c, const char *text, int want)
{
    send_all(c, text, strlen(text));
    int got = code_of(c);
    if (got != want) {
        fprintf(stderr, "nntpload: %s-> %d, wanted %d\n", text, got, want);
        exit(1);
    }
}

static void connect_to(struct conn *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect");
    c->len = c->off = 0;
    int g = code_of(c);
    if (g != 200 && g != 201)
        die("greeting");
}

static size_t article(char *out, size_t max, int t, int i)
{
    size_t n = (size_t)snprintf(out, max,
                                "Path: load.bench!not-for-mail\r\nFrom: load@bench.test\r\n"
                                "Newsgroups: %s\r\nSubject: load %d.%d\r\n"
                                "Date: Sat, 05 Dec 2026 20:00:00 +0000\r\n"
                                "Message-ID: <%s.%d.%d@bench.test>\r\n\r\n",
                                group, t, i, tag, t, i);
    while (n < 4096 - 80) /* a 4 KiB article */
        n += (size_t)snprintf(out + n, max - n, "%s\r\n",
                              "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU");
    n += (size_t)snprintf(out + n, max - n, ".\r\n");
    return n;
}

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    struct conn *c = calloc(1, sizeof(*c));
    char line[1024], text[8192];
    connect_to(c);
    long ok = 0;
    if (strcmp(mode, "post") == 0) {
        cmd(c, "MODE READER\r\n", 200);
        for (int i = 0; i < count; i++) {
            cmd(c, "POST\r\n", 340);
            size_t n = article(text, sizeof(text), t, i);
            send_all(c, text, n);
            ok += code_of(c) == 240;
        }
    } else if (strcmp(mode, "article") == 0) {
        cmd(c, "MODE READER\r\n", 200);
        snprintf(text, sizeof(text), "GROUP %s\r\n", group);
        send_all(c, text, strlen(text));
        read_line(c, line, sizeof(line));
        long n = 0, lo = 0, hi = 0;
        if (sscanf(line, "211 %ld %ld %ld", &n, &lo, &hi) != 3 || n == 0)
            die("GROUP");
        for (int i = 0; i < count; i++) {
            snprintf(text, sizeof(text), "ARTICLE %ld\r\n", lo + (t * 7919L + i) % (hi - lo + 1));
            send_all(c, text, strlen(text));
            int code = code_of(c);
            if (code == 220) {
                while (read_line(c, line, sizeof(line)) != 1 || line[0] != '.')
                    ;
                ok++;
            }
        }
    } else { /* takethis */
        cmd(c, "MODE STREAM\r\n", 203);
        int sent = 0, answered = 0;
        while (answered < count) {
            while (sent < count && sent - answered < 64) {
                size_t h = (size_t)snprintf(text, sizeof(text), "TAKETHIS <%s.%d.%d@bench.test>\r\n",
                                            tag, t, sent);
                send_all(c, text, h);
                size_t n = article(text, sizeof(text), t, sent);
                send_all(c, text, n);
                sent++;
            }
            ok += code_of(c) == 239;
            answered++;
        }
    }
    send_all(c, "QUIT\r\n", 6);
    close(c->fd);
    free(c);
    return (void *)ok;
}

int main(int argc, char **argv)
{
    if (argc < 7)
        die("usage: nntpload HOST PORT post|article|takethis CONNS COUNT GROUP [TAG]");
    host = argv[1];
    port = atoi(argv[2]);
    mode = argv[3];
    int conns = atoi(argv[4]);
    count = atoi(argv[5]);
    group = argv[6];
    tag = argc > 7 ? argv[7] : "x";
    pthread_t th[256];
    if (conns < 1 || conns > 256)
        die("1..256 connections");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < conns; i++)
        pthread_create(&th[i], NULL, worker, (void *)(long)i);
    long ok = 0;
    for (int i = 0; i < conns; i++) {
        void *r;
        pthread_join(th[i], &r);
        ok += (long)r;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("ops=%ld secs=%.3f rate=%.0f\n", ok, secs, ok / secs);
    return 0;
}
