/*
 * sandbox.h - what a network worker may still do once it has started.
 *
 * The component skeleton (ipc/component_loop.h, asked by net_worker_new)
 * calls sandbox_enter for every network worker kind, after privileges are
 * dropped and before the first byte from the network is read. It applies,
 * for the rest of the process's life:
 *   - a seccomp filter (libseccomp): execve, execveat, ptrace and
 *     process_vm_readv/writev kill the process (ptrace stays allowed in
 *     sanitizer builds, whose leak checker needs it); mount, unshare, bpf,
 *     keyctl, userfaultfd, perf_event_open and the like fail with EPERM;
 *     socket() for any family but AF_UNIX, AF_INET and AF_INET6 fails with
 *     EAFNOSUPPORT;
 *   - a Landlock ruleset, when the kernel has Landlock (else one log line):
 *     read-only /usr, /lib, /etc, /proc, /sys, /dev; read-write the
 *     DATA_DIRECTORY folders the component names (component_def.sandbox_data);
 *     nothing else, so neither DATA/auth (the password hashes) nor
 *     DATA/directory nor DATA/tls, nor /tmp: SQLITE_TMPDIR and TMPDIR point
 *     at the first of the component's folders instead.
 * doc/architecture.md has the table per process. worker_sandbox = no turns
 * it off (with a warning), for debugging only.
 *
 * Must never: be applied before the worker has dropped root.
 */
#ifndef WHARF_BASE_SANDBOX_H
#define WHARF_BASE_SANDBOX_H

#include "base/config.h"

/* Confines this process (see above); exits when it cannot. data_rw: NULL-terminated. */
void sandbox_enter(const struct wharf_config *cfg, const char *name, const char *const *data_rw);

/*
 * TEST BUILDS ONLY: with the test_hooks option (never in production), runs
 * action inside this worker: "exec" calls execve (the filter kills the
 * process), "open PATH" tries to open PATH and logs the outcome. A no-op
 * when test_hooks is off. Reached through the IPC_EVENT_TEST_HOOK event.
 */
void sandbox_test_hook(const struct wharf_config *cfg, const char *name, const char *action);

#endif
