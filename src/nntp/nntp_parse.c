/*
 * nntp_parse.c - NNTP command lines and argument forms; see nntp_parse.h.
 * Must never: read outside the slice it is given.
 */
#include "nntp/nntp_parse.h"
#include "base/date.h"

#include <string.h>

struct cmd_def {
    const char *name;
    enum nntp_cmd cmd;
    unsigned min, max; /* argument words */
};

/* RFC 3977, 4643, 4644, 8054; XOVER and XHDR as INN and RFC 2980 have them. */
static const struct cmd_def cmds[] = {
    {"ARTICLE", NNTP_CMD_ARTICLE, 0, 1},
    {"AUTHINFO", NNTP_CMD_AUTHINFO, 1, 3},
    {"BODY", NNTP_CMD_BODY, 0, 1},
    {"CAPABILITIES", NNTP_CMD_CAPABILITIES, 0, 1},
    {"DATE", NNTP_CMD_DATE, 0, 0},
    {"GROUP", NNTP_CMD_GROUP, 1, 1},
    {"HDR", NNTP_CMD_HDR, 1, 2},
    {"HEAD", NNTP_CMD_HEAD, 0, 1},
    {"HELP", NNTP_CMD_HELP, 0, 0},
    {"IHAVE", NNTP_CMD_IHAVE, 1, 1},
    {"LAST", NNTP_CMD_LAST, 0, 0},
    {"LIST", NNTP_CMD_LIST, 0, 2},
    {"LISTGROUP", NNTP_CMD_LISTGROUP, 0, 2},
    {"MODE", NNTP_CMD_MODE, 1, 1},
    {"NEWGROUPS", NNTP_CMD_NEWGROUPS, 2, 3},
    {"NEWNEWS", NNTP_CMD_NEWNEWS, 3, 4},
    {"NEXT", NNTP_CMD_NEXT, 0, 0},
    {"OVER", NNTP_CMD_OVER, 0, 1},
    {"POST", NNTP_CMD_POST, 0, 0},
    {"QUIT", NNTP_CMD_QUIT, 0, 0},
    {"STARTTLS", NNTP_CMD_STARTTLS, 0, 0},
    {"STAT", NNTP_CMD_STAT, 0, 1},
    {"CHECK", NNTP_CMD_CHECK, 1, 1},
    {"COMPRESS", NNTP_CMD_COMPRESS, 1, 1},
    {"TAKETHIS", NNTP_CMD_TAKETHIS, 1, 1},
    {"XHDR", NNTP_CMD_XHDR, 1, 2},
    {"XOVER", NNTP_CMD_XOVER, 0, 1},
};

const char *nntp_cmd_name(enum nntp_cmd cmd)
{
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (cmds[i].cmd == cmd)
            return cmds[i].name;
    return "?";
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

enum nntp_parse_result nntp_parse_command(struct slice line, struct nntp_command *out,
                                          const char **why_r)
{
    memset(out, 0, sizeof(*out));
    struct slice words[NNTP_MAX_ARGS + 2];
    size_t n = 0, i = 0;
    while (i < line.len) {
        while (i < line.len && is_ws(line.ptr[i]))
            i++;
        if (i == line.len)
            break;
        size_t start = i;
        while (i < line.len && !is_ws(line.ptr[i])) {
            unsigned char c = (unsigned char)line.ptr[i];
            if (c < 0x20 || c == 0x7f) {
                *why_r = "Control character in command";
                return NNTP_PARSE_SYNTAX;
            }
            i++;
        }
        /* AUTHINFO USER and PASS: the rest of the line, spaces included
         * (RFC 4643's grammar has none, but passwords do: INN takes them too). */
        if (n == 2 && slice_eq_cstr_nocase(words[0], "AUTHINFO") &&
            (slice_eq_cstr_nocase(words[1], "USER") || slice_eq_cstr_nocase(words[1], "PASS"))) {
            size_t end = line.len;
            for (size_t k = start; k < end; k++) {
                unsigned char c = (unsigned char)line.ptr[k];
                if ((c < 0x20 && c != '\t') || c == 0x7f) {
                    *why_r = "Control character in command";
                    return NNTP_PARSE_SYNTAX;
                }
            }
            while (end > start && is_ws(line.ptr[end - 1]))
                end--;
            words[n++] = slice_make(line.ptr + start, end - start);
            break;
        }
        if (n == NNTP_MAX_ARGS + 1) {
            *why_r = "Too many arguments";
            return NNTP_PARSE_SYNTAX;
        }
        words[n++] = slice_make(line.ptr + start, i - start);
    }
    if (n == 0) {
        *why_r = "Empty command";
        return NNTP_PARSE_UNKNOWN;
    }
    for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
        if (!slice_eq_cstr_nocase(words[0], cmds[k].name))
            continue;
        if (n - 1 < cmds[k].min || n - 1 > cmds[k].max) {
            *why_r = "Wrong number of arguments";
            return NNTP_PARSE_SYNTAX;
        }
        out->cmd = cmds[k].cmd;
        out->n_args = n - 1;
        for (size_t a = 1; a < n; a++)
            out->args[a - 1] = words[a];
        return NNTP_PARSE_OK;
    }
    *why_r = "Unknown command";
    return NNTP_PARSE_UNKNOWN;
}

