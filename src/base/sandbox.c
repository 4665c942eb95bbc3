/*
 * sandbox.c - confining a network worker once it has started (sandbox.h):
 * a seccomp filter (libseccomp) and a Landlock ruleset.
 *
 * Must never: loosen a filter already in place, or leave a process half
 * confined without saying so in the log.
 */
#include "base/sandbox.h"
#include "base/alloc.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sysexits.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

/* ---- seccomp ---- */

static int add_rule(scmp_filter_ctx f, uint32_t action, int nr, unsigned n_args,
                    const struct scmp_arg_cmp *args)
{
    int r = seccomp_rule_add_array(f, action, nr, n_args, args);
    /* A system call this architecture does not have cannot be made anyway. */
    return r == -EDOM || r == -EFAULT ? 0 : r;
}

static int apply_seccomp(void)
{
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    if (f == NULL)
        return -ENOMEM;
    int r = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1); /* threads already running too */
    /* Running another program: the first thing an exploit does. Killed. */
    static const int kill[] = {SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(ptrace),
                               SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev)};
    for (size_t i = 0; r == 0 && i < sizeof(kill) / sizeof(kill[0]); i++) {
#ifdef SANDBOX_SANITIZER
        /* LeakSanitizer stops the threads with ptrace at exit. */
        if (kill[i] == SCMP_SYS(ptrace))
            continue;
#endif
        r = add_rule(f, SCMP_ACT_KILL_PROCESS, kill[i], 0, NULL);
    }
    /* Kernel surfaces no worker has a use for: refused. */
    static const int refuse[] = {
        SCMP_SYS(mount),       SCMP_SYS(umount2),      SCMP_SYS(pivot_root),
        SCMP_SYS(chroot),      SCMP_SYS(unshare),      SCMP_SYS(setns),
        SCMP_SYS(bpf),         SCMP_SYS(userfaultfd),  SCMP_SYS(perf_event_open),
        SCMP_SYS(keyctl),      SCMP_SYS(add_key),      SCMP_SYS(request_key),
        SCMP_SYS(init_module), SCMP_SYS(finit_module), SCMP_SYS(kexec_load),
        SCMP_SYS(personality),
    };
    for (size_t i = 0; r == 0 && i < sizeof(refuse) / sizeof(refuse[0]); i++)
        r = add_rule(f, SCMP_ACT_ERRNO(EPERM), refuse[i], 0, NULL);
    /* Sockets: unix (IPC), IPv4 and IPv6 only. Families 0..AF_INET6 are
     * listed one by one; everything above (netlink, packet, ...) at once. */
    struct scmp_arg_cmp above = {.arg = 0, .op = SCMP_CMP_GT, .datum_a = AF_INET6, .datum_b = 0};
    if (r == 0)
        r = add_rule(f, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, &above);
    for (int fam = 0; r == 0 && fam < AF_INET6; fam++) {
        if (fam == AF_UNIX || fam == AF_INET)
            continue;
        struct scmp_arg_cmp eq = {
            .arg = 0, .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)fam, .datum_b = 0};
        r = add_rule(f, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, &eq);
    }
    if (r == 0)
        r = seccomp_load(f); /* sets no_new_privs first */
    seccomp_release(f);
    return r;
}

/* ---- Landlock ---- */

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_WRITE_V1                                                                                \
    (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |                               \
     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |  \
     LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |   \
     LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK)

/* Read-only everywhere a library may look (shared objects, NSS, OpenSSL's
 * configuration, zone info, /proc/self for the sanitizers). */
static const char *const read_paths[] = {"/usr", "/lib", "/lib64", "/etc", "/proc", "/sys", "/dev"};

static int add_path(int ruleset, const char *path, uint64_t access, uint64_t handled)
{
    struct landlock_path_beneath_attr pb = {.allowed_access = access & handled};
    pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
    if (pb.parent_fd < 0)
        return errno == ENOENT ? 0 : -1; /* a path this system does not have */
    int r = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    int e = errno;
    close(pb.parent_fd);
    errno = e;
    return r;
}

