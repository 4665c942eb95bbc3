/*
 * config.c - parsing and formatting of wharf.conf from the option table.
 *
 * Never exits and never logs: every error goes back to the caller as text,
 * so that a bad file at SIGHUP cannot take a running server down.
 */
#include "base/config.h"
#include "base/alloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* A configuration line longer than this is a mistake, not a setting. */
#define CONFIG_MAX_LINE (64 * 1024)

const struct config_option config_options[OPTID__COUNT] = {
#define OPT(n, t, d, mn, mx, h)                                                                    \
    {.name = #n,                                                                                   \
     .type = CONFIG_##t,                                                                           \
     .def = d,                                                                                     \
     .min = mn,                                                                                    \
     .max = mx,                                                                                    \
     .help = h,                                                                                    \
     .offset = offsetof(struct wharf_config, n)},
#include "base/options.def"
#undef OPT
};

const char *config_type_name(enum config_type type)
{
    switch (type) {
    case CONFIG_BOOL:
        return "bool";
    case CONFIG_INT:
        return "integer";
    case CONFIG_SIZE:
        return "size";
    case CONFIG_DURATION:
        return "duration";
    case CONFIG_STRING:
        return "string";
    case CONFIG_PATH:
        return "path";
    case CONFIG_LIST:
        return "list";
    case CONFIG_LISTEN:
        return "listen";
    }
    return "?";
}

const struct config_option *config_find(const char *name)
{
    for (size_t i = 0; i < OPTID__COUNT; i++) {
        if (strcmp(config_options[i].name, name) == 0)
            return &config_options[i];
    }
    return NULL;
}

static void *field(struct wharf_config *cfg, const struct config_option *opt)
{
    return (char *)cfg + opt->offset;
}

static const void *cfield(const struct wharf_config *cfg, const struct config_option *opt)
{
    return (const char *)cfg + opt->offset;
}

const void *config_value(const struct wharf_config *cfg, const struct config_option *opt)
{
    return cfield(cfg, opt);
}

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void strlist_push(struct strlist *l, const char *s, size_t len)
{
    l->v = xreallocarray(l->v, l->n + 2, sizeof(char *));
    l->v[l->n++] = xstrndup(s, len);
    l->v[l->n] = NULL;
}

bool strlist_contains_nocase(const struct strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcasecmp(l->v[i], s) == 0)
            return true;
    }
    return false;
}

/* Splits on commas and white space. */
static void strlist_parse(struct strlist *l, const char *s)
{
    strlist_free(l);
    l->v = xcalloc(1, sizeof(char *));
    while (*s) {
        while (*s == ',' || isspace((unsigned char)*s))
            s++;
        const char *start = s;
        while (*s && *s != ',' && !isspace((unsigned char)*s))
            s++;
        if (s > start)
            strlist_push(l, start, (size_t)(s - start));
    }
}

bool config_parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"yes", "true", "on", "1"};
    static const char *no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

bool config_parse_int(const char *s, long long *out)
{
    char *end;
    errno = 0;
    if (*s == '\0' || isspace((unsigned char)*s))
        return false;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* Parses a non-negative number followed by a unit suffix. */
static bool parse_scaled(const char *s, unsigned long long *num, const char **unit)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return false;
    while (*end == ' ')
        end++;
    *num = v;
    *unit = end;
    return true;
}

bool config_parse_size(const char *s, uint64_t *out)
{
    unsigned long long v, mult;
    const char *unit;
    if (!parse_scaled(s, &v, &unit))
        return false;
    if (*unit == '\0' || strcasecmp(unit, "b") == 0)
        mult = 1;
    else if (strcasecmp(unit, "k") == 0 || strcasecmp(unit, "kb") == 0 ||
             strcasecmp(unit, "kib") == 0)
        mult = 1024ULL;
    else if (strcasecmp(unit, "m") == 0 || strcasecmp(unit, "mb") == 0 ||
             strcasecmp(unit, "mib") == 0)
        mult = 1024ULL * 1024;
    else if (strcasecmp(unit, "g") == 0 || strcasecmp(unit, "gb") == 0 ||
             strcasecmp(unit, "gib") == 0)
        mult = 1024ULL * 1024 * 1024;
    else
        return false;
    unsigned long long r;
    if (__builtin_mul_overflow(v, mult, &r))
        return false;
    *out = r;
    return true;
}

