/*
 * fuzz_dotread.c - libFuzzer target: the dot-terminated reader (SMTP DATA and
 * BDAT, NNTP POST). The first byte
 * picks the mode and a split point; the rest is fed in two pieces and again
 * one byte at a time, and both runs must agree (resumability), the output
 * must never exceed the size limit, and in reject mode a message that passes
 * has CRLF line ends only.
 */
#include "net/dotread.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum dotread_result run(const struct dotread_limits *lim, bool counted, const char *p,
                               size_t n, size_t split, struct buf *out, size_t *used_r,
                               struct dotread *sc)
{
    dotread_init(sc, lim, counted, false, out);
    size_t used = 0, took;
    enum dotread_result r = DOTREAD_NEED_MORE;
    if (split > n)
        split = n;
    if (split) {
        r = dotread_feed(sc, p, split, &took);
        used += took;
    }
    if (r != DOTREAD_DONE && n > split) {
        r = dotread_feed(sc, p + split, n - split, &took);
        used += took;
    }
    *used_r = used;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    struct dotread_limits lim = {
        .max_size = (mode & 4) ? 64 : 1 << 20,
        .max_line = (mode & 8) ? 16 : 0,
        .max_header = (mode & 16) ? 32 : 0,
        .newline = (mode & 1) ? DOTREAD_NEWLINE_NORMALIZE : DOTREAD_NEWLINE_REJECT,
    };
    bool counted = mode & 2;
    struct buf a = BUF_INIT, b = BUF_INIT;
    struct dotread sa, sb;
    size_t ua, ub = 0, took;
    enum dotread_result ra = run(&lim, counted, p, n, (size_t)(mode >> 5) * n / 8, &a, &ua, &sa);
    dotread_init(&sb, &lim, counted, false, &b);
    enum dotread_result rb = DOTREAD_NEED_MORE;
    for (size_t i = 0; i < n && rb != DOTREAD_DONE; i++) {
        rb = dotread_feed(&sb, p + i, 1, &took);
        ub += took;
    }
    if (ra != rb || ua != ub || dotread_failed(&sa) != dotread_failed(&sb))
        __builtin_trap();
    /* What a refused message left in the buffer is thrown away; only accepted output must agree. */
    if (!dotread_failed(&sa) && (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0)))
        __builtin_trap();
    if (a.len > lim.max_size)
        __builtin_trap();
    if (!dotread_failed(&sa)) {
        for (size_t i = 0; i < a.len; i++) {
            if (a.data[i] == '\n' && (i == 0 || a.data[i - 1] != '\r'))
                __builtin_trap();
            if (a.data[i] == '\r' && (i + 1 >= a.len || a.data[i + 1] != '\n'))
                __builtin_trap();
        }
    }
    buf_free(&a);
    buf_free(&b);
    return 0;
}
