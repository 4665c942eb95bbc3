/*
 * pop3_parse.c - recognising POP3 command lines and checking their arguments.
 */
#include "pop3/pop3_parse.h"

#include <string.h>

struct cmd_spec {
    const char *name;
    unsigned min_args, max_args;
    bool rest_is_one_arg; /* PASS: the password may contain spaces (RFC 1939) */
};

static const struct cmd_spec specs[POP3_CMD__COUNT] = {
    [POP3_CMD_USER] = {"USER", 1, 1, false},
    [POP3_CMD_PASS] = {"PASS", 1, 1, true},
    [POP3_CMD_APOP] = {"APOP", 2, 2, false},
    [POP3_CMD_AUTH] = {"AUTH", 0, 2, false},
    [POP3_CMD_STLS] = {"STLS", 0, 0, false},
    [POP3_CMD_CAPA] = {"CAPA", 0, 0, false},
    [POP3_CMD_STAT] = {"STAT", 0, 0, false},
    [POP3_CMD_LIST] = {"LIST", 0, 1, false},
    [POP3_CMD_RETR] = {"RETR", 1, 1, false},
    [POP3_CMD_DELE] = {"DELE", 1, 1, false},
    [POP3_CMD_NOOP] = {"NOOP", 0, 0, false},
    [POP3_CMD_RSET] = {"RSET", 0, 0, false},
    [POP3_CMD_QUIT] = {"QUIT", 0, 0, false},
    [POP3_CMD_TOP] = {"TOP", 2, 2, false},
    [POP3_CMD_UIDL] = {"UIDL", 0, 1, false},
    [POP3_CMD_UTF8] = {"UTF8", 0, 0, false},
    [POP3_CMD_XWHARFPROXY] = {"XWHARFPROXY", 3, 3, false},
};

const char *pop3_cmd_name(enum pop3_cmd cmd)
{
    return cmd < POP3_CMD__COUNT ? specs[cmd].name : "?";
}

static bool is_vchar(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

bool pop3_parse_number(struct slice s, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (!slice_to_u64(s, max, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

bool pop3_parse_command(struct slice line, struct pop3_command *out, const char **error_r)
{
    memset(out, 0, sizeof(*out));
    if (line.len > POP3_MAX_LINE - 2) {
        *error_r = "Command line too long";
        return false;
    }
    for (size_t i = 0; i < line.len; i++) {
        unsigned char c = (unsigned char)line.ptr[i];
        if (c == '\0' || c == '\r' || c == '\n') {
            *error_r = "Invalid character in command";
            return false;
        }
    }
    size_t kw_end = 0;
    while (kw_end < line.len && line.ptr[kw_end] != ' ')
        kw_end++;
    struct slice kw = slice_make(line.ptr, kw_end);
    if (kw.len == 0) {
        *error_r = "Empty command";
        return false;
    }
    const struct cmd_spec *spec = NULL;
    for (size_t i = 0; i < POP3_CMD__COUNT; i++) {
        if (slice_eq_cstr_nocase(kw, specs[i].name)) {
            spec = &specs[i];
            out->cmd = (enum pop3_cmd)i;
            break;
        }
    }
    if (spec == NULL) {
        *error_r = "Unknown command";
        return false;
    }
    size_t p = kw_end;
    while (p < line.len) {
        /* Exactly one space separates arguments; tolerate extra spaces. */
        while (p < line.len && line.ptr[p] == ' ')
            p++;
        if (p >= line.len)
            break;
        if (out->n_args == spec->max_args) {
            *error_r = "Too many arguments";
            return false;
        }
        size_t start = p;
        if (spec->rest_is_one_arg) {
            p = line.len;
        } else {
            while (p < line.len && line.ptr[p] != ' ') {
                if (!is_vchar((unsigned char)line.ptr[p])) {
                    *error_r = "Invalid character in argument";
                    return false;
                }
                p++;
            }
        }
        /* RFC 2449: arguments are at most 40 octets, except secrets and SASL data. */
        if (p - start > 40 && out->cmd != POP3_CMD_PASS && out->cmd != POP3_CMD_AUTH &&
            out->cmd != POP3_CMD_XWHARFPROXY) {
            *error_r = "Argument too long";
            return false;
        }
        out->args[out->n_args++] = slice_make(line.ptr + start, p - start);
    }
    if (out->n_args < spec->min_args) {
        *error_r = "Missing argument";
        return false;
    }
    return true;
}
