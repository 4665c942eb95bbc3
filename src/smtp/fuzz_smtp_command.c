/*
 * fuzz_smtp_command.c - libFuzzer target: the SMTP command line parser (with
 * the X-WHARF-LINKSTATE argument) and the xtext decoder on arbitrary bytes.
 */
#include "smtp/smtp_parse.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_cmd cmd;
    const char *why;
    struct slice line = slice_make(data, size);
    if (smtp_cmd_parse(line, &cmd, &why) == SMTP_PARSE_OK) {
        /* Every slice must lie inside the input. */
        const char *lo = (const char *)data, *hi = lo + size;
        if (cmd.path.ptr && (cmd.path.ptr < lo || cmd.path.ptr + cmd.path.len > hi))
            __builtin_trap();
        /* X-WHARF-LINKSTATE: a server name of 1..64 name characters, inside the input */
        if (cmd.verb == SMTP_XWHARFLINKSTATE &&
            (cmd.ls_server.len == 0 || cmd.ls_server.len > 64 || cmd.ls_server.ptr < lo ||
             cmd.ls_server.ptr + cmd.ls_server.len > hi ||
             memchr(cmd.ls_server.ptr, ' ', cmd.ls_server.len)))
            __builtin_trap();
        for (size_t i = 0; i < cmd.n_params; i++) {
            if (cmd.params[i].key.ptr < lo || cmd.params[i].key.ptr + cmd.params[i].key.len > hi)
                __builtin_trap();
        }
    }
    struct buf out = BUF_INIT;
    smtp_xtext_decode(line, &out);
    buf_free(&out);
    return 0;
}
