/*
 * log.h - logging with fixed meanings for each level.
 *
 *   log_panic   a bug in Wharf: logs and aborts (core dump for the developer).
 *   log_fatal   bad environment or configuration: logs and exits with the
 *               given sysexits code.
 *   log_error   one session's or one message's trouble; the process goes on.
 *   log_warning something an admin should look at; the process goes on.
 *   log_info    normal events, one line each, in Postfix's shapes where an
 *               equivalent exists (so pflogsumm and fail2ban read them).
 *   log_debug   only when debug logging is on.
 *
 * Lines go to syslog (facility mail) with the ident "wharf/COMPONENT", or to
 * stderr in syslog's own line shape ("Mon DD HH:MM:SS host ident[pid]: msg")
 * when running in the foreground, so the same tools read both.
 * Never log a password or a credential.
 */
#ifndef WHARF_BASE_LOG_H
#define WHARF_BASE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_target {
    LOG_TO_STDERR,
    LOG_TO_SYSLOG,
};

/* component: "wharfd", "smtp", "mta", ... (ident becomes "wharf/<component>"). */
void log_init(const char *component, enum log_target target);
void log_set_debug(bool on);
bool log_debug_enabled(void);
enum log_target log_get_target(void);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(int exit_code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * WHARF_ASSERT(cond): a condition only a bug in Wharf can make false. When it
 * is false, logs "assertion failed: FILE:LINE: cond" through log_panic and
 * aborts. Active in every build (never compiled out like assert() under
 * NDEBUG), so cond is always evaluated. Never for input from outside: bad
 * input gets a protocol error and the server goes on.
 */
#define WHARF_ASSERT(cond)                                                                         \
    ((cond) ? (void)0 : log_panic("assertion failed: %s:%d: %s", __FILE__, __LINE__, #cond))

#endif