/* 1: applied; 0: the kernel has no Landlock; -1 with errno. */
static int apply_landlock(const struct wharf_config *cfg, const char *const *data_rw)
{
    int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1)
        return 0;
    uint64_t handled = FS_READ | FS_WRITE_V1 | LANDLOCK_ACCESS_FS_EXECUTE;
    if (abi >= 2)
        handled |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        handled |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    struct landlock_ruleset_attr attr = {.handled_access_fs = handled};
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (rs < 0)
        return -1;
    uint64_t rw = FS_READ | FS_WRITE_V1 | LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE;
    int r = 0;
    for (size_t i = 0; r == 0 && i < sizeof(read_paths) / sizeof(read_paths[0]); i++)
        r = add_path(rs, read_paths[i], FS_READ, handled);
    /* /dev/null and friends are written to, never created. */
    if (r == 0)
        r = add_path(rs, "/dev/null", LANDLOCK_ACCESS_FS_WRITE_FILE, handled);
    for (size_t i = 0; r == 0 && data_rw && data_rw[i]; i++) {
        char *p = config_data_path(cfg, data_rw[i]);
        if (mkdir(p, 0700) != 0 && errno != EEXIST) /* the component's own, made before it runs */
            r = -1;
        else
            r = add_path(rs, p, rw, handled);
        free(p);
    }
    if (r == 0)
        r = (int)syscall(SYS_landlock_restrict_self, rs, 0);
    int e = errno;
    close(rs);
    errno = e;
    return r == 0 ? 1 : -1;
}

void sandbox_enter(const struct wharf_config *cfg, const char *name, const char *const *data_rw)
{
    if (!cfg->worker_sandbox) {
        log_warning("%s: worker_sandbox is off: this worker may exec programs and open any file "
                    "its user can",
                    name);
        return;
    }
    /* Needed by Landlock for an unprivileged process; seccomp_load sets it too. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        log_fatal(EX_OSERR, "%s: cannot set no_new_privs: %s", name, strerror(errno));
    /* /tmp is out of reach (DATA may well be under it): SQLite and the
     * libraries put their temporary files in the first folder of the worker. */
    if (data_rw && data_rw[0]) {
        char *tmp = config_data_path(cfg, data_rw[0]);
        setenv("SQLITE_TMPDIR", tmp, 1);
        setenv("TMPDIR", tmp, 1);
        free(tmp);
    }
    int ll = apply_landlock(cfg, data_rw);
    if (ll < 0)
        log_fatal(EX_OSERR, "%s: cannot apply the Landlock ruleset: %s", name, strerror(errno));
    int r = apply_seccomp();
    if (r != 0)
        log_fatal(EX_OSERR, "%s: cannot load the seccomp filter: %s", name, strerror(-r));
    if (ll == 0)
        log_warning("%s: this kernel has no Landlock: the worker is confined by seccomp and file "
                    "modes only",
                    name);
    else
        log_debug("%s: confined (seccomp, Landlock)", name);
#ifdef SANDBOX_SANITIZER
    log_debug("%s: sanitizer build: ptrace stays allowed for LeakSanitizer", name);
#endif
}

void sandbox_test_hook(const struct wharf_config *cfg, const char *name, const char *action)
{
    if (!cfg->test_hooks)
        return;
    if (strcmp(action, "exec") == 0) {
        log_warning("%s: test hook: calling execve(/bin/true)", name);
        char *argv[] = {(char *)"true", NULL};
        execve("/bin/true", argv, NULL);
        log_warning("%s: test hook: execve failed: %s", name, strerror(errno));
    } else if (strncmp(action, "open ", 5) == 0) {
        const char *path = action + 5;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            log_warning("%s: test hook: open %s: opened", name, path);
            close(fd);
        } else {
            log_warning("%s: test hook: open %s: refused: %s", name, path, strerror(errno));
        }
    }
}
