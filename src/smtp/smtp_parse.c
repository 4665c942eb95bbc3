/*
 * smtp_parse.c - SMTP command line parser (DATA is read by src/net/dotread.c,
 * which keeps the end on <CRLF>.<CRLF> only: CVE-2023-51764).
 *
 * See smtp_parse.h. Must never: trust a length from the client beyond what
 * it has sent, or accept an address with control characters or spaces.
 */
#include "smtp/smtp_parse.h"

#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    enum smtp_verb verb;
} verbs[] = {
    {"HELO", SMTP_HELO},
    {"EHLO", SMTP_EHLO},
    {"MAIL", SMTP_MAIL},
    {"RCPT", SMTP_RCPT},
    {"DATA", SMTP_DATA},
    {"BDAT", SMTP_BDAT},
    {"RSET", SMTP_RSET},
    {"NOOP", SMTP_NOOP},
    {"QUIT", SMTP_QUIT},
    {"VRFY", SMTP_VRFY},
    {"EXPN", SMTP_EXPN},
    {"HELP", SMTP_HELP},
    {"STARTTLS", SMTP_STARTTLS},
    {"AUTH", SMTP_AUTH},
    {"XWHARFPROXY", SMTP_XWHARFPROXY},
    {"X-WHARF-LINKSTATE", SMTP_XWHARFLINKSTATE},
};

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* "1 SERVER": exactly one space between, nothing after; version 1 only. */
static enum smtp_parse_result parse_linkstate(struct slice arg, struct smtp_cmd *cmd,
                                              const char **why_r)
{
    if (arg.len < 3 || arg.ptr[1] != ' ' || !is_alnum((unsigned char)arg.ptr[0])) {
        *why_r = "5.5.4 Syntax: X-WHARF-LINKSTATE 1 SERVER";
        return SMTP_PARSE_SYNTAX;
    }
    if (arg.ptr[0] != '1') {
        *why_r = "5.5.4 X-WHARF-LINKSTATE: only version 1 is spoken here";
        return SMTP_PARSE_SYNTAX;
    }
    struct slice name = slice_make(arg.ptr + 2, arg.len - 2);
    if (name.len > 64) {
        *why_r = "5.5.4 Syntax: X-WHARF-LINKSTATE 1 SERVER";
        return SMTP_PARSE_SYNTAX;
    }
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.ptr[i];
        if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
            *why_r = "5.5.4 Syntax: X-WHARF-LINKSTATE 1 SERVER";
            return SMTP_PARSE_SYNTAX;
        }
    }
    cmd->ls_server = name;
    return SMTP_PARSE_OK;
}

bool smtp_address_valid(struct slice a, bool *utf8)
{
    *utf8 = false;
    if (a.len == 0 || a.len > SMTP_MAX_PATH)
        return false;
    if (slice_eq_cstr_nocase(a, "postmaster"))
        return true;
    size_t at = a.len;
    bool quoted = false;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char c = (unsigned char)a.ptr[i];
        if (c >= 0x80)
            *utf8 = true;
        if (is_ctl(c))
            return false;
        if (quoted) {
            if (c == '\\' && i + 1 < a.len)
                i++;
            else if (c == '"')
                quoted = false;
            continue;
        }
        if (c == '"' && (i == 0 || a.ptr[i - 1] == '.'))
            quoted = true;
        else if (c == '@')
            at = i;
        else if (c == ' ' || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';' ||
                 c == ':' || c == '\\' || (c == '[' && at == a.len))
            return false;
    }
    if (quoted || at == 0 || at + 1 >= a.len)
        return false;
    /* Domain: labels of letters, digits, hyphens (and UTF-8), or an address literal. */
    struct slice d = slice_make(a.ptr + at + 1, a.len - at - 1);
    if (d.ptr[0] == '[')
        return d.ptr[d.len - 1] == ']' && d.len > 2;
    if (d.ptr[0] == '.' || d.ptr[d.len - 1] == '.')
        return false;
    for (size_t i = 0; i < d.len; i++) {
        unsigned char c = (unsigned char)d.ptr[i];
        if (!(is_alnum(c) || c == '-' || c == '.' || c >= 0x80))
            return false;
        if (c == '.' && i + 1 < d.len && d.ptr[i + 1] == '.')
            return false;
    }
    return true;
}

