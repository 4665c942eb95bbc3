/*
 * fuzz_tlsrpt.c - libFuzzer target: a `_smtp._tls` TXT record (from the
 * recipient domain's DNS) through the TLS-RPT record parser, and the same
 * bytes as a records file through the report builder. Must never crash,
 * read out of bounds or leak; every address taken has one '@' with text on
 * both sides, every https: URI a host, a port and a path starting with '/', and a report built is
 * JSON that parses.
 */
#include "mta/mta_tlsrpt.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): NDEBUG (the release build) would leave what it checks unused. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *txt = malloc(size + 1);
    memcpy(txt, data, size);
    txt[size] = '\0';
    struct mta_tlsrpt_rua rua[4];
    size_t n;
    if (mta_tlsrpt_txt_parse(txt, rua, 4, &n)) {
        CHECK(n <= 4);
        for (size_t i = 0; i < n; i++) {
            if (rua[i].https) {
                CHECK(rua[i].host[0] != '\0' && rua[i].port != 0 && rua[i].path[0] == '/');
                CHECK(strpbrk(rua[i].path, " \t\r\n") == NULL);
                continue;
            }
            const char *at = strchr(rua[i].to, '@');
            CHECK(at != NULL && at != rua[i].to && at[1] != '\0');
        }
    }
    free(txt);
    struct slice in = slice_make(data, size);
    struct buf out = BUF_INIT;
    /* the first field of the first line is the domain asked for */
    char dom[64] = "";
    size_t dl = 0;
    while (dl < size && data[dl] != '\t' && data[dl] != '\n' && data[dl] != '\0')
        dl++;
    if (dl < size && dl < sizeof(dom)) {
        memcpy(dom, data, dl);
        dom[dl] = '\0';
    }
    if (mta_tlsrpt_report_json(in, dom[0] ? dom : "example.org", "mx.example", "id", 0, 1, &out)) {
        json_error_t e;
        json_t *j = json_loadb(out.data, out.len, 0, &e);
        CHECK(j != NULL);
        json_decref(j);
    }
    buf_free(&out);
    return 0;
}
