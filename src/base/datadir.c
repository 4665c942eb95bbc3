/*
 * datadir.c - creating DATA_DIRECTORY's folders with the right owners.
 */
#include "base/datadir.h"
#include "base/fdio.h"
#include "base/alloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static bool user_ids(const char *name, uid_t *uid_r, gid_t *gid_r)
{
    struct passwd *pw = getpwnam(name);
    if (pw == NULL)
        return false;
    *uid_r = pw->pw_uid;
    *gid_r = pw->pw_gid;
    return true;
}

bool datadir_wharf_ids(const struct wharf_config *cfg, uid_t *uid_r, gid_t *gid_r)
{
    return user_ids(cfg->wharf_user, uid_r, gid_r);
}

bool datadir_auth_ids(const struct wharf_config *cfg, uid_t *uid_r, gid_t *gid_r)
{
    return user_ids(cfg->auth_user, uid_r, gid_r);
}

/* Runs useradd with an argv (never a shell). */
static int create_user(const char *name, struct buf *err)
{
    const char *paths[] = {"/usr/sbin/useradd", "/sbin/useradd"};
    for (size_t i = 0; i < 2; i++) {
        if (access(paths[i], X_OK) != 0)
            continue;
        char *argv[] = {
            (char *)paths[i], "--system", "--user-group",      "--no-create-home", "--home-dir",
            "/nonexistent",   "--shell",  "/usr/sbin/nologin", (char *)name,       NULL};
        pid_t pid;
        if (posix_spawn(&pid, paths[i], NULL, NULL, argv, environ) != 0)
            break;
        int status;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
            return 0;
        buf_printf(err, "useradd %s failed; create the user by hand or set wharf_user/auth_user",
                   name);
        return -1;
    }
    buf_printf(err, "user '%s' does not exist and useradd is not available; create it", name);
    return -1;
}