/* "FROM:<path> params" or "TO:<path> params". */
static enum smtp_parse_result parse_path(struct slice arg, const char *prefix, struct smtp_cmd *cmd,
                                         const char **why_r)
{
    size_t pl = strlen(prefix);
    if (!slice_startswith_nocase(arg, prefix)) {
        *why_r = cmd->verb == SMTP_MAIL ? "5.5.4 Syntax: MAIL FROM:<address>"
                                        : "5.5.4 Syntax: RCPT TO:<address>";
        return SMTP_PARSE_SYNTAX;
    }
    const char *p = arg.ptr + pl, *end = arg.ptr + arg.len;
    while (p < end && *p == ' ') /* tolerated by every MTA: "MAIL FROM: <a@b>" */
        p++;
    if (p == end || *p != '<') {
        *why_r = "5.1.7 Bad address syntax: angle brackets required";
        return SMTP_PARSE_SYNTAX;
    }
    const char *close = NULL;
    bool quoted = false;
    for (const char *q = p + 1; q < end; q++) {
        if (quoted && *q == '\\' && q + 1 < end) {
            q++;
            continue;
        }
        if (*q == '"')
            quoted = !quoted;
        else if (*q == '>' && !quoted) {
            close = q;
            break;
        }
    }
    if (close == NULL) {
        *why_r = "5.1.7 Bad address syntax";
        return SMTP_PARSE_SYNTAX;
    }
    struct slice path = slice_make(p + 1, (size_t)(close - p - 1));
    /* Drop an obsolete source route "@a,@b:". */
    if (path.len > 0 && path.ptr[0] == '@') {
        const char *colon = memchr(path.ptr, ':', path.len);
        if (colon == NULL) {
            *why_r = "5.1.7 Bad address syntax";
            return SMTP_PARSE_SYNTAX;
        }
        path = slice_make(colon + 1, path.len - (size_t)(colon + 1 - path.ptr));
    }
    cmd->path = path;
    if (path.len > 0 && !smtp_address_valid(path, &cmd->path_utf8)) {
        *why_r = "5.1.3 Bad address syntax";
        return SMTP_PARSE_SYNTAX;
    }
    if (path.len == 0 && cmd->verb == SMTP_RCPT) {
        *why_r = "5.1.3 Bad recipient address syntax";
        return SMTP_PARSE_SYNTAX;
    }
    /* Parameters: SP keyword[=value] ... */
    p = close + 1;
    while (p < end) {
        if (*p != ' ') {
            *why_r = "5.5.4 Syntax error in parameters";
            return SMTP_PARSE_SYNTAX;
        }
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        const char *k = p;
        while (p < end && (is_alnum((unsigned char)*p) || *p == '-'))
            p++;
        if (p == k || cmd->n_params == SMTP_MAX_PARAMS) {
            *why_r = "5.5.4 Syntax error in parameters";
            return SMTP_PARSE_SYNTAX;
        }
        struct smtp_param *prm = &cmd->params[cmd->n_params++];
        prm->key = slice_make(k, (size_t)(p - k));
        prm->value = SLICE_NULL;
        if (p < end && *p == '=') {
            const char *v = ++p;
            while (p < end && *p != ' ' && *p != '=' && !is_ctl((unsigned char)*p))
                p++;
            if (p == v || (p < end && *p != ' ')) {
                *why_r = "5.5.4 Syntax error in parameters";
                return SMTP_PARSE_SYNTAX;
            }
            prm->value = slice_make(v, (size_t)(p - v));
        }
    }
    return SMTP_PARSE_OK;
}

static enum smtp_parse_result parse_bdat(struct slice arg, struct smtp_cmd *cmd, const char **why_r)
{
    size_t i = 0;
    uint64_t n = 0;
    while (i < arg.len && arg.ptr[i] >= '0' && arg.ptr[i] <= '9') {
        if (i >= 18) {
            *why_r = "5.5.4 Syntax: BDAT size [LAST]";
            return SMTP_PARSE_SYNTAX;
        }
        n = n * 10 + (uint64_t)(arg.ptr[i] - '0');
        i++;
    }
    if (i == 0) {
        *why_r = "5.5.4 Syntax: BDAT size [LAST]";
        return SMTP_PARSE_SYNTAX;
    }
    cmd->chunk_size = n;
    struct slice rest = slice_trim(slice_make(arg.ptr + i, arg.len - i));
    if (rest.len == 0)
        return SMTP_PARSE_OK;
    if (i < arg.len && arg.ptr[i] == ' ' && slice_eq_cstr_nocase(rest, "LAST")) {
        cmd->last = true;
        return SMTP_PARSE_OK;
    }
    *why_r = "5.5.4 Syntax: BDAT size [LAST]";
    return SMTP_PARSE_SYNTAX;
}

