/*
 * datadir.h - the layout of DATA_DIRECTORY and who owns what in it.
 *
 *   DATA/            root:wharf 0751 (others may only pass through, to the maildrop)
 *   DATA/run/        wharf 0750   control.sock (root), auth.sock, deliver.sock, pid file
 *   DATA/store/      wharf 0700   the Information Store (metadata and blobs)
 *   DATA/directory/  wharf 0700   the embedded directory (domains, accounts, aliases, quotas;
 *                                 no hashes): the directory process and the mta open it
 *   DATA/auth/       auth  0700   credentials.db, the password hashes (and tokens, the
 *                                 app passwords; login-cache, the hashes of the last
 *                                 LDAP logins): only the auth process (user
 *                                 auth_user) and root open them
 *   DATA/spool/      wharf 0700   the mail queue
 *   DATA/tls/        root  0700   certificate and key (read before privileges drop)
 *   DATA/dkim/       wharf 0700   DKIM signing keys, read by the mta only (mailauth/dkim_keys.h)
 *   DATA/routing/    wharf 0700   the organization: key, configuration, link state (org.h)
 *   DATA/maildrop/   wharf 3733   `wharf sendmail` while wharfd is down (spool/maildrop.h):
 *                                 any user creates, nobody else lists, reads or removes
 *
 * Every process that writes under DATA calls datadir_prepare() first (as
 * root it creates the wharf user if missing and fixes ownership) and then
 * drops to the wharf user, so files are never left owned by root where an
 * unprivileged component must write.
 */
#ifndef WHARF_BASE_DATADIR_H
#define WHARF_BASE_DATADIR_H

#include "base/buf.h"
#include "base/config.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Creates the folders above (and the wharf and auth users when running as
 * root and they are missing). Returns 0, or -1 with err.
 */
/* Sticky, setgid (files get group wharf), rwx for wharf, -wx for everyone else. */
#define DATADIR_MAILDROP_MODE 03733

int datadir_prepare(const struct wharf_config *cfg, struct buf *err);

/* uid/gid of cfg->wharf_user; false if there is no such user. */
bool datadir_wharf_ids(const struct wharf_config *cfg, uid_t *uid_r, gid_t *gid_r);
/* uid/gid of cfg->auth_user; false if there is no such user. */
bool datadir_auth_ids(const struct wharf_config *cfg, uid_t *uid_r, gid_t *gid_r);

/*
 * Copies the first len bytes of the open file in (read from offset 0, its
 * own position untouched) into a new file path (never an existing one) with
 * mode; a file shorter than len is an error (EIO). Backups of data files
 * (wharf backup, the store driver's segments). 0, or -1 with errno.
 */
int datadir_copy_fd(int in, uint64_t len, const char *path, mode_t mode);
/*
 * Copies the regular file from into a new file to (never an existing one),
 * keeping its mode; *bytes_r (may be NULL) gets its size. 0 copied, 1 when
 * from does not exist (gone meanwhile, or never made), -1 with errno.
 */
int datadir_copy_file(const char *from, const char *to, uint64_t *bytes_r);
/*
 * Replaces the file path with the len bytes of data, whole or not at all: they
 * go to a temporary file beside it (path.PID.tmp, created with mode), which is
 * fsynced, then renamed over path; a crash at any point leaves the old file or
 * the new one, never a part of one (and a temporary file of path whose writer no
 * longer runs, which a crash left, is removed first). The one way Wharf rewrites a
 * state file.
 * 0, or -1 with errno (the temporary file removed).
 */
int datadir_write_file(const char *path, const void *data, size_t len, mode_t mode);
/* Makes everything written under path's file system durable (syncfs): the end of
 * a backup, restore or export. 0, or -1 with errno. */
int datadir_syncfs(const char *path);
#endif