bool config_parse_duration(const char *s, int64_t *out_ms)
{
    unsigned long long v, mult;
    const char *unit;
    if (!parse_scaled(s, &v, &unit))
        return false;
    if (strcmp(unit, "ms") == 0)
        mult = 1;
    else if (*unit == '\0' || strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(unit, "h") == 0)
        mult = 3600 * 1000;
    else if (strcmp(unit, "d") == 0)
        mult = 86400ULL * 1000;
    else
        return false;
    unsigned long long r;
    if (__builtin_mul_overflow(v, mult, &r) || r > INT64_MAX)
        return false;
    *out_ms = (int64_t)r;
    return true;
}

bool config_parse_listen_addr(const char *s, struct listen_addr *out)
{
    const char *colon;
    size_t hostlen;
    memset(out, 0, sizeof(*out));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return false;
        hostlen = (size_t)(close - s - 1);
        if (hostlen == 0 || hostlen >= sizeof(out->host))
            return false;
        memcpy(out->host, s + 1, hostlen);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        hostlen = (size_t)(colon - s);
        if (hostlen == 0 || hostlen >= sizeof(out->host) || memchr(s, ':', hostlen))
            return false;
        if (!(hostlen == 1 && s[0] == '*'))
            memcpy(out->host, s, hostlen);
    }
    long long port;
    if (!config_parse_int(colon + 1, &port) || port < 1 || port > 65535)
        return false;
    out->port = (uint16_t)port;
    return true;
}

/* Frees the heap part of one option's value. */
static void value_free(struct wharf_config *cfg, const struct config_option *opt)
{
    void *f = field(cfg, opt);
    switch (opt->type) {
    case CONFIG_STRING:
    case CONFIG_PATH:
        free(*(char **)f);
        *(char **)f = NULL;
        break;
    case CONFIG_LIST:
    case CONFIG_LISTEN:
        strlist_free((struct strlist *)f);
        break;
    default:
        break;
    }
}

/* Parses value into the option's field; on failure leaves the field as it was. */
static int value_set(struct wharf_config *cfg, const struct config_option *opt, const char *value,
                     struct buf *err)
{
    void *f = field(cfg, opt);
    switch (opt->type) {
    case CONFIG_BOOL: {
        bool v;
        if (!config_parse_bool(value, &v)) {
            buf_printf(err, "%s: '%s' is not yes or no", opt->name, value);
            return -1;
        }
        *(bool *)f = v;
        return 0;
    }
    case CONFIG_INT: {
        long long v;
        if (!config_parse_int(value, &v)) {
            buf_printf(err, "%s: '%s' is not an integer", opt->name, value);
            return -1;
        }
        if (v < opt->min || v > opt->max) {
            buf_printf(err, "%s: %lld is out of range (%lld..%lld)", opt->name, v, opt->min,
                       opt->max);
            return -1;
        }
        *(long long *)f = v;
        return 0;
    }
    case CONFIG_SIZE: {
        uint64_t v;
        if (!config_parse_size(value, &v)) {
            buf_printf(err, "%s: '%s' is not a size (for example 512k, 10M, 1G)", opt->name, value);
            return -1;
        }
        if (v < (uint64_t)opt->min || v > (uint64_t)opt->max) {
            buf_printf(err, "%s: %s is out of range (%lld..%lld bytes)", opt->name, value, opt->min,
                       opt->max);
            return -1;
        }
        *(uint64_t *)f = v;
        return 0;
    }
    case CONFIG_DURATION: {
        int64_t v;
        if (!config_parse_duration(value, &v)) {
            buf_printf(err, "%s: '%s' is not a duration (for example 500ms, 30s, 5m, 4h, 5d)",
                       opt->name, value);
            return -1;
        }
        if (v < opt->min || v > opt->max) {
            buf_printf(err, "%s: %s is out of range (%lldms..%lldms)", opt->name, value, opt->min,
                       opt->max);
            return -1;
        }
        *(int64_t *)f = v;
        return 0;
    }
    case CONFIG_STRING:
    case CONFIG_PATH:
        free(*(char **)f);
        *(char **)f = xstrdup(value);
        return 0;
    case CONFIG_LIST:
        strlist_parse((struct strlist *)f, value);
        return 0;
    case CONFIG_LISTEN: {
        struct strlist tmp = {0};
        if (strcasecmp(value, "off") == 0 || strcasecmp(value, "no") == 0 || value[0] == '\0') {
            strlist_parse(&tmp, "");
        } else {
            strlist_parse(&tmp, value);
            for (size_t i = 0; i < tmp.n; i++) {
                struct listen_addr la;
                if (!config_parse_listen_addr(tmp.v[i], &la)) {
                    buf_printf(err,
                               "%s: '%s' is not ADDRESS:PORT (for example *:25, "
                               "127.0.0.1:25, [::1]:25) or off",
                               opt->name, tmp.v[i]);
                    strlist_free(&tmp);
                    return -1;
                }
            }
        }
        strlist_free((struct strlist *)f);
        *(struct strlist *)f = tmp;
        return 0;
    }
    }
    return -1;
}

