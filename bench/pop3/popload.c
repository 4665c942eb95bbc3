/*
 * popload.c - POP3 RETR load generator for bench/pop3: one thread per
 * connection, each logs in as its own user, pipelines RETR 1..N in batches
 * and reads every reply to its terminating ".", then QUITs without DELE.
 * usage: popload HOST PORT USERFMT PASSWORD CONNS MESSAGES
 *   USERFMT contains one %d (the connection number, from 0).
 * Prints: retrieved=N seconds=S rate=R bytes=B
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

#define BATCH 32

static const char *host, *userfmt, *password;
static int port, messages;
static long long total_bytes;
static int total_retr, failures;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

struct rd {
    int fd;
    char buf[1 << 16];
    size_t start, end;
};

static int fill(struct rd *r)
{
    if (r->start > 0 && r->start == r->end)
        r->start = r->end = 0;
    if (r->end == sizeof(r->buf)) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    ssize_t n = read(r->fd, r->buf + r->end, sizeof(r->buf) - r->end);
    if (n <= 0)
        return -1;
    r->end += (size_t)n;
    return 0;
}

/* Reads one line; returns its length (without CRLF) and copies up to cap. */
static int line(struct rd *r, char *out, size_t cap)
{
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            size_t len = (size_t)(nl - (r->buf + r->start)) + 1;
            size_t c = len < cap ? len : cap - 1;
            memcpy(out, r->buf + r->start, c);
            out[c] = 0;
            r->start += len;
            return (int)len;
        }
        if (r->end - r->start == sizeof(r->buf))
            r->start = r->end; /* a huge line: drop it */
        if (fill(r) < 0)
            return -1;
    }
}

static void sendall(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *run(void *arg)
{
    int id = (int)(long)arg;
    char user[256], cmd[512], ln[1024];
    snprintf(user, sizeof(user), userfmt, id);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("connect");
        __sync_fetch_and_add(&failures, 1);
        return NULL;
    }
    struct rd *r = calloc(1, sizeof(*r));
    r->fd = fd;
    line(r, ln, sizeof(ln));
    snprintf(cmd, sizeof(cmd), "USER %s\r\nPASS %s\r\n", user, password);
    sendall(fd, cmd, strlen(cmd));
    line(r, ln, sizeof(ln));
    line(r, ln, sizeof(ln));
    if (strncmp(ln, "+OK", 3) != 0) {
        fprintf(stderr, "login %s: %s", user, ln);
        __sync_fetch_and_add(&failures, 1);
        return NULL;
    }
    long long bytes = 0;
    int done = 0;
    for (int i = 1; i <= messages; i += BATCH) {
        int n = 0;
        char batch[BATCH * 24];
        size_t bl = 0;
        for (int k = i; k < i + BATCH && k <= messages; k++, n++)
            bl += (size_t)snprintf(batch + bl, sizeof(batch) - bl, "RETR %d\r\n", k);
        sendall(fd, batch, bl);
        for (int k = 0; k < n; k++) {
            if (line(r, ln, sizeof(ln)) < 0 || strncmp(ln, "+OK", 3) != 0) {
                fprintf(stderr, "RETR: %s", ln);
                __sync_fetch_and_add(&failures, 1);
                return NULL;
            }
            int len;
            while ((len = line(r, ln, sizeof(ln))) >= 0) {
                if (len == 3 && ln[0] == '.' && ln[1] == '\r')
                    break;
                bytes += len;
            }
            done++;
        }
    }
    sendall(fd, "QUIT\r\n", 6);
    line(r, ln, sizeof(ln));
    close(fd);
    free(r);
    pthread_mutex_lock(&mu);
    total_bytes += bytes;
    total_retr += done;
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: popload HOST PORT USERFMT PASSWORD CONNS MESSAGES\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    userfmt = argv[3];
    password = argv[4];
    int conns = atoi(argv[5]);
    messages = atoi(argv[6]);
    pthread_t *t = calloc((size_t)conns, sizeof(*t));
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < conns; i++)
        pthread_create(&t[i], NULL, run, (void *)(long)i);
    for (int i = 0; i < conns; i++)
        pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("retrieved=%d seconds=%.3f rate=%.0f bytes=%lld failures=%d\n", total_retr, s,
           total_retr / s, total_bytes, failures);
    return failures ? 1 : 0;
}
