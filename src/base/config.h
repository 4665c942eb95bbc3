/*
 * config.h - wharf.conf: typed options from the one table in options.def.
 *
 * File format (read at a glance by a Postfix admin):
 *   # comment
 *   name = value
 *       continued value (a line starting with white space continues the previous one)
 * The main file is read first, then the DIR/conf.d/NAME.conf drop-ins in name order, where DIR
 * is the main file's directory; a later setting wins. `-o name=value` on the
 * command line wins over both. Errors are reported as "file:line: message"
 * and the caller exits with EX_CONFIG (78).
 *
 * Parsing never touches global state: a bad file on SIGHUP leaves the running
 * configuration as it was.
 */
#ifndef WHARF_BASE_CONFIG_H
#define WHARF_BASE_CONFIG_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strlist {
    char **v; /* NULL-terminated */
    size_t n;
};

#define OPT_CTYPE_BOOL bool
#define OPT_CTYPE_INT long long
#define OPT_CTYPE_SIZE uint64_t
#define OPT_CTYPE_DURATION int64_t /* milliseconds */
#define OPT_CTYPE_STRING char *
#define OPT_CTYPE_PATH char *
#define OPT_CTYPE_LIST struct strlist
#define OPT_CTYPE_LISTEN struct strlist /* empty when "off" */

enum config_type {
    CONFIG_BOOL,
    CONFIG_INT,
    CONFIG_SIZE,
    CONFIG_DURATION,
    CONFIG_STRING,
    CONFIG_PATH,
    CONFIG_LIST,
    CONFIG_LISTEN,
};

enum config_option_id {
#define OPT(name, type, def, min, max, help) OPTID_##name,
#include "base/options.def"
#undef OPT
    OPTID__COUNT
};

struct wharf_config {
#define OPT(name, type, def, min, max, help) OPT_CTYPE_##type name;
#include "base/options.def"
#undef OPT
    /* Where each option was last set ("file:line", "-o"), NULL for the default. */
    char *origin[OPTID__COUNT];
    /* The main file, NULL when running on embedded defaults. */
    char *path;
};

struct config_option {
    const char *name;
    enum config_type type;
    const char *def;
    long long min, max;
    const char *help;
    size_t offset;
};

extern const struct config_option config_options[OPTID__COUNT];

const struct config_option *config_find(const char *name);
/* The option's field in cfg, of the C type OPT_CTYPE_<type> (for code driven by the table). */
const void *config_value(const struct wharf_config *cfg, const struct config_option *opt);
const char *config_type_name(enum config_type type);

/* Sets every option to its default. */
void config_init(struct wharf_config *cfg);
void config_free(struct wharf_config *cfg);

/*
 * Reads path and its conf.d drop-ins into cfg. Returns 0, or -1 with
 * "file:line: message" in err.
 */
int config_load_file(struct wharf_config *cfg, const char *path, struct buf *err);

/* Reads text as if it were a file named origin (used by tests). */
int config_load_string(struct wharf_config *cfg, const char *origin, const char *text,
                       struct buf *err);

/* Sets one option from its text form; origin names where it came from. */
int config_set(struct wharf_config *cfg, const char *name, const char *value, const char *origin,
               struct buf *err);

/* Parses "name=value" (from -o). */
int config_set_assignment(struct wharf_config *cfg, const char *assignment, struct buf *err);

/*
 * Fills derived values (myhostname, mydomains, absolute paths) and checks
 * options against each other. Call after loading.
 */
int config_finalize(struct wharf_config *cfg, struct buf *err);

/* Convenience: init + load (path may be NULL: embedded defaults) + -o list + finalize. */
int config_read(struct wharf_config *cfg, const char *path, char *const *assignments,
                size_t n_assignments, struct buf *err);

/* Appends the option's current value in the file's syntax. */
void config_format_value(const struct wharf_config *cfg, const struct config_option *opt,
                         struct buf *out);
/* Appends an INT, SIZE or DURATION value (min/max of the table) in the file's syntax. */
void config_format_scalar(enum config_type type, long long v, struct buf *out);
bool config_is_default(const struct wharf_config *cfg, const struct config_option *opt);

/* Value parsers, exposed for reuse (and unit tests). They return false on bad input. */
bool config_parse_bool(const char *s, bool *out);
bool config_parse_int(const char *s, long long *out);
bool config_parse_size(const char *s, uint64_t *out);
bool config_parse_duration(const char *s, int64_t *out_ms);

/* A parsed LISTEN entry. host is "" for the wildcard "*". */
struct listen_addr {
    char host[64];
    uint16_t port;
};
bool config_parse_listen_addr(const char *s, struct listen_addr *out);

/* Derived paths inside data_directory (caller frees). */
char *config_data_path(const struct wharf_config *cfg, const char *relative);
bool strlist_contains_nocase(const struct strlist *l, const char *s);

#endif
