/*
 * fuzz_mailfmt.c - libFuzzer target: arbitrary bytes as an mbox "From " line,
 * a mboxrd body line, Status:/X-Status: values, a Maildir file name and
 * folder, and Dovecot's uidlist and keywords lines. Checks the round trips
 * import and export rely on (a flag set written and read back is the same;
 * a quoted line unquotes to itself). Must never write to the input.
 */
#include "mime/mailfmt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice in = slice_make(data, size);
    struct buf out = BUF_INIT;
    struct slice sender;
    int64_t date;
    if (mailfmt_mbox_from_parse(in, &sender, &date)) {
        if (sender.len > size ||
            (sender.len && (sender.ptr < (const char *)data ||
                            sender.ptr + sender.len > (const char *)data + size)))
            abort();
        mailfmt_mbox_from_format(&out, sender, date);
        /* what we write is a separator line again */
        struct slice s2;
        int64_t d2;
        if (!mailfmt_mbox_from_parse(slice_make(out.data, out.len - 1), &s2, &d2))
            abort();
    }
    struct slice u = mailfmt_mbox_unquote(in);
    if (u.len != size && !(u.len + 1 == size && data[0] == '>'))
        abort();
    if (mailfmt_mbox_quoted(in)) {
        buf_reset(&out);
        buf_append_byte(&out, '>');
        buf_append_slice(&out, in);
        struct slice back = mailfmt_mbox_unquote(buf_slice(&out));
        if (back.len != size || memcmp(back.ptr, data, size) != 0)
            abort();
    }
    size_t half = size / 2;
    unsigned f =
        mailfmt_mbox_status_flags(slice_make(data, half), slice_make(data + half, size - half));
    buf_reset(&out);
    mailfmt_mbox_status_format(&out, f);
    struct mailfmt_maildir_name n;
    if (mailfmt_maildir_name_parse(in, &n)) {
        buf_reset(&out);
        buf_append_slice(&out, n.base);
        mailfmt_maildir_info_format(&out, n.flags, n.keywords);
        struct mailfmt_maildir_name n2;
        if (!mailfmt_maildir_name_parse(buf_slice(&out), &n2) || n2.flags != n.flags ||
            n2.keywords != n.keywords)
            abort();
    }
    uint32_t a, b;
    struct slice base, name;
    unsigned idx;
    mailfmt_uidlist_header(in, &a, &b);
    mailfmt_mbox_imapbase(in, &a, &b);
    mailfmt_mbox_uid(in, &a);
    mailfmt_uidlist_record(in, &a, &base);
    if (mailfmt_keywords_line(in, &idx, &name) && idx >= MAILFMT_KEYWORDS_MAX)
        abort();
    mailfmt_maildir_folder(in, '.', &out);
    buf_free(&out);
    return 0;
}
