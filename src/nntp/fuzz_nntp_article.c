/*
 * fuzz_nntp_article.c - libFuzzer target: the header checks of a posted
 * article. Every slice handed back lies inside the article, the header
 * length within it, and each name of a checked Newsgroups is a valid name.
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
    return 0;
}
