/*
 * sdnotify.h - telling systemd (Type=notify) how wharfd is doing, with the
 * plain NOTIFY_SOCKET datagram protocol (sd_notify(3)), no libsystemd.
 *
 * Without NOTIFY_SOCKET in the environment (not started by systemd) every
 * call is a no-op. sdnotify_init takes the variables out of the environment
 * so that no component process inherits the socket.
 */
#ifndef WHARF_SUPERVISOR_SDNOTIFY_H
#define WHARF_SUPERVISOR_SDNOTIFY_H

#include <event2/event.h>
#include <stdbool.h>

/* Reads and unsets NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. */
void sdnotify_init(void);
/* True when systemd is listening. */
bool sdnotify_enabled(void);
/* Sends "KEY=value\n..." lines as one datagram; printf-style. */
void sdnotify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "RELOADING=1" with the MONOTONIC_USEC systemd asks for. */
void sdnotify_reloading(void);
/* When systemd set WatchdogSec=, pings it at half that interval from base's loop. */
void sdnotify_watchdog_start(struct event_base *base);
void sdnotify_watchdog_stop(void);

#endif
