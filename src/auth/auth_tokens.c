/*
 * auth_tokens.c - app passwords for Bearer authentication (see
 * auth_tokens.h). The table is small (a few per user) and lives in memory;
 * the file is one line per token: ID TAB ACCOUNT TAB SHA256-HEX TAB CREATED,
 * then TAB "session" for a session.
 *
 * Must never: store or log a secret, or compare hashes in variable time.
 */
#include "auth/auth_tokens.h"

#include "base/alloc.h"
#include "base/base64.h"
#include "base/datadir.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_PREFIX "wht_"
#define SESSION_PREFIX "whs_" /* the same length as TOKEN_PREFIX */
#define ADMIN_PREFIX AUTH_TOKEN_ADMIN_PREFIX
#define ID_LEN 16
#define SECRET_LEN 43 /* base64url of 32 bytes, unpadded */
#define MAX_TOKENS 100000

struct token {
    char id[ID_LEN + 1];
    char *account;
    unsigned char hash[SHA256_DIGEST_LENGTH];
    long long created;
    bool session;
    bool admin;     /* "wha_": acts as an admin on the admin API */
    long long last; /* a session's last check (wall seconds, in memory only) */
};

struct auth_tokens {
    char *path;
    struct token *v;
    size_t n;
    long long session_idle;
};

static void hash_token(const char *token, unsigned char out[SHA256_DIGEST_LENGTH])
{
    SHA256((const unsigned char *)token, strlen(token), out);
}

static bool hex_decode(const char *s, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (unsigned char)v;
    }
    return s[2 * n] == '\0';
}

void auth_tokens_id(const char *token, char out[17])
{
    out[0] = '\0';
    size_t p = strlen(TOKEN_PREFIX);
    if ((strncmp(token, TOKEN_PREFIX, p) != 0 && !auth_tokens_is_session(token) &&
         !auth_tokens_is_admin(token)) ||
        strlen(token) != p + ID_LEN + 1 + SECRET_LEN || token[p + ID_LEN] != '_')
        return;
    for (size_t i = 0; i < ID_LEN; i++) {
        char c = token[p + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return;
    }
    memcpy(out, token + p, ID_LEN);
    out[ID_LEN] = '\0';
}

struct auth_tokens *auth_tokens_open(const char *path, struct buf *err)
{
    struct auth_tokens *t = xcalloc(1, sizeof(*t));
    t->path = xstrdup(path);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return t;
        buf_printf(err, "cannot open %s: %s", path, strerror(errno));
        auth_tokens_free(t);
        return NULL;
    }
    char line[1024];
    unsigned lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        char *id = strtok(line, "\t"), *account = strtok(NULL, "\t"), *hex = strtok(NULL, "\t"),
             *created = strtok(NULL, "\t"), *kind = strtok(NULL, "\t");
        struct token tk = {0};
        if (id == NULL || account == NULL || hex == NULL || created == NULL ||
            strlen(id) != ID_LEN || !hex_decode(hex, tk.hash, sizeof(tk.hash)) ||
            t->n >= MAX_TOKENS ||
            (kind != NULL && strcmp(kind, "session") != 0 && strcmp(kind, "admin") != 0)) {
            buf_printf(err, "%s line %u is not a token", path, lineno);
            fclose(f);
            auth_tokens_free(t);
            return NULL;
        }
        memcpy(tk.id, id, ID_LEN + 1);
        tk.account = xstrdup(account);
        tk.created = atoll(created);
        tk.session = kind != NULL && strcmp(kind, "session") == 0;
        tk.admin = kind != NULL && strcmp(kind, "admin") == 0;
        tk.last = (long long)time(NULL);
        t->v = xreallocarray(t->v, t->n + 1, sizeof(*t->v));
        t->v[t->n++] = tk;
    }
    fclose(f);
    return t;
}

void auth_tokens_free(struct auth_tokens *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].account);
    free(t->v);
    free(t->path);
    free(t);
}

/* Rewrites the file with the table (never half a file). */
static int save(const struct auth_tokens *t, struct buf *err)
{
    struct buf text = BUF_INIT;
    for (size_t i = 0; i < t->n; i++) {
        buf_printf(&text, "%s\t%s\t", t->v[i].id, t->v[i].account);
        for (size_t k = 0; k < sizeof(t->v[i].hash); k++)
            buf_printf(&text, "%02x", t->v[i].hash[k]);
        buf_printf(&text, "\t%lld%s\n", t->v[i].created,
                   t->v[i].session ? "\tsession"
                   : t->v[i].admin ? "\tadmin"
                                   : "");
    }
    int r = datadir_write_file(t->path, text.data, text.len, 0600);
    if (r != 0)
        buf_printf(err, "cannot write %s: %s", t->path, strerror(errno));
    buf_free(&text);
    return r;
}

