/*
 * fuzz_imapc.c - libFuzzer target: arbitrary bytes as a remote IMAP server's
 * response for `wharf import imap`. The input is split at NUL bytes: the
 * first part is the response text, the others its literals. Every parser of
 * imapc_parse.h runs on it; a body it returns must lie inside a literal.
 * Must never write to the input.
 */
#include "cli/imapc_parse.h"
#include "base/date.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imapc_resp r = {0};
    const char *p = (const char *)data, *end = p + size;
    const char *nul = memchr(p, '\0', size);
    r.text = slice_make(p, nul ? (size_t)(nul - p) : size);
    while (nul && r.n_lits < IMAPC_LITERALS_MAX) {
        p = nul + 1;
        nul = memchr(p, '\0', (size_t)(end - p));
        r.lits[r.n_lits++] = slice_make(p, nul ? (size_t)(nul - p) : (size_t)(end - p));
    }
    struct imapc_fetch f = {.keywords = BUF_INIT};
    if (imapc_parse_fetch(&r, &f) && f.has_body) {
        bool inside = false;
        for (size_t i = 0; i < r.n_lits; i++)
            inside |= f.body.ptr >= r.lits[i].ptr &&
                      f.body.ptr + f.body.len <= r.lits[i].ptr + r.lits[i].len;
        if (!inside)
            abort();
    }
    buf_free(&f.keywords);
    struct buf name = BUF_INIT;
    char delim;
    bool noselect;
    imapc_parse_list(&r, "LIST", &name, &delim, &noselect);
    buf_free(&name);
    uint32_t n;
    imapc_parse_exists(&r, &n);
    imapc_parse_code_number(&r, "UIDVALIDITY", &n);
    struct slice text;
    imapc_parse_tagged(&r, "W1", &text);
    int64_t t;
    date_imap_parse(r.text, &t);
    return 0;
}