void config_init(struct wharf_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < OPTID__COUNT; i++) {
        struct buf err = BUF_INIT;
        if (value_set(cfg, &config_options[i], config_options[i].def, &err) != 0) {
            /* A bad default is a bug in options.def, caught by the unit tests. */
            fprintf(stderr, "bad default for %s: %s\n", config_options[i].name, buf_cstr(&err));
            abort();
        }
        buf_free(&err);
    }
}

void config_free(struct wharf_config *cfg)
{
    for (size_t i = 0; i < OPTID__COUNT; i++) {
        value_free(cfg, &config_options[i]);
        free(cfg->origin[i]);
        cfg->origin[i] = NULL;
    }
    free(cfg->path);
    cfg->path = NULL;
}

int config_set(struct wharf_config *cfg, const char *name, const char *value, const char *origin,
               struct buf *err)
{
    const struct config_option *opt = config_find(name);
    if (opt == NULL) {
        buf_printf(err, "unknown parameter '%s'", name);
        return -1;
    }
    if (value_set(cfg, opt, value, err) != 0)
        return -1;
    size_t id = (size_t)(opt - config_options);
    free(cfg->origin[id]);
    cfg->origin[id] = xstrdup(origin);
    return 0;
}

int config_set_assignment(struct wharf_config *cfg, const char *assignment, struct buf *err)
{
    const char *eq = strchr(assignment, '=');
    if (eq == NULL) {
        buf_printf(err, "-o %s: expected name=value", assignment);
        return -1;
    }
    char *name = slice_strdup(slice_trim(slice_make(assignment, (size_t)(eq - assignment))));
    char *value = slice_strdup(slice_trim(slice_from_cstr(eq + 1)));
    struct buf e = BUF_INIT;
    int r = config_set(cfg, name, value, "-o", &e);
    if (r != 0)
        buf_printf(err, "-o: %s", buf_cstr(&e));
    buf_free(&e);
    free(name);
    free(value);
    return r;
}

static bool valid_name(struct slice s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '_'))
            return false;
    }
    return true;
}

/* Handles one logical line (continuations already joined). */
static int apply_line(struct wharf_config *cfg, const char *origin_file, unsigned lineno,
                      struct slice line, struct buf *err)
{
    const char *eq = memchr(line.ptr, '=', line.len);
    if (eq == NULL) {
        buf_printf(err, "%s:%u: expected 'name = value'", origin_file, lineno);
        return -1;
    }
    struct slice name = slice_trim(slice_make(line.ptr, (size_t)(eq - line.ptr)));
    struct slice value = slice_trim(slice_make(eq + 1, line.len - (size_t)(eq - line.ptr) - 1));
    if (!valid_name(name)) {
        char *n = slice_strdup(name);
        buf_printf(err, "%s:%u: '%s' is not a parameter name", origin_file, lineno, n);
        free(n);
        return -1;
    }
    char *n = slice_strdup(name);
    char *v = slice_strdup(value);
    struct buf origin = BUF_INIT, e = BUF_INIT;
    buf_printf(&origin, "%s:%u", origin_file, lineno);
    int r = config_set(cfg, n, v, buf_cstr(&origin), &e);
    if (r != 0)
        buf_printf(err, "%s:%u: %s", origin_file, lineno, buf_cstr(&e));
    buf_free(&origin);
    buf_free(&e);
    free(n);
    free(v);
    return r;
}

