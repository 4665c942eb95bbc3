/*
 * fuzz_pop3_command.c - libFuzzer target for the POP3 command parser.
 */
#include "pop3/pop3_parse.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pop3_command cmd;
    const char *err;
    struct slice line = slice_make(data, size);
    if (pop3_parse_command(line, &cmd, &err)) {
        for (size_t i = 0; i < cmd.n_args; i++) {
            uint32_t n;
            /* Every argument lies inside the line. */
            if (cmd.args[i].ptr < line.ptr ||
                cmd.args[i].ptr + cmd.args[i].len > line.ptr + line.len)
                __builtin_trap();
            (void)pop3_parse_number(cmd.args[i], UINT32_MAX, &n);
        }
    } else if (err == NULL) {
        __builtin_trap();
    }
    return 0;
}