/* Creates path (or takes it as it is) with owner uid:gid (when chown_it) and exactly mode. */
static int make_dir(const char *path, mode_t mode, uid_t uid, gid_t gid, bool chown_it,
                    struct buf *err)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        buf_printf(err, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        buf_printf(err, "%s is not a directory", path);
        return -1;
    }
    if (chown_it && (st.st_uid != uid || st.st_gid != gid) && chown(path, uid, gid) != 0) {
        buf_printf(err, "cannot chown %s: %s", path, strerror(errno));
        return -1;
    }
    /* mkdir drops the setgid bit and obeys the umask, chown clears setgid;
     * a folder someone else owns (not as root) is left as it is */
    bool mine = chown_it || st.st_uid == geteuid();
    if (mine && ((st.st_mode & 07777) != mode || st.st_uid != uid || st.st_gid != gid)) {
        if (chmod(path, mode) != 0) {
            buf_printf(err, "cannot chmod %s: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* The ids of user name, created (useradd) when missing. */
static int ensure_user(const char *name, uid_t *uid_r, gid_t *gid_r, struct buf *err)
{
    if (user_ids(name, uid_r, gid_r))
        return 0;
    if (create_user(name, err) != 0)
        return -1;
    if (!user_ids(name, uid_r, gid_r)) {
        buf_printf(err, "user '%s' still missing after useradd", name);
        return -1;
    }
    return 0;
}

int datadir_prepare(const struct wharf_config *cfg, struct buf *err)
{
    bool root = geteuid() == 0;
    uid_t uid = geteuid(), auth_uid = uid;
    gid_t gid = getegid(), auth_gid = gid;
    if (root) {
        if (strcmp(cfg->wharf_user, cfg->auth_user) == 0) {
            buf_printf(err,
                       "auth_user must differ from wharf_user ('%s'): the workers must not "
                       "be able to read the password hashes",
                       cfg->wharf_user);
            return -1;
        }
        if (ensure_user(cfg->wharf_user, &uid, &gid, err) != 0 ||
            ensure_user(cfg->auth_user, &auth_uid, &auth_gid, err) != 0)
            return -1;
        if (uid == 0 || auth_uid == 0 || uid == auth_uid) {
            buf_printf(err, "wharf_user and auth_user must be two distinct users, neither root");
            return -1;
        }
    }
    static const struct {
        const char *sub;
        mode_t mode;
        bool wharf_owned;
    } dirs[] = {
        {"run", 0750, true},
        {"store", 0700, true},
        {"directory", 0700, true},
        {"spool", 0700, true},
        {"tls", 0700, false},
        {"maildrop", DATADIR_MAILDROP_MODE, true},
        {"dkim", 0700, true},
        {"mta-sts", 0700, true},        /* the mta's cache of MTA-STS policies */
        {"tlsrpt", 0700, true},         /* the mta's TLS-RPT records (RFC 8460) */
        {"routing", 0700, true},        /* the organization: key, configuration, link state */
        {"acme-challenge", 0755, true}, /* ACME http-01 files, read by http on port 80 */
    };
    /* DATA itself: root-owned, group wharf so the components can enter it,
     * and others only to reach the maildrop (they cannot list DATA). */
    if (make_dir(cfg->data_directory, 0751, root ? 0 : uid, gid, root, err) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char *p = config_data_path(cfg, dirs[i].sub);
        int r = make_dir(p, dirs[i].mode, dirs[i].wharf_owned ? uid : (root ? 0 : uid),
                         dirs[i].wharf_owned ? gid : (root ? 0 : gid), root, err);
        free(p);
        if (r != 0)
            return -1;
    }
    /* The credentials: the auth user's alone (and root's). */
    char *auth = config_data_path(cfg, "auth");
    int r = make_dir(auth, 0700, auth_uid, auth_gid, root, err);
    free(auth);
    if (r != 0)
        return -1;
    return 0;
}

int datadir_copy_file(const char *from, const char *to, uint64_t *bytes_r)
{
    int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return errno == ENOENT ? 1 : -1;
    struct stat st;
    int rc = -1;
    if (fstat(in, &st) != 0)
        ; /* errno set */
    else if (!S_ISREG(st.st_mode))
        errno = EINVAL;
    else if (datadir_copy_fd(in, (uint64_t)st.st_size, to, st.st_mode & 0777) == 0) {
        rc = 0;
        if (bytes_r)
            *bytes_r = (uint64_t)st.st_size;
    }
    int saved = errno;
    close(in);
    errno = saved;
    return rc;
}

/* Removes the temporary files of path (path.PID.tmp) whose writer no longer runs: a
 * crash between their creation and the rename left them (with what they held: a
 * login cache's hashes, tokens). A live writer's, or another process's it may not
 * signal (EPERM: alive), stays. */
static void remove_dead_tmp(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    struct buf dir = BUF_INIT;
    if (slash)
        buf_append(&dir, path, slash == path ? 1 : (size_t)(slash - path));
    else
        buf_append_cstr(&dir, ".");
    DIR *d = opendir(buf_cstr(&dir));
    buf_free(&dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strncmp(n, base, blen) != 0 || n[blen] != '.' || !isdigit((unsigned char)n[blen + 1]))
            continue;
        char *end;
        errno = 0;
        long pid = strtol(n + blen + 1, &end, 10);
        if (errno != 0 || strcmp(end, ".tmp") != 0 || pid <= 0 || pid > INT_MAX ||
            pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

int datadir_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    remove_dead_tmp(path);
    struct buf tmp = BUF_INIT;
    buf_printf(&tmp, "%s.%ld.tmp", path, (long)getpid());
    int fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    int rc = -1;
    if (fd >= 0) {
        rc = fd_write_all(fd, data, len) == 0 && fsync(fd) == 0 ? 0 : -1;
        int e = errno;
        close(fd);
        if (rc == 0 && rename(buf_cstr(&tmp), path) != 0)
            rc = -1, e = errno;
        if (rc != 0)
            unlink(buf_cstr(&tmp));
        errno = e;
    }
    buf_free(&tmp);
    return rc;
}

int datadir_syncfs(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = syncfs(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int datadir_copy_fd(int in, uint64_t len, const char *path, mode_t mode)
{
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (out < 0)
        return -1;
    off_t off = 0;
    char buf[65536];
    while ((uint64_t)off < len) {
        size_t want = (size_t)(len - (uint64_t)off) > sizeof(buf) ? sizeof(buf)
                                                                  : (size_t)(len - (uint64_t)off);
        /* shorter than it was a moment ago (EIO): not for a segment */
        if (fd_pread_exact(in, buf, want, off) != 0 || fd_write_all(out, buf, want) != 0) {
            close(out);
            return -1;
        }
        off += (off_t)want;
    }
    return close(out);
}