int config_load_string(struct wharf_config *cfg, const char *origin, const char *text,
                       struct buf *err)
{
    struct buf logical = BUF_INIT;
    unsigned lineno = 0, logical_lineno = 0;
    bool have_logical = false;
    const char *p = text;
    int r = 0;

    while (r == 0) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (nl == NULL && len == 0)
            break;
        lineno++;
        if (len > CONFIG_MAX_LINE) {
            buf_printf(err, "%s:%u: line longer than %d bytes", origin, lineno, CONFIG_MAX_LINE);
            r = -1;
            break;
        }
        struct slice line = slice_make(p, len);
        if (line.len && line.ptr[line.len - 1] == '\r')
            line.len--;
        struct slice trimmed = slice_trim(line);
        bool blank = trimmed.len == 0 || trimmed.ptr[0] == '#';
        bool continuation = !blank && (line.ptr[0] == ' ' || line.ptr[0] == '\t');
        /* "name = value  # why": the comment would be part of the value (a path, a list's
         * entries), so it is refused rather than taken */
        for (size_t i = 1; !blank && i < trimmed.len; i++) {
            if (trimmed.ptr[i] == '#' &&
                (trimmed.ptr[i - 1] == ' ' || trimmed.ptr[i - 1] == '\t')) {
                buf_printf(err, "%s:%u: \"#\" after a value: a comment goes on a line of its own",
                           origin, lineno);
                r = -1;
                break;
            }
        }
        if (r != 0)
            break;

