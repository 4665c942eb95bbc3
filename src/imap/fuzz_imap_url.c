/*
 * fuzz_imap_url.c - libFuzzer target for the IMAP URL parser (imap_url.c):
 * whatever it accepts has a UID, a mailbox that is valid UTF-8 without
 * control bytes, and a section (when any) without control bytes; nothing is
 * read past the input (ASan) and nothing leaks.
 */
#include "base/alloc.h"
#include "imap/imap_url.h"
#include "mime/mutf7.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_controls(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes: ASan sees any read past it */
    char *copy = xmemdup(data, size ? size : 1);
    struct imap_url u;
    if (imap_url_parse(slice_make(copy, size), "mail.example.test", "alice@example.test", &u)) {
        if (u.uid == 0 || u.mailbox == NULL || !mutf7_utf8_valid(slice_from_cstr(u.mailbox)))
            __builtin_trap();
        no_controls(u.mailbox);
        if (u.section != NULL)
            no_controls(u.section);
    } else if (u.mailbox != NULL || u.section != NULL) {
        __builtin_trap(); /* a refused URL leaves nothing behind */
    }
    imap_url_free(&u);
    free(copy);
    return 0;
}
