/*
 * spawnload.c - the `cli` driver of bench/store/run without Python in the
 * way: runs TOTAL `wharf -c CONF deliver benchN` processes, PARALLEL at a
 * time, each with its own message on stdin (a memfd: "X-Bench: I" + MSGFILE,
 * so no two bodies are equal; a failing one says why on stderr), and prints one line:
 *   "N deliveries/s (TOTAL in S s, F failed)"; exit 1 if any failed.
 *
 *   spawnload WHARF CONF MSGFILE TOTAL PARALLEL
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0)
        return NULL;
    long n = ftell(f);
    char *p = malloc((size_t)n + 1);
    rewind(f);
    if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n)
        return NULL;
    fclose(f);
    *len = (size_t)n;
    return p;
}

static int spawn_one(char *wharf, char *conf, const char *msg, size_t len, int i, pid_t *pid)
{
    char head[64], user[32];
    int hl = snprintf(head, sizeof(head), "X-Bench: %d\r\n", i);
    snprintf(user, sizeof(user), "bench%d", i % 100);
    int fd = memfd_create("msg", MFD_CLOEXEC);
    if (fd < 0 || write(fd, head, (size_t)hl) != hl || write(fd, msg, len) != (ssize_t)len ||
        lseek(fd, 0, SEEK_SET) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *argv[] = {wharf, "-c", conf, "deliver", user, NULL};
    int r = posix_spawn(pid, wharf, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    return r == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: spawnload WHARF CONF MSGFILE TOTAL PARALLEL\n");
        return 2;
    }
    size_t len;
    char *msg = slurp(argv[3], &len);
    int total = atoi(argv[4]), par = atoi(argv[5]), started = 0, running = 0, failed = 0;
    if (msg == NULL || total <= 0 || par <= 0) {
        fprintf(stderr, "spawnload: bad arguments\n");
        return 2;
    }
    double t0 = now();
    while (started < total || running > 0) {
        while (started < total && running < par) {
            pid_t pid;
            if (spawn_one(argv[1], argv[2], msg, len, started, &pid) != 0)
                failed++;
            else
                running++;
            started++;
        }
        int st;
        if (wait(&st) > 0) {
            running--;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                failed++;
        }
    }
    double el = now() - t0;
    printf("%.0f deliveries/s (%d in %.2fs, %d failed)\n", total / el, total, el, failed);
    return failed ? 1 : 0;
}
