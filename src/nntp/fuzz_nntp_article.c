/*
 * fuzz_nntp_article.c - libFuzzer target: the header checks of a posted
 * article. Every slice handed back lies inside the article, the header
 * length within it, and each name of a checked Newsgroups is a valid name.
 * The same bytes as a stored article read by a reader: its split lies
 * inside it, the header a reader gets carries no Xref but the server's, and
 * :bytes counts at least what is sent.
 */
#include "nntp/nntp_article.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(struct slice a, struct slice s)
{
    if (s.ptr && (s.ptr < a.ptr || s.ptr + s.len > a.ptr + a.len))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice a = slice_make(data, size);
    struct nntp_article_info info;
    const char *why;
    bool ok = nntp_article_check(a, size & 1, &info, &why);
    if (info.header_len > a.len)
        __builtin_trap();
    inside(a, info.from);
    inside(a, info.newsgroups);
    inside(a, info.subject);
    inside(a, info.message_id);
    inside(a, info.date);
    inside(a, info.path);
    if (ok) {
        struct slice rest = info.newsgroups, g;
        size_t n = 0;
        while (nntp_newsgroups_next(&rest, &g)) {
            inside(a, g);
            if (!nntp_group_name_valid(g))
                __builtin_trap();
            n++;
        }
        if (n == 0)
            __builtin_trap();
    }
    if (info.path.ptr)
        (void)nntp_path_has(info.path, slice_make("wharf.example", 13));
    inside(a, nntp_header_field(slice_make(a.ptr, info.header_len), "Subject"));

    size_t hlen, body;
    nntp_article_split(a, &hlen, &body);
    if (hlen > body || body > a.len || (body != hlen && body != hlen + 2))
        __builtin_trap();
    struct slice header = slice_make(a.ptr, hlen), rest = slice_make(a.ptr + hlen, a.len - hlen);
    struct buf h = BUF_INIT;
    nntp_article_reader_header(header, "wharf.example", (size & 2) ? "comp.x" : NULL,
                               (size & 4) ? slice_make("wharf.example comp.x:1", 22) : SLICE_NULL,
                               &h);
    struct slice xref = nntp_header_field(buf_slice(&h), "Xref");
    if ((size & 4) ? !slice_eq(xref, slice_make("wharf.example comp.x:1", 22)) : xref.ptr != NULL)
        __builtin_trap();
    size_t bytes = nntp_article_bytes(buf_slice(&h), rest);
    if (bytes < h.len + rest.len || bytes > h.len + rest.len + 2)
        __builtin_trap();
    buf_free(&h);
    return 0;
}
