/*
 * fuzz_vacation.c - libFuzzer target: the vacation reply's reading of a
 * message (vacation_refusal: Auto-Submitted, Precedence, List-Id, To/Cc
 * addresses) and the reply built from it. Must never crash or read out of
 * bounds, and the reply must stay 7-bit with no bare CR or LF.
 */
#include "mta/vacation.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vacation_input in = {.sender = "bob@x.test",
                                .rcpt = "alice@example.test",
                                .account = "alice@example.test",
                                .data = {(const char *)data, size},
                                .now = 1000000};
    (void)vacation_refusal(&in);
    struct store_vacation v = {.enabled = true, .text_body = (char *)"away", .html_body = NULL};
    struct buf out = BUF_INIT;
    vacation_reply_build(&in, &v, "mx.example.test", &out);
    for (size_t i = 0; i < out.len; i++) {
        unsigned char c = (unsigned char)out.data[i];
        if (c >= 0x80 || (c == '\r' && (i + 1 == out.len || out.data[i + 1] != '\n')) ||
            (c == '\n' && (i == 0 || out.data[i - 1] != '\r')))
            __builtin_trap();
    }
    buf_free(&out);
    return 0;
}
