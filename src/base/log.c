/*
 * log.c - syslog or stderr logging in syslog's line shape.
 */
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_ident[64] = "wharf";
static enum log_target log_target = LOG_TO_STDERR;
static bool log_debug_on;
static char log_host[256];

void log_init(const char *component, enum log_target target)
{
    snprintf(log_ident, sizeof(log_ident), "wharf/%s", component);
    log_target = target;
    if (gethostname(log_host, sizeof(log_host)) != 0)
        snprintf(log_host, sizeof(log_host), "localhost");
    log_host[sizeof(log_host) - 1] = '\0';
    char *dot = strchr(log_host, '.');
    if (dot)
        *dot = '\0';
    if (target == LOG_TO_SYSLOG) {
        closelog();
        openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
    }
}

void log_set_debug(bool on)
{
    log_debug_on = on;
}

bool log_debug_enabled(void)
{
    return log_debug_on;
}

enum log_target log_get_target(void)
{
    return log_target;
}

__attribute__((format(printf, 3, 0))) static void log_write(int prio, const char *level,
                                                            const char *fmt, va_list ap)
{
    int saved = errno;
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* Keep one event on one line whatever the message held. */
    for (char *p = msg; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    if (log_target == LOG_TO_SYSLOG) {
        if (level)
            syslog(prio, "%s: %s", level, msg);
        else
            syslog(prio, "%s", msg);
    } else {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
        if (!log_host[0])
            snprintf(log_host, sizeof(log_host), "localhost");
        /* One write() per line so lines from many processes never interleave. */
        char line[2400];
        int n = snprintf(line, sizeof(line), "%s %s %s[%ld]: %s%s%s\n", stamp, log_host, log_ident,
                         (long)getpid(), level ? level : "", level ? ": " : "", msg);
        if (n > (int)sizeof(line) - 1)
            n = (int)sizeof(line) - 1;
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w;
    }
    errno = saved;
}

#define LOG_FN(name, prio, level)                                                                  \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_write(prio, level, fmt, ap);                                                           \
        va_end(ap);                                                                                \
    }

void log_debug(const char *fmt, ...)
{
    if (!log_debug_on)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(LOG_DEBUG, "debug", fmt, ap);
    va_end(ap);
}

LOG_FN(log_info, LOG_INFO, NULL)
LOG_FN(log_warning, LOG_WARNING, "warning")
LOG_FN(log_error, LOG_ERR, "error")

void log_fatal(int exit_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write(LOG_CRIT, "fatal", fmt, ap);
    va_end(ap);
    exit(exit_code);
}

void log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write(LOG_CRIT, "panic", fmt, ap);
    va_end(ap);
    abort();
}