enum smtp_parse_result smtp_cmd_parse(struct slice line, struct smtp_cmd *cmd, const char **why_r)
{
    memset(cmd, 0, sizeof(*cmd));
    *why_r = NULL;
    size_t vl = 0;
    while (vl < line.len && line.ptr[vl] != ' ')
        vl++;
    struct slice v = slice_make(line.ptr, vl);
    cmd->name = "UNKNOWN";
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (slice_eq_cstr_nocase(v, verbs[i].name)) {
            cmd->verb = verbs[i].verb;
            cmd->name = verbs[i].name;
        }
    }
    if (cmd->verb == SMTP_UNKNOWN)
        return SMTP_PARSE_UNKNOWN;
    cmd->arg = vl < line.len ? slice_make(line.ptr + vl + 1, line.len - vl - 1) : SLICE_NULL;
    for (size_t i = 0; i < line.len; i++) {
        unsigned char c = (unsigned char)line.ptr[i];
        if (c == 0 || c == '\r' || c == '\n') {
            *why_r = "5.5.2 Syntax error: control characters in command";
            return SMTP_PARSE_SYNTAX;
        }
    }
    bool has_arg = slice_trim(cmd->arg).len > 0;
    switch (cmd->verb) {
    case SMTP_HELO:
    case SMTP_EHLO: {
        struct slice h = slice_trim(cmd->arg);
        for (size_t i = 0; i < h.len; i++) {
            if (is_ctl((unsigned char)h.ptr[i]) || h.ptr[i] == ' ')
                h.len = 0;
        }
        if (h.len == 0 || h.len > 255) {
            *why_r = cmd->verb == SMTP_HELO ? "5.5.4 Syntax: HELO hostname"
                                            : "5.5.4 Syntax: EHLO hostname";
            return SMTP_PARSE_SYNTAX;
        }
        cmd->arg = h;
        return SMTP_PARSE_OK;
    }
    case SMTP_XWHARFLINKSTATE:
        return parse_linkstate(cmd->arg, cmd, why_r);
    case SMTP_MAIL:
        return parse_path(cmd->arg, "FROM:", cmd, why_r);
    case SMTP_RCPT:
        return parse_path(cmd->arg, "TO:", cmd, why_r);
    case SMTP_BDAT:
        return parse_bdat(cmd->arg, cmd, why_r);
    case SMTP_DATA:
    case SMTP_RSET:
    case SMTP_QUIT:
    case SMTP_STARTTLS:
        if (has_arg) {
            *why_r = "5.5.4 Syntax error: no arguments allowed";
            return SMTP_PARSE_SYNTAX;
        }
        return SMTP_PARSE_OK;
    case SMTP_AUTH:
    case SMTP_VRFY:
    case SMTP_XWHARFPROXY:
        if (!has_arg) {
            *why_r = "5.5.4 Syntax error: argument required";
            return SMTP_PARSE_SYNTAX;
        }
        return SMTP_PARSE_OK;
    default:
        return SMTP_PARSE_OK;
    }
}

size_t smtp_header_count(struct slice msg, const char *name, size_t max)
{
    size_t nl = strlen(name), n = 0;
    const char *p = msg.ptr, *end = msg.ptr + msg.len;
    while (p < end && n < max) {
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            break; /* end of the header section */
        if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            n++;
        const char *nlp = memchr(p, '\n', (size_t)(end - p));
        if (nlp == NULL)
            break;
        p = nlp + 1;
    }
    return n;
}

bool smtp_header_present(struct slice msg, const char *name)
{
    return smtp_header_count(msg, name, 1) > 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool smtp_xtext_decode(struct slice in, struct buf *out)
{
    buf_reset(out);
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (c == '+') {
            if (i + 2 >= in.len)
                return false;
            int h = hexval(in.ptr[i + 1]), l = hexval(in.ptr[i + 2]);
            if (h < 0 || l < 0)
                return false;
            buf_append_byte(out, (char)(h * 16 + l));
            i += 2;
        } else if (c < 0x21 || c > 0x7e || c == '=') {
            return false;
        } else {
            buf_append_byte(out, (char)c);
        }
    }
    return true;
}
