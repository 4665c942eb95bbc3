/*
 * srs.c - SRS addresses made and checked (see srs.h), byte for byte as
 * libsrs2 and postsrsd make them, so either can read what the other wrote
 * when they share a secret.
 *
 * Never accepts an address whose hash does not match: srs_reverse is what
 * stands between the SRS domain and an open relay.
 */
#include "directory/srs.h"
#include "base/alloc.h"
#include "base/base64.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SRS_DAY 86400
#define SRS_TIME_SLOTS 1024 /* two base32 digits */
static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* The local-part separators libsrs2 accepts after the tag; we write '='. */
static bool is_sep(char c)
{
    return c == '=' || c == '+' || c == '-';
}

/* base64(HMAC-SHA1(secret, lower-cased fields)), cut to SRS_HASH_LEN. */
static void srs_hash(const struct srs *s, const char *const *field, size_t n,
                     char out[SRS_HASH_LEN + 1])
{
    struct buf data = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = field[i]; *p; p++)
            buf_append_byte(&data, (char)tolower((unsigned char)*p));
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    HMAC(EVP_sha1(), s->secret, (int)s->secret_len, (const unsigned char *)data.data, data.len, mac,
         &mac_len);
    buf_free(&data);
    struct buf b64 = BUF_INIT;
    base64_encode(mac, mac_len, &b64);
    memcpy(out, b64.data, SRS_HASH_LEN);
    out[SRS_HASH_LEN] = '\0';
    buf_free(&b64);
}

static bool hash_ok(const struct srs *s, const char *given, size_t given_len,
                    const char *const *field, size_t n)
{
    char want[SRS_HASH_LEN + 1];
    srs_hash(s, field, n, want);
    return given_len == SRS_HASH_LEN && strncasecmp(given, want, SRS_HASH_LEN) == 0;
}

static long long day_of(time_t now)
{
    return (long long)(now / SRS_DAY);
}

bool srs_forward(const struct srs *s, const char *sender, time_t now, struct buf *out)
{
    buf_reset(out);
    const char *at = strrchr(sender, '@');
    /* a domain never holds '=': one that did would not split back the same way */
    if (at == NULL || at == sender || at[1] == '\0' || strchr(at, '=') != NULL)
        return false;
    char *local = xstrndup(sender, (size_t)(at - sender));
    const char *host = at + 1;
    char hash[SRS_HASH_LEN + 1];
    if (strncasecmp(local, "SRS0", 4) == 0 && is_sep(local[4])) {
        /* SRS1=HASH=host=<the SRS0 address's local part after its tag> */
        const char *rest = local + 4;
        srs_hash(s, (const char *const[]){host, rest}, 2, hash);
        buf_printf(out, "SRS1=%s=%s=%s@%s", hash, host, rest, s->domain);
    } else if (strncasecmp(local, "SRS1", 4) == 0 && is_sep(local[4])) {
        /* SRS1=old=host==rest: keep host and rest, hash again with our secret */
        const char *h = strchr(local + 5, '=');
        const char *rest = h ? strchr(h + 1, '=') : NULL;
        if (rest == NULL || rest == h + 1) {
            free(local);
            return false;
        }
        char *first = xstrndup(h + 1, (size_t)(rest - h - 1));
        rest++;
        srs_hash(s, (const char *const[]){first, rest}, 2, hash);
        buf_printf(out, "SRS1=%s=%s=%s@%s", hash, first, rest, s->domain);
        free(first);
    } else {
        long long day = day_of(now) % SRS_TIME_SLOTS;
        char stamp[3] = {base32[(day >> 5) & 31], base32[day & 31], '\0'};
        srs_hash(s, (const char *const[]){stamp, host, local}, 3, hash);
        buf_printf(out, "SRS0=%s=%s=%s=%s@%s", hash, stamp, host, local, s->domain);
    }
    free(local);
    if (out->len > SRS_ADDRESS_MAX) {
        buf_reset(out);
        return false;
    }
    return true;
}

/* The day number (mod SRS_TIME_SLOTS) of a two-letter stamp, or -1. */
static int stamp_day(const char *stamp)
{
    int v = 0;
    for (int i = 0; i < 2; i++) {
        const char *p = stamp[i] ? strchr(base32, toupper((unsigned char)stamp[i])) : NULL;
        if (p == NULL)
            return -1;
        v = v * 32 + (int)(p - base32);
    }
    return v;
}

static bool stamp_fresh(const struct srs *s, int then, time_t now)
{
    long long today = day_of(now) % SRS_TIME_SLOTS;
    while (today < then)
        today += SRS_TIME_SLOTS;
    return today - then <= s->max_age_days;
}

