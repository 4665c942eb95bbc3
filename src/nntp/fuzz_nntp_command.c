/*
 * fuzz_nntp_command.c - libFuzzer target: the NNTP command parser and the
 * argument forms it hands out (range, message-id, wildmat, date). Arguments
 * must lie inside the line; a message-id found valid has no space, control
 * or ">" inside.
 */
#include "nntp/nntp_parse.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > NNTP_MAX_LINE)
        size = NNTP_MAX_LINE;
    struct slice line = slice_make(data, size);
    struct nntp_command c;
    const char *why;
    /* the client side reads the same kind of lines: replies, and its peer entries */
    int code;
    struct slice text;
    if (nntp_parse_reply(line, &code, &text) && (code < 100 || code > 599 || text.ptr < line.ptr ||
                                                 text.ptr + text.len > line.ptr + line.len))
        __builtin_trap();
    struct nntp_peer_spec ps;
    if (nntp_peer_spec_parse(line, &ps, &why)) {
        if (ps.name.len == 0 || ps.addr.len == 0 || ps.addr.ptr + ps.addr.len > line.ptr + line.len)
            __builtin_trap();
        /* the host is inside the address, before its port */
        if (ps.port == 0 || ps.port > 65535 || ps.host.ptr < ps.addr.ptr ||
            ps.host.ptr + ps.host.len >= ps.addr.ptr + ps.addr.len)
            __builtin_trap();
        struct buf w = BUF_INIT;
        nntp_peer_spec_wildmat(&ps, &w);
        if (!nntp_wildmat_valid(buf_slice(&w)))
            __builtin_trap();
        buf_free(&w);
    }
    if (nntp_parse_command(line, &c, &why) != NNTP_PARSE_OK)
        return 0;
    for (size_t i = 0; i < c.n_args; i++) {
        struct slice a = c.args[i];
        if (a.ptr < line.ptr || a.ptr + a.len > line.ptr + line.len || a.len == 0)
            __builtin_trap();
        uint32_t lo, hi;
        if (nntp_parse_range(a, &lo, &hi) && memchr(a.ptr, '-', a.len) == NULL && lo != hi)
            __builtin_trap();
        if (nntp_msgid_valid(a)) {
            for (size_t k = 1; k + 1 < a.len; k++)
                if (a.ptr[k] == '>' || a.ptr[k] <= ' ')
                    __builtin_trap();
        }
        if (nntp_wildmat_valid(a))
            (void)nntp_wildmat(a, line);
    }
    if (c.n_args >= 2) {
        int64_t t;
        (void)nntp_parse_datetime(c.args[0], c.args[1], 1796428800, &t);
    }
    return 0;
}
