/*
 * fuzz_imap_command.c - libFuzzer target for the IMAP command reader and
 * argument parser: the input is fed in two uneven pieces (resumability),
 * every complete command is parsed, every argument must lie inside it, and
 * every atom and string is tried as a sequence set, a BINARY section, a
 * Subject (base subject extraction, which must only shrink it), ACL rights
 * (which must survive being written and read again), a mailbox name in the
 * namespaces (split into owner and name, which must give the name back) and
 * a mailbox name in modified UTF-7 and in UTF-8 (each must survive the round
 * trip through the other unchanged: one spelling per name).
 */
#include "base/alloc.h"
#include "imap/imap_int.h"
#include "imap/imap_sort.h"
#include "mime/mime.h"
#include "mime/mutf7.h"

#include <strings.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_utf7(struct slice s)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    if (mutf7_decode(s, &a)) {
        if (!mutf7_utf8_valid(buf_slice(&a)) || !mutf7_encode(buf_slice(&a), &b) ||
            !slice_eq(buf_slice(&b), s))
            __builtin_trap();
    }
    buf_reset(&a);
    buf_reset(&b);
    if (mutf7_encode(s, &a)) {
        if (!mutf7_decode(buf_slice(&a), &b) || !slice_eq(buf_slice(&b), s))
            __builtin_trap();
    }
    buf_free(&a);
    buf_free(&b);
    if (mutf7_net_unicode(s) && !mutf7_utf8_valid(s))
        __builtin_trap();
}

static void check_acl(struct slice text)
{
    unsigned bits;
    if (imap_rights_parse(text, &bits)) {
        struct buf b = BUF_INIT;
        unsigned again;
        imap_rights_write(&b, bits, false); /* "d" read back would add x t e */
        if (bits > IMAP_RIGHTS_ALL ||
            (bits != 0 && (!imap_rights_parse(slice_make(b.data, b.len), &again) || again != bits)))
            __builtin_trap();
        buf_free(&b);
    }
    if (memchr(text.ptr, '\0', text.len) != NULL)
        return; /* imap_mailbox_arg refuses those */
    char *name = slice_strdup(text), *owner, *mailbox;
    imap_ns_split("me@example.test", name, &owner, &mailbox);
    if (mailbox != NULL) {
        char *back = imap_ns_name("me@example.test", owner, mailbox);
        if (strcasecmp(back, name) != 0 && strcmp(owner, "me@example.test") != 0)
            __builtin_trap();
        free(back);
    }
    free(owner);
    free(mailbox);
    free(name);
}

static void check_args(const struct imap_arg *v, size_t n, const char *lo, const char *hi)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].type == IMAP_ARG_LIST) {
            check_args(v[i].list, v[i].n_list, lo, hi);
            continue;
        }
        if (v[i].str.len > 0 && (v[i].str.ptr < lo || v[i].str.ptr + v[i].str.len > hi))
            __builtin_trap();
        struct imap_seqset set;
        if (imap_seqset_parse(v[i].str, &set)) {
            if (set.n == 0)
                __builtin_trap();
            (void)imap_seqset_contains(&set, 7, 10);
            imap_seqset_free(&set);
        }
        (void)imap_binary_spec_valid(v[i].str);
        struct buf base = BUF_INIT;
        (void)mime_base_subject(v[i].str, &base);
        if (memchr(v[i].str.ptr, '=', v[i].str.len) == NULL && base.len > v[i].str.len)
            __builtin_trap(); /* without encoded words the base subject only shrinks */
        buf_free(&base);
        check_utf7(v[i].str);
        check_acl(v[i].str);
    }
}

static void run(struct imap_reader *r, const char *p, size_t len)
{
    while (len > 0) {
        enum imap_read_result res;
        size_t used = imap_reader_feed(r, p, len, &res);
        if (used > len)
            __builtin_trap();
        p += used;
        len -= used;
        if (res == IMAP_READ_COMMAND) {
            struct slice c = imap_reader_command(r);
            char *copy = malloc(c.len + 1);
            memcpy(copy, c.ptr, c.len);
            struct imap_command cmd;
            const char *err;
            if (imap_parse_command(copy, c.len, &cmd, &err)) {
                check_args(cmd.args, cmd.n_args, copy, copy + c.len);
                imap_command_free(&cmd);
            } else if (err == NULL || cmd.tag.ptr == NULL) {
                __builtin_trap();
            }
            free(copy);
        } else if (res == IMAP_READ_NEED_MORE && len > 0) {
            __builtin_trap();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imap_reader r;
    imap_reader_init(&r, 256, 4096);
    size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    run(&r, (const char *)data, cut);
    run(&r, (const char *)data + cut, size - cut);
    imap_reader_free(&r);
    return 0;
}