bool nntp_parse_number(struct slice s, uint32_t *out)
{
    uint64_t v;
    if (!slice_to_u64(s, UINT32_MAX, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

bool nntp_parse_range(struct slice s, uint32_t *lo_r, uint32_t *hi_r)
{
    const char *dash = memchr(s.ptr, '-', s.len);
    if (dash == NULL) {
        if (!nntp_parse_number(s, lo_r))
            return false;
        *hi_r = *lo_r;
        return true;
    }
    size_t k = (size_t)(dash - s.ptr);
    if (!nntp_parse_number(slice_make(s.ptr, k), lo_r))
        return false;
    if (k + 1 == s.len) {
        *hi_r = UINT32_MAX;
        return true;
    }
    return nntp_parse_number(slice_make(dash + 1, s.len - k - 1), hi_r);
}

bool nntp_msgid_valid(struct slice s)
{
    if (s.len < 3 || s.len > NNTP_MSGID_MAX || s.ptr[0] != '<' || s.ptr[s.len - 1] != '>')
        return false;
    for (size_t i = 1; i + 1 < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x21 || c > 0x7e || c == '>')
            return false;
    }
    return true;
}

/* One pattern ("*" and "?"), iteratively with one backtrack point. */
static bool pattern_match(const char *p, size_t pn, const char *s, size_t sn)
{
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
    while (si < sn) {
        if (pi < pn && (p[pi] == '?' || p[pi] == s[si])) {
            pi++;
            si++;
        } else if (pi < pn && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

bool nntp_wildmat(struct slice w, struct slice s)
{
    bool result = false;
    size_t i = 0;
    while (i <= w.len) {
        const char *comma = memchr(w.ptr + i, ',', w.len - i);
        size_t end = comma ? (size_t)(comma - w.ptr) : w.len;
        const char *p = w.ptr + i;
        size_t pn = end - i;
        bool neg = pn > 0 && p[0] == '!';
        if (neg) {
            p++;
            pn--;
        }
        if (pattern_match(p, pn, s.ptr, s.len))
            result = !neg;
        if (comma == NULL)
            break;
        i = end + 1;
    }
    return result;
}

bool nntp_wildmat_valid(struct slice w)
{
    if (w.len == 0)
        return false;
    size_t plen = 0;
    for (size_t i = 0; i < w.len; i++) {
        unsigned char c = (unsigned char)w.ptr[i];
        if (c < 0x21 || c == 0x7f || c == '\\' || c == '[' || c == ']')
            return false;
        if (c == ',') {
            if (plen == 0)
                return false;
            plen = 0;
        } else if (!(c == '!' && plen == 0)) {
            plen++;
        }
    }
    return plen > 0;
}

static bool digits(struct slice s, size_t off, size_t n, unsigned *v)
{
    *v = 0;
    for (size_t i = off; i < off + n; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        *v = *v * 10 + (unsigned)(s.ptr[i] - '0');
    }
    return true;
}

bool nntp_parse_datetime(struct slice date, struct slice time, int64_t now, int64_t *t_r)
{
    unsigned y, m, d, hh, mm, ss;
    if (date.len == 8) {
        if (!digits(date, 0, 4, &y))
            return false;
    } else if (date.len == 6) {
        /* RFC 3977 7.3.2: the century that makes the date nearest to now, not in the future. */
        if (!digits(date, 0, 2, &y))
            return false;
        int64_t ny;
        unsigned nm, nd;
        date_civil_from_days(now / 86400, &ny, &nm, &nd);
        unsigned cur = (unsigned)(ny % 100), century = (unsigned)(ny - ny % 100);
        y += y <= cur ? century : century - 100;
    } else {
        return false;
    }
    size_t o = date.len - 4;
    if (!digits(date, o, 2, &m) || !digits(date, o + 2, 2, &d) || time.len != 6 ||
        !digits(time, 0, 2, &hh) || !digits(time, 2, 2, &mm) || !digits(time, 4, 2, &ss))
        return false;
    if (m < 1 || m > 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60)
        return false;
    *t_r = date_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
    return true;
}

/* ---- the client side ---- */

bool nntp_parse_reply(struct slice line, int *code_r, struct slice *text_r)
{
    if (line.len < 3 || (line.len > 3 && line.ptr[3] != ' '))
        return false;
    unsigned v;
    if (!digits(line, 0, 3, &v) || v < 100 || v > 599)
        return false;
    *code_r = (int)v;
    *text_r = line.len > 4 ? slice_make(line.ptr + 4, line.len - 4) : slice_make(line.ptr, 0);
    return true;
}

static bool path_identity_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

bool nntp_peer_spec_parse(struct slice e, struct nntp_peer_spec *out, const char **why_r)
{
    memset(out, 0, sizeof(*out));
    const char *eq = memchr(e.ptr, '=', e.len);
    if (eq == NULL || eq == e.ptr) {
        *why_r = "expected NAME=nntp://ADDRESS:PORT[/WILDMAT]";
        return false;
    }
    out->name = slice_make(e.ptr, (size_t)(eq - e.ptr));
    for (size_t i = 0; i < out->name.len; i++) {
        if (!path_identity_char(out->name.ptr[i])) {
            *why_r = "the peer's name (its Path entry) may hold letters, digits, '.', '-', '_'";
            return false;
        }
    }
    struct slice u = slice_make(eq + 1, e.len - out->name.len - 1);
    if (slice_startswith_nocase(u, "nntp://")) {
        u = slice_make(u.ptr + 7, u.len - 7);
    } else if (slice_startswith_nocase(u, "nntps://")) {
        out->tls = true;
        u = slice_make(u.ptr + 8, u.len - 8);
    } else {
        *why_r = "the address must start with nntp:// or nntps://";
        return false;
    }
    const char *slash = memchr(u.ptr, '/', u.len);
    out->addr = slice_make(u.ptr, slash ? (size_t)(slash - u.ptr) : u.len);
    if (slash)
        out->groups = slice_make(slash + 1, u.len - out->addr.len - 1);
    const char *colon = NULL;
    for (size_t i = out->addr.len; i > 0; i--) {
        if (out->addr.ptr[i - 1] == ':') {
            colon = out->addr.ptr + i - 1;
            break;
        }
        if (out->addr.ptr[i - 1] == ']')
            break;
    }
    uint64_t port;
    if (colon == NULL || colon == out->addr.ptr ||
        !slice_to_u64(slice_make(colon + 1, (size_t)(out->addr.ptr + out->addr.len - colon - 1)),
                      65535, &port) ||
        port == 0) {
        *why_r = "the address needs a port (ADDRESS:PORT)";
        return false;
    }
    out->port = (unsigned)port;
    out->host = slice_make(out->addr.ptr, (size_t)(colon - out->addr.ptr));
    if (out->host.len >= 2 && out->host.ptr[0] == '[' && out->host.ptr[out->host.len - 1] == ']')
        out->host = slice_make(out->host.ptr + 1, out->host.len - 2);
    if (out->groups.len) {
        char w[NNTP_MAX_LINE];
        if (out->groups.len > sizeof(w) || memchr(out->groups.ptr, ',', out->groups.len)) {
            *why_r = "bad group patterns (a wildmat with ';' between patterns)";
            return false;
        }
        for (size_t i = 0; i < out->groups.len; i++)
            w[i] = out->groups.ptr[i] == ';' ? ',' : out->groups.ptr[i];
        if (!nntp_wildmat_valid(slice_make(w, out->groups.len))) {
            *why_r = "bad group patterns (a wildmat with ';' between patterns)";
            return false;
        }
    }
    return true;
}

void nntp_peer_spec_wildmat(const struct nntp_peer_spec *p, struct buf *out)
{
    if (p->groups.len == 0) {
        buf_append_cstr(out, "*");
        return;
    }
    for (size_t i = 0; i < p->groups.len; i++)
        buf_append_byte(out, p->groups.ptr[i] == ';' ? ',' : p->groups.ptr[i]);
}
