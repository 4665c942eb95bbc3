/*
 * pop3_maildrop.c - locking, snapshot and UPDATE-state commit of a maildrop.
 *
 * Must never expunge anything but what the session marked, and never keep a
 * lock after the session is gone.
 */
#include "pop3/pop3_maildrop.h"
#include "base/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int pop3_maildrop_init(const struct wharf_config *cfg, struct buf *err)
{
    char *dir = config_data_path(cfg, "run/pop3");
    int r = 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        buf_printf(err, "cannot create %s: %s", dir, strerror(errno));
        r = -1;
    }
    free(dir);
    return r;
}

/* The lock file's name: a hash, so no account name ever becomes a path. */
static char *lock_path(const struct wharf_config *cfg, const char *account)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(account, strlen(account), md, &mdlen, EVP_sha256(), NULL);
    struct buf rel = BUF_INIT;
    buf_append_cstr(&rel, "run/pop3/");
    for (unsigned i = 0; i < 16 && i < mdlen; i++)
        buf_printf(&rel, "%02x", md[i]);
    buf_append_cstr(&rel, ".lock");
    char *p = config_data_path(cfg, buf_cstr(&rel));
    buf_free(&rel);
    return p;
}

enum pop3_open_result pop3_maildrop_open(struct pop3_maildrop *md, struct store *store,
                                         const struct wharf_config *cfg, const char *account,
                                         struct buf *err)
{
    memset(md, 0, sizeof(*md));
    md->lock_fd = -1;
    char *path = lock_path(cfg, account);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        buf_printf(err, "cannot open lock %s: %s", path, strerror(errno));
        free(path);
        return POP3_OPEN_TEMP;
    }
    free(path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return POP3_OPEN_IN_USE;
        buf_printf(err, "cannot lock maildrop: %s", strerror(e));
        return POP3_OPEN_TEMP;
    }
    md->lock_fd = fd;
    md->account = xstrdup(account);

    struct store_mailbox mb;
    struct store_mailbox *all = NULL;
    size_t n_all = 0;
    /* Listing creates the default folders on an account's first use. */
    if (store_mailbox_list(store, account, &all, &n_all, err) != 0 ||
        store_mailbox_get(store, account, STORE_INBOX, &mb, err) != 0) {
        store_mailbox_list_free(all, n_all);
        pop3_maildrop_close(md);
        return POP3_OPEN_TEMP;
    }
    store_mailbox_list_free(all, n_all);
    md->uidvalidity = mb.uidvalidity;
    md->inbox_id = mb.id;
    store_mailbox_free(&mb);

    struct store_message *list = NULL;
    size_t n = 0;
    if (store_message_list_id(store, account, md->inbox_id, 1, &list, &n, err) != 0) {
        pop3_maildrop_close(md);
        return POP3_OPEN_TEMP;
    }
    md->msgs = xcalloc(n ? n : 1, sizeof(*md->msgs));
    for (size_t i = 0; i < n; i++)
        md->msgs[i] = (struct pop3_msg){.uid = list[i].uid, .size = list[i].size};
    md->n = n;
    store_message_list_free(list, n);
    return POP3_OPEN_OK;
}

void pop3_maildrop_close(struct pop3_maildrop *md)
{
    if (md->lock_fd >= 0)
        close(md->lock_fd); /* releases the flock */
    md->lock_fd = -1;
    free(md->msgs);
    free(md->account);
    md->msgs = NULL;
    md->account = NULL;
    md->n = 0;
}

struct pop3_msg *pop3_maildrop_get(struct pop3_maildrop *md, uint32_t number)
{
    if (number < 1 || number > md->n || md->msgs[number - 1].deleted)
        return NULL;
    return &md->msgs[number - 1];
}

void pop3_maildrop_stat(const struct pop3_maildrop *md, size_t *count_r, uint64_t *bytes_r)
{
    size_t count = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < md->n; i++) {
        if (!md->msgs[i].deleted) {
            count++;
            bytes += md->msgs[i].size;
        }
    }
    *count_r = count;
    *bytes_r = bytes;
}

void pop3_maildrop_uidl(const struct pop3_maildrop *md, const struct pop3_msg *m, struct buf *out)
{
    /* Dovecot's default (%08Xu%08Xv): mailboxes migrated from it keep their UIDLs. */
    buf_printf(out, "%08X%08X", m->uid, md->uidvalidity);
}

int pop3_maildrop_commit(struct pop3_maildrop *md, struct store *store, size_t *deleted_r,
                         struct buf *err)
{
    uint32_t *uids = xcalloc(md->n ? md->n : 1, sizeof(uint32_t));
    size_t n = 0;
    for (size_t i = 0; i < md->n; i++) {
        if (md->msgs[i].deleted)
            uids[n++] = md->msgs[i].uid;
    }
    int r = 0;
    if (n > 0)
        r = store_message_expunge_id(store, md->account, md->inbox_id, uids, n, err);
    free(uids);
    *deleted_r = r == 0 ? n : 0;
    return r;
}