/* Splits "a=b=..." at the first n-1 '=': field[i] point into the copy v. */
static bool split(char *v, char **field, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        field[i] = v;
        if (i + 1 < n) {
            v = strchr(v, '=');
            if (v == NULL)
                return false;
            *v++ = '\0';
        }
    }
    return true;
}

enum srs_status srs_reverse(const struct srs *s, const char *address, time_t now, struct buf *out)
{
    buf_reset(out);
    const char *at = strrchr(address, '@');
    if (at == NULL || at - address < 5)
        return SRS_NOT_SRS;
    bool srs0 = strncasecmp(address, "SRS0", 4) == 0, srs1 = strncasecmp(address, "SRS1", 4) == 0;
    if (!(srs0 || srs1) || !is_sep(address[4]))
        return SRS_NOT_SRS;
    if (strlen(address) > SRS_ADDRESS_MAX)
        return SRS_MALFORMED;
    char *v = xstrndup(address + 5, (size_t)(at - address) - 5);
    char *f[4];
    enum srs_status st = SRS_MALFORMED;
    if (srs0 && split(v, f, 4)) { /* HASH=TT=domain=local */
        int then = strlen(f[1]) == 2 ? stamp_day(f[1]) : -1;
        if (then < 0 || *f[2] == '\0' || *f[3] == '\0') {
            st = SRS_MALFORMED;
        } else if (!hash_ok(s, f[0], strlen(f[0]), (const char *const[]){f[1], f[2], f[3]}, 3)) {
            st = SRS_BAD_HASH;
        } else if (!stamp_fresh(s, then, now)) {
            st = SRS_EXPIRED;
        } else {
            buf_printf(out, "%s@%s", f[3], f[2]);
            st = SRS_OK;
        }
    } else if (srs1 && split(v, f, 3)) { /* HASH=host==rest: f[2] is "=rest" */
        if (*f[1] == '\0' || !is_sep(*f[2]) || f[2][1] == '\0') {
            st = SRS_MALFORMED;
        } else if (!hash_ok(s, f[0], strlen(f[0]), (const char *const[]){f[1], f[2]}, 2)) {
            st = SRS_BAD_HASH;
        } else {
            buf_printf(out, "SRS0%s@%s", f[2], f[1]);
            st = SRS_OK;
        }
    }
    free(v);
    return st;
}

const char *srs_status_name(enum srs_status st)
{
    switch (st) {
    case SRS_OK:
        return "valid";
    case SRS_NOT_SRS:
        return "not an SRS address";
    case SRS_MALFORMED:
        return "malformed";
    case SRS_BAD_HASH:
        return "forged (bad hash)";
    case SRS_EXPIRED:
        return "expired";
    }
    return "?";
}

static int key_read(const char *path, struct buf *secret_r, struct buf *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        buf_printf(err, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char line[SRS_SECRET_MAX + 2];
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    size_t n = got ? strcspn(line, "\r\n") : 0;
    if (n == 0 || n > SRS_SECRET_MAX) {
        buf_printf(err, "%s: the first line must hold the secret (1 to %d bytes)", path,
                   SRS_SECRET_MAX);
        return -1;
    }
    buf_reset(secret_r);
    buf_append(secret_r, line, n);
    return 0;
}

int srs_key_load(const char *path, uid_t uid, gid_t gid, struct buf *secret_r, struct buf *err)
{
    if (access(path, F_OK) == 0)
        return key_read(path, secret_r, err);
    unsigned char raw[SRS_SECRET_NEW_BYTES];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        buf_printf(err, "no random bytes for a new SRS secret");
        return -1;
    }
    struct buf text = BUF_INIT, tmp = BUF_INIT;
    for (size_t i = 0; i < sizeof(raw); i++)
        buf_printf(&text, "%02x", raw[i]);
    buf_append_byte(&text, '\n');
    buf_printf(&tmp, "%s.%ld.tmp", path, (long)getpid());
    int rc = -1;
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        buf_printf(err, "cannot create %s: %s", tmp.data, strerror(errno));
    } else {
        bool ok = write(fd, text.data, text.len) == (ssize_t)text.len && fsync(fd) == 0 &&
                  (geteuid() != 0 || fchown(fd, uid, gid) == 0);
        close(fd);
        /* link, not rename: the first process to get there wins, the others read its key */
        if (!ok || (link(tmp.data, path) != 0 && errno != EEXIST))
            buf_printf(err, "cannot write %s: %s", path, strerror(errno));
        else
            rc = 0;
        unlink(tmp.data);
    }
    buf_free(&text);
    buf_free(&tmp);
    return rc == 0 ? key_read(path, secret_r, err) : -1;
}
