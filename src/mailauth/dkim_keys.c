/*
 * dkim_keys.c - DKIM private keys under DATA/dkim: generation, activation,
 * loading, and the DNS records that publish them. See dkim_keys.h.
 *
 * Must never overwrite a key (O_EXCL), never create a key readable by
 * anyone but its owner, and never build a path from an unchecked name.
 */
#include "mailauth/dkim_keys.h"
#include "net/net_cert.h"

#include "base/alloc.h"
#include "base/base64.h"
#include "base/datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool dkim_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' || strstr(s, "..") != NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static void dom_dir(const struct wharf_config *cfg, const char *domain, struct buf *out)
{
    buf_printf(out, "%s/dkim/%s", cfg->data_directory, domain);
}

/*
 * Keys already decoded, by path, with the file's identity when it was read:
 * OpenSSL 3's PEM decoder costs more than the RSA signature itself (its
 * provider lookups under a read-write lock were the mta's top symbols when
 * it relayed signed mail, bench/README.md), so a key is decoded once and
 * taken again while stat() shows the same file (device, inode, size and
 * modification time). A rotation or a replaced file is seen at the next
 * message as before.
 */
#define KEY_CACHE_MAX 16
static struct {
    char path[512];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    EVP_PKEY *pkey;
} key_cache[KEY_CACHE_MAX];
static size_t key_cache_next;
static pthread_mutex_t key_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool same_file(size_t i, const char *path, const struct stat *st)
{
    return key_cache[i].pkey != NULL && strcmp(key_cache[i].path, path) == 0 &&
           key_cache[i].dev == st->st_dev && key_cache[i].ino == st->st_ino &&
           key_cache[i].size == st->st_size && key_cache[i].mtime.tv_sec == st->st_mtim.tv_sec &&
           key_cache[i].mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static EVP_PKEY *read_key(const char *path, struct buf *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        buf_printf(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    bool cacheable = fstat(fileno(f), &st) == 0 && strlen(path) < sizeof(key_cache[0].path);
    EVP_PKEY *k = NULL;
    pthread_mutex_lock(&key_cache_lock);
    for (size_t i = 0; cacheable && i < KEY_CACHE_MAX && k == NULL; i++)
        if (same_file(i, path, &st) && EVP_PKEY_up_ref(key_cache[i].pkey) == 1)
            k = key_cache[i].pkey;
    pthread_mutex_unlock(&key_cache_lock);
    if (k != NULL) {
        fclose(f);
        return k;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL) {
        buf_printf(err, "%s: not a PEM private key", path);
        return NULL;
    }
    if (cacheable && EVP_PKEY_up_ref(k) == 1) {
        pthread_mutex_lock(&key_cache_lock);
        size_t slot = key_cache_next;
        for (size_t i = 0; i < KEY_CACHE_MAX; i++)
            if (strcmp(key_cache[i].path, path) == 0) {
                slot = i; /* the same path, changed: replace it */
                break;
            }
        if (slot == key_cache_next)
            key_cache_next = (key_cache_next + 1) % KEY_CACHE_MAX;
        EVP_PKEY_free(key_cache[slot].pkey);
        snprintf(key_cache[slot].path, sizeof(key_cache[slot].path), "%s", path);
        key_cache[slot].dev = st.st_dev;
        key_cache[slot].ino = st.st_ino;
        key_cache[slot].size = st.st_size;
        key_cache[slot].mtime = st.st_mtim;
        key_cache[slot].pkey = k;
        pthread_mutex_unlock(&key_cache_lock);
    }
    return k;
}

void dkim_keyset_free(struct dkim_keyset *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        EVP_PKEY_free(ks->keys[i].pkey);
    ks->n = 0;
}

/* Reads the active file into selectors; returns how many, -1 if missing. */
static int read_active(const char *dir, char sel[][64], size_t max, struct buf *err)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/active", dir);
    FILE *f = fopen(buf_cstr(&path), "r");
    if (f == NULL) {
        int e = errno;
        if (e != ENOENT)
            buf_printf(err, "%s: %s", buf_cstr(&path), strerror(e));
        buf_free(&path);
        return e == ENOENT ? -1 : -2;
    }
    char line[128];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n \t")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (!dkim_name_ok(line) || strlen(line) >= 64 || (size_t)n == max) {
            buf_printf(err, "%s: bad or too many selectors", buf_cstr(&path));
            n = -2;
            break;
        }
        memcpy(sel[n++], line, strlen(line) + 1);
    }
    fclose(f);
    buf_free(&path);
    return n;
}

