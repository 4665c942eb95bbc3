/*
 * fuzz_jmap_request.c - libFuzzer target: a JMAP API request body from an
 * authenticated client, through the whole engine (jmap_api: size check,
 * I-JSON decode, Request shape, back-references and every method's argument
 * checks) on a temporary store. Must never crash, leak or answer anything
 * but a Response (200) or a problem object (400).
 */
#include "http/jmap.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store *fuzz_store;

static void close_store(void)
{
    store_close(fuzz_store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_store == NULL) {
        struct buf err = BUF_INIT;
        fuzz_store = store_open_temporary(&err);
        buf_free(&err);
        if (fuzz_store == NULL)
            abort();
        atexit(close_store);
    }
    struct jmap j = {.store = fuzz_store, .hostname = "fuzz.example"};
    jmap_limits_from_config(&j.limits, NULL);
    json_t *out = NULL;
    int status = 0;
    jmap_api(&j, "fuzz@example.test", (const char *)data, size, &out, &status);
    if (out == NULL || (status != 200 && status != 400))
        abort();
    json_decref(out);
    jmap_release(&j);
    return 0;
}
