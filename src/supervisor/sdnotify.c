/*
 * sdnotify.c - the NOTIFY_SOCKET protocol of sd_notify(3): one datagram of
 * "KEY=value" lines to the unix socket systemd names (a path, or "@name" in
 * the abstract namespace).
 *
 * Must never block wharfd or fail it: the socket is non-blocking and a
 * message that cannot be sent is dropped (systemd then sees a missing
 * watchdog ping or a late READY, which is what happened).
 */
#include "supervisor/sdnotify.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static long long watchdog_usec;
static struct event *watchdog_ev;

void sdnotify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    size_t len = path ? strlen(path) : 0;
    if (len >= 2 && len < sizeof(notify_addr.sun_path) && (path[0] == '/' || path[0] == '@')) {
        notify_addr.sun_family = AF_UNIX;
        memcpy(notify_addr.sun_path, path, len);
        if (path[0] == '@')
            notify_addr.sun_path[0] = '\0';
        notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (notify_len && usec && (pid == NULL || atoll(pid) == (long long)getpid()))
        watchdog_usec = atoll(usec);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

bool sdnotify_enabled(void)
{
    return notify_len != 0;
}

static void send_text(const char *text, size_t len)
{
    if (!notify_len)
        return;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    if (sendto(fd, text, len, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr, notify_len) < 0)
        log_debug("sd_notify: cannot send to NOTIFY_SOCKET: %s", strerror(errno));
    close(fd);
}

void sdnotify(const char *fmt, ...)
{
    if (!notify_len)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n > 0)
        send_text(text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

void sdnotify_reloading(void)
{
    sdnotify("RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%lld",
             (long long)monotonic_us());
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    send_text("WATCHDOG=1", 10);
}

void sdnotify_watchdog_start(struct event_base *base)
{
    if (watchdog_usec <= 0 || watchdog_ev != NULL)
        return;
    long long half = watchdog_usec / 2;
    struct timeval tv = {.tv_sec = half / 1000000, .tv_usec = half % 1000000};
    watchdog_ev = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
    event_add(watchdog_ev, &tv);
    send_text("WATCHDOG=1", 10);
}

void sdnotify_watchdog_stop(void)
{
    if (watchdog_ev != NULL) {
        event_free(watchdog_ev);
        watchdog_ev = NULL;
    }
}