int dkim_keys_load(const struct wharf_config *cfg, const char *domain, struct dkim_keyset *ks,
                   struct buf *err)
{
    memset(ks, 0, sizeof(*ks));
    if (!dkim_name_ok(domain))
        return 0;
    struct buf dir = BUF_INIT;
    dom_dir(cfg, domain, &dir);
    int n = read_active(buf_cstr(&dir), ks->selector, DKIM_KEYS_MAX, err);
    if (n < 0) {
        buf_free(&dir);
        return n == -1 ? 0 : -1;
    }
    for (int i = 0; i < n; i++) {
        struct buf path = BUF_INIT;
        buf_printf(&path, "%s/%s.key", buf_cstr(&dir), ks->selector[i]);
        EVP_PKEY *k = read_key(buf_cstr(&path), err);
        buf_free(&path);
        if (k == NULL) {
            dkim_keyset_free(ks);
            buf_free(&dir);
            return -1;
        }
        ks->keys[ks->n].selector = ks->selector[i];
        ks->keys[ks->n++].pkey = k;
    }
    buf_free(&dir);
    return ks->n > 0 ? 1 : 0;
}

bool dkim_key_record(EVP_PKEY *key, struct buf *out)
{
    unsigned char raw[32];
    size_t rawlen = sizeof(raw);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
        if (EVP_PKEY_get_raw_public_key(key, raw, &rawlen) != 1)
            return false;
        buf_append_cstr(out, "v=DKIM1; k=ed25519; p=");
        base64_encode(raw, rawlen, out);
        return true;
    }
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    if (len <= 0)
        return false;
    buf_append_cstr(out, "v=DKIM1; k=rsa; p=");
    base64_encode(der, (size_t)len, out);
    OPENSSL_free(der);
    return true;
}

/* One zone-file line, the TXT text split in strings of at most 255 octets. */
static void zone_line(const char *sel, const char *domain, struct slice txt, bool active,
                      struct buf *out)
{
    buf_printf(out, "%s._domainkey.%s. IN TXT (", sel, domain);
    for (size_t i = 0; i < txt.len; i += 250)
        buf_printf(out, " \"%.*s\"", (int)(txt.len - i < 250 ? txt.len - i : 250), txt.ptr + i);
    buf_printf(out, " )%s\n", active ? " ; active" : "");
}

static int make_dirs(const struct wharf_config *cfg, const char *domain, struct buf *dir,
                     struct buf *err)
{
    struct buf top = BUF_INIT;
    buf_printf(&top, "%s/dkim", cfg->data_directory);
    if (mkdir(buf_cstr(&top), 0700) != 0 && errno != EEXIST) {
        buf_printf(err, "%s: %s", buf_cstr(&top), strerror(errno));
        buf_free(&top);
        return -1;
    }
    buf_free(&top);
    dom_dir(cfg, domain, dir);
    if (mkdir(buf_cstr(dir), 0700) != 0 && errno != EEXIST) {
        buf_printf(err, "%s: %s", buf_cstr(dir), strerror(errno));
        return -1;
    }
    return 0;
}

static int write_active(const char *dir, const char *prefix, struct buf *err)
{
    struct buf text = BUF_INIT, path = BUF_INIT;
    buf_printf(&text, "%s-ed25519\n%s-rsa\n", prefix, prefix);
    buf_printf(&path, "%s/active", dir);
    int rc = datadir_write_file(buf_cstr(&path), text.data, text.len, 0644);
    if (rc != 0)
        buf_printf(err, "%s: %s", buf_cstr(&path), strerror(errno));
    buf_free(&text);
    buf_free(&path);
    return rc;
}