bool auth_tokens_is_session(const char *token)
{
    return strncmp(token, SESSION_PREFIX, strlen(SESSION_PREFIX)) == 0;
}

void auth_tokens_set_session_idle(struct auth_tokens *t, long long idle_s)
{
    t->session_idle = idle_s;
}

static int add(struct auth_tokens *t, const char *account, bool session, bool admin,
               struct buf *token_r, struct buf *err)
{
    unsigned char idb[ID_LEN / 2], secret[32];
    if (t->n >= MAX_TOKENS || RAND_bytes(idb, sizeof(idb)) != 1 ||
        RAND_bytes(secret, sizeof(secret)) != 1) {
        buf_append_cstr(err, "cannot make a token (too many, or no randomness)");
        return -1;
    }
    struct token tk = {0};
    for (size_t i = 0; i < sizeof(idb); i++)
        snprintf(tk.id + 2 * i, 3, "%02x", idb[i]);
    struct buf b64 = BUF_INIT;
    base64_encode(secret, sizeof(secret), &b64);
    OPENSSL_cleanse(secret, sizeof(secret));
    buf_printf(token_r, "%s%s_",
               session ? SESSION_PREFIX
               : admin ? ADMIN_PREFIX
                       : TOKEN_PREFIX,
               tk.id);
    for (size_t i = 0; i < b64.len && b64.data[i] != '='; i++) /* base64url, unpadded */
        buf_append_byte(token_r, b64.data[i] == '+' ? '-' : b64.data[i] == '/' ? '_' : b64.data[i]);
    OPENSSL_cleanse(b64.data, b64.len);
    buf_free(&b64);
    hash_token(buf_cstr(token_r), tk.hash);
    tk.account = xstrdup(account);
    tk.created = (long long)time(NULL);
    tk.session = session;
    tk.admin = admin;
    tk.last = tk.created;
    t->v = xreallocarray(t->v, t->n + 1, sizeof(*t->v));
    t->v[t->n++] = tk;
    if (save(t, err) != 0) {
        free(t->v[--t->n].account);
        return -1;
    }
    return 0;
}

int auth_tokens_add(struct auth_tokens *t, const char *account, struct buf *token_r,
                    struct buf *err)
{
    return add(t, account, false, false, token_r, err);
}

int auth_tokens_add_admin(struct auth_tokens *t, const char *account, struct buf *token_r,
                          struct buf *err)
{
    return add(t, account, false, true, token_r, err);
}

int auth_tokens_add_session(struct auth_tokens *t, const char *account, struct buf *token_r,
                            struct buf *err)
{
    return add(t, account, true, false, token_r, err);
}

int auth_tokens_revoke(struct auth_tokens *t, const char *id, struct buf *err)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].id, id) != 0)
            continue;
        struct token gone = t->v[i];
        memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
        t->n--;
        if (save(t, err) != 0) {
            /* Keep it in force: what the file says is what holds after a restart. */
            t->v = xreallocarray(t->v, t->n + 1, sizeof(*t->v));
            t->v[t->n++] = gone;
            return -1;
        }
        free(gone.account);
        return 1;
    }
    return 0;
}

int auth_tokens_age(struct auth_tokens *t, const char *id, long long seconds)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].id, id) == 0) {
            t->v[i].created -= seconds;
            return 1;
        }
    return 0;
}

json_t *auth_tokens_list(const struct auth_tokens *t, const char *account)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < t->n; i++) {
        if (account == NULL || strcmp(account, t->v[i].account) == 0)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:s}", "id", t->v[i].id,
                                                 "account", t->v[i].account, "created",
                                                 (json_int_t)t->v[i].created, "kind",
                                                 t->v[i].session ? "session"
                                                 : t->v[i].admin ? "admin"
                                                                 : "app"));
    }
    return arr;
}

const char *auth_tokens_check(struct auth_tokens *t, const char *token)
{
    return auth_tokens_check_at(t, token, (long long)time(NULL));
}

const char *auth_tokens_check_at(struct auth_tokens *t, const char *token, long long now)
{
    char id[ID_LEN + 1];
    auth_tokens_id(token, id);
    if (id[0] == '\0')
        return NULL;
    unsigned char h[SHA256_DIGEST_LENGTH];
    hash_token(token, h);
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].id, id) != 0)
            continue;
        struct token *tk = &t->v[i];
        if (CRYPTO_memcmp(h, tk->hash, sizeof(h)) != 0 ||
            tk->session != auth_tokens_is_session(token) ||
            tk->admin != auth_tokens_is_admin(token))
            return NULL;
        if (tk->session) {
            if (t->session_idle > 0 && now - tk->last > t->session_idle) {
                struct buf err = BUF_INIT;
                (void)auth_tokens_revoke(t, id, &err); /* a failed save keeps it: refused anyway */
                buf_free(&err);
                return NULL;
            }
            tk->last = now;
        }
        return tk->account;
    }
    return NULL;
}