        if (continuation) {
            if (!have_logical) {
                buf_printf(err, "%s:%u: continuation line without a parameter before it", origin,
                           lineno);
                r = -1;
                break;
            }
            buf_append_byte(&logical, ' ');
            buf_append_slice(&logical, trimmed);
        } else if (!blank) {
            if (have_logical)
                r = apply_line(cfg, origin, logical_lineno, buf_slice(&logical), err);
            buf_reset(&logical);
            buf_append_slice(&logical, trimmed);
            have_logical = true;
            logical_lineno = lineno;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if (r == 0 && have_logical)
        r = apply_line(cfg, origin, logical_lineno, buf_slice(&logical), err);
    buf_free(&logical);
    return r;
}

static int read_whole_file(const char *path, struct buf *out, struct buf *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        buf_printf(err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf_append(out, chunk, n);
        if (memchr(chunk, '\0', n)) {
            buf_printf(err, "%s: contains a NUL byte; not a text file", path);
            fclose(f);
            return -1;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        buf_printf(err, "%s: read error", path);
        return -1;
    }
    return 0;
}

static int load_one_file(struct wharf_config *cfg, const char *path, struct buf *err)
{
    struct buf text = BUF_INIT;
    int r = read_whole_file(path, &text, err);
    if (r == 0)
        r = config_load_string(cfg, path, buf_cstr(&text), err);
    buf_free(&text);
    return r;
}

static int dropin_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

int config_load_file(struct wharf_config *cfg, const char *path, struct buf *err)
{
    if (load_one_file(cfg, path, err) != 0)
        return -1;
    free(cfg->path);
    cfg->path = xstrdup(path);

    /* Drop-ins: DIR/conf.d/ *.conf in name order. */
    struct buf dir = BUF_INIT;
    const char *slash = strrchr(path, '/');
    if (slash)
        buf_append(&dir, path, (size_t)(slash - path));
    else
        buf_append_cstr(&dir, ".");
    buf_append_cstr(&dir, "/conf.d");
    struct dirent **names = NULL;
    int n = scandir(buf_cstr(&dir), &names, dropin_filter, alphasort);
    int r = 0;
    for (int i = 0; i < n; i++) {
        if (r == 0) {
            struct buf p = BUF_INIT;
            buf_printf(&p, "%s/%s", buf_cstr(&dir), names[i]->d_name);
            r = load_one_file(cfg, buf_cstr(&p), err);
            buf_free(&p);
        }
        free(names[i]);
    }
    free(names);
    buf_free(&dir);
    return r;
}

static void make_absolute(char **path)
{
    if (*path == NULL || (*path)[0] == '/' || (*path)[0] == '\0')
        return;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return;
    struct buf b = BUF_INIT;
    const char *rel = *path;
    if (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    else if (rel[0] == '.' && rel[1] == '\0')
        rel += 1;
    buf_printf(&b, "%s%s%s", cwd, *rel ? "/" : "", rel);
    free(*path);
    *path = buf_steal(&b, NULL);
}

char *config_data_path(const struct wharf_config *cfg, const char *relative)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s/%s", cfg->data_directory, relative);
    return buf_steal(&b, NULL);
}

static void default_path(struct wharf_config *cfg, char **field_p, const char *relative)
{
    if (*field_p == NULL || (*field_p)[0] == '\0') {
        free(*field_p);
        *field_p = config_data_path(cfg, relative);
    }
}

/* Two listen addresses collide when they share a port and a host, or one is the wildcard. */
static bool listen_collide(const struct listen_addr *a, const struct listen_addr *b)
{
    return a->port == b->port &&
           (a->host[0] == '\0' || b->host[0] == '\0' || strcasecmp(a->host, b->host) == 0);
}

/* No two listeners (in one option or across options) may claim the same socket. */
static int check_listen_conflicts(const struct wharf_config *cfg, struct buf *err)
{
    for (size_t i = 0; i < OPTID__COUNT; i++) {
        const struct config_option *oi = &config_options[i];
        if (oi->type != CONFIG_LISTEN)
            continue;
        const struct strlist *li = cfield(cfg, oi);
        for (size_t a = 0; a < li->n; a++) {
            struct listen_addr la, lb;
            if (!config_parse_listen_addr(li->v[a], &la))
                continue;
            for (size_t j = i; j < OPTID__COUNT; j++) {
                const struct config_option *oj = &config_options[j];
                if (oj->type != CONFIG_LISTEN)
                    continue;
                const struct strlist *lj = cfield(cfg, oj);
                for (size_t b = (j == i ? a + 1 : 0); b < lj->n; b++) {
                    if (!config_parse_listen_addr(lj->v[b], &lb) || !listen_collide(&la, &lb))
                        continue;
                    const char *where = cfg->origin[j] ? cfg->origin[j] : cfg->origin[i];
                    buf_printf(err, "%s%s%s: %s conflicts with %s in %s; give each its own port",
                               where ? where : "", where ? ": " : "", oj->name, lj->v[b], li->v[a],
                               oi->name);
                    return -1;
                }
            }
        }
    }
    return 0;
}

int config_finalize(struct wharf_config *cfg, struct buf *err)
{
    if (cfg->data_directory[0] == '\0') {
        buf_printf(err, "data_directory: must not be empty");
        return -1;
    }
    make_absolute(&cfg->data_directory);
    /* Strip trailing slashes so derived paths read cleanly. */
    size_t dl = strlen(cfg->data_directory);
    while (dl > 1 && cfg->data_directory[dl - 1] == '/')
        cfg->data_directory[--dl] = '\0';
    make_absolute(&cfg->pid_file);
    make_absolute(&cfg->control_socket);
    make_absolute(&cfg->tls_cert_file);
    make_absolute(&cfg->tls_key_file);
    default_path(cfg, &cfg->pid_file, "run/wharfd.pid");
    default_path(cfg, &cfg->control_socket, "run/control.sock");
    default_path(cfg, &cfg->tls_cert_file, "tls/cert.pem");
    default_path(cfg, &cfg->tls_key_file, "tls/key.pem");
    default_path(cfg, &cfg->http_acme_dir, "acme-challenge");

    if (cfg->myhostname[0] == '\0') {
        char host[256];
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        free(cfg->myhostname);
        cfg->myhostname = xstrdup(host);
    }
    if (cfg->mydomains.n == 0)
        strlist_parse(&cfg->mydomains, cfg->myhostname);
    if (strcmp(cfg->tls_min_version, "TLSv1.2") != 0 &&
        strcmp(cfg->tls_min_version, "TLSv1.3") != 0) {
        buf_printf(err, "tls_min_version: '%s' is not TLSv1.2 or TLSv1.3", cfg->tls_min_version);
        return -1;
    }
    return check_listen_conflicts(cfg, err);
}

int config_read(struct wharf_config *cfg, const char *path, char *const *assignments,
                size_t n_assignments, struct buf *err)
{
    config_init(cfg);
    if (path != NULL && config_load_file(cfg, path, err) != 0)
        return -1;
    for (size_t i = 0; i < n_assignments; i++) {
        if (config_set_assignment(cfg, assignments[i], err) != 0)
            return -1;
    }
    return config_finalize(cfg, err);
}

static void format_duration(int64_t ms, struct buf *out)
{
    if (ms != 0 && ms % (86400LL * 1000) == 0)
        buf_printf(out, "%lldd", (long long)(ms / (86400LL * 1000)));
    else if (ms != 0 && ms % (3600LL * 1000) == 0)
        buf_printf(out, "%lldh", (long long)(ms / (3600LL * 1000)));
    else if (ms != 0 && ms % (60LL * 1000) == 0)
        buf_printf(out, "%lldm", (long long)(ms / (60LL * 1000)));
    else if (ms % 1000 == 0)
        buf_printf(out, "%llds", (long long)(ms / 1000));
    else
        buf_printf(out, "%lldms", (long long)ms);
}

static void format_size(uint64_t v, struct buf *out)
{
    if (v != 0 && v % (1024ULL * 1024 * 1024) == 0)
        buf_printf(out, "%lluG", (unsigned long long)(v >> 30));
    else if (v != 0 && v % (1024ULL * 1024) == 0)
        buf_printf(out, "%lluM", (unsigned long long)(v >> 20));
    else if (v != 0 && v % 1024ULL == 0)
        buf_printf(out, "%lluk", (unsigned long long)(v >> 10));
    else
        buf_printf(out, "%llu", (unsigned long long)v);
}

void config_format_scalar(enum config_type type, long long v, struct buf *out)
{
    if (type == CONFIG_DURATION)
        format_duration(v, out);
    else if (type == CONFIG_SIZE && v >= 0)
        format_size((uint64_t)v, out);
    else
        buf_printf(out, "%lld", v);
}

void config_format_value(const struct wharf_config *cfg, const struct config_option *opt,
                         struct buf *out)
{
    const void *f = cfield(cfg, opt);
    switch (opt->type) {
    case CONFIG_BOOL:
        buf_append_cstr(out, *(const bool *)f ? "yes" : "no");
        break;
    case CONFIG_INT:
        buf_printf(out, "%lld", *(const long long *)f);
        break;
    case CONFIG_SIZE:
        format_size(*(const uint64_t *)f, out);
        break;
    case CONFIG_DURATION:
        format_duration(*(const int64_t *)f, out);
        break;
    case CONFIG_STRING:
    case CONFIG_PATH: {
        const char *s = *(char *const *)f;
        buf_append_cstr(out, s ? s : "");
        break;
    }
    case CONFIG_LIST:
    case CONFIG_LISTEN: {
        const struct strlist *l = f;
        if (opt->type == CONFIG_LISTEN && l->n == 0)
            buf_append_cstr(out, "off");
        for (size_t i = 0; i < l->n; i++)
            buf_printf(out, "%s%s", i ? ", " : "", l->v[i]);
        break;
    }
    }
}

bool config_is_default(const struct wharf_config *cfg, const struct config_option *opt)
{
    return cfg->origin[opt - config_options] == NULL;
}