int dkim_keygen(const struct wharf_config *cfg, const char *domain, const char *prefix,
                struct buf *records, bool *activated_r, struct buf *err)
{
    *activated_r = false;
    if (!dkim_name_ok(domain) || !dkim_name_ok(prefix) || strlen(prefix) > 40) {
        buf_printf(err, "bad domain or selector (lower-case letters, digits, '-', '_', '.')");
        return -1;
    }
    struct buf dir = BUF_INIT;
    if (make_dirs(cfg, domain, &dir, err) != 0) {
        buf_free(&dir);
        return -1;
    }
    static const char *const kinds[] = {"ed25519", "rsa"};
    int rc = 0;
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        EVP_PKEY *k = i == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                             : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        if (k == NULL) {
            buf_printf(err, "cannot generate the %s key", kinds[i]);
            rc = -1;
            break;
        }
        struct buf sel = BUF_INIT, path = BUF_INIT, txt = BUF_INIT;
        buf_printf(&sel, "%s-%s", prefix, kinds[i]);
        buf_printf(&path, "%s/%s.key", buf_cstr(&dir), buf_cstr(&sel));
        rc = net_cert_write_pem(buf_cstr(&path), 0600, k, NULL, false, err);
        if (rc == 0 && dkim_key_record(k, &txt))
            zone_line(buf_cstr(&sel), domain, buf_slice(&txt), false, records);
        EVP_PKEY_free(k);
        buf_free(&sel);
        buf_free(&path);
        buf_free(&txt);
    }
    if (rc == 0) {
        char sel[DKIM_KEYS_MAX][64];
        struct buf ignored = BUF_INIT;
        if (read_active(buf_cstr(&dir), sel, DKIM_KEYS_MAX, &ignored) == -1) {
            rc = write_active(buf_cstr(&dir), prefix, err);
            *activated_r = rc == 0;
        }
        buf_free(&ignored);
    }
    buf_free(&dir);
    return rc;
}

int dkim_activate(const struct wharf_config *cfg, const char *domain, const char *prefix,
                  struct buf *err)
{
    if (!dkim_name_ok(domain) || !dkim_name_ok(prefix)) {
        buf_printf(err, "bad domain or selector");
        return -1;
    }
    struct buf dir = BUF_INIT;
    dom_dir(cfg, domain, &dir);
    int rc = 0;
    static const char *const kinds[] = {"ed25519", "rsa"};
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        struct buf path = BUF_INIT;
        buf_printf(&path, "%s/%s-%s.key", buf_cstr(&dir), prefix, kinds[i]);
        EVP_PKEY *k = read_key(buf_cstr(&path), err);
        rc = k != NULL ? 0 : -1;
        EVP_PKEY_free(k);
        buf_free(&path);
    }
    if (rc == 0)
        rc = write_active(buf_cstr(&dir), prefix, err);
    buf_free(&dir);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dkim_records(const struct wharf_config *cfg, const char *domain, struct buf *out,
                 struct buf *err)
{
    if (!dkim_name_ok(domain)) {
        buf_printf(err, "bad domain");
        return -1;
    }
    struct buf dir = BUF_INIT;
    dom_dir(cfg, domain, &dir);
    char active[DKIM_KEYS_MAX][64];
    int n_active = read_active(buf_cstr(&dir), active, DKIM_KEYS_MAX, err);
    DIR *d = opendir(buf_cstr(&dir));
    if (d == NULL) {
        buf_printf(err, "no DKIM keys for %s", domain);
        buf_free(&dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".key") == 0) {
            names = xreallocarray(names, n + 1, sizeof(*names));
            names[n++] = xstrndup(de->d_name, len - 4);
        }
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct buf path = BUF_INIT, txt = BUF_INIT;
        buf_printf(&path, "%s/%s.key", buf_cstr(&dir), names[i]);
        EVP_PKEY *k = read_key(buf_cstr(&path), err);
        if (k != NULL && dkim_key_record(k, &txt)) {
            bool on = false;
            for (int j = 0; j < n_active; j++)
                on |= strcmp(active[j], names[i]) == 0;
            zone_line(names[i], domain, buf_slice(&txt), on, out);
        } else {
            rc = -1;
        }
        EVP_PKEY_free(k);
        buf_free(&path);
        buf_free(&txt);
        free(names[i]);
    }
    free(names);
    buf_free(&dir);
    return rc;
}
