/*
 * fuzz_maildrop.c - libFuzzer target: a maildrop file as the pickup reads it
 * (the decoder, then the checks and the spool entry made of it). A file is
 * written by any local user, so every byte is hostile. Must never crash,
 * read out of bounds or leak; a file it accepts encodes to the same bytes,
 * and an entry it makes starts with Wharf's own Received: line.
 */
#include "mta/mta_pickup.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wharf_config cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        struct buf err = BUF_INIT;
        config_init(&cfg);
        /* small limits, so the fuzzer reaches them */
        if (config_set(&cfg, "myhostname", "mx.example.test", "fuzz", &err) != 0 ||
            config_set(&cfg, "smtp_max_recipients", "4", "fuzz", &err) != 0 ||
            config_set(&cfg, "smtp_max_message_size", "4k", "fuzz", &err) != 0 ||
            config_set(&cfg, "smtp_max_data_line_length", "1000", "fuzz", &err) != 0 ||
            config_set(&cfg, "smtp_max_header_size", "1k", "fuzz", &err) != 0 ||
            config_finalize(&cfg, &err) != 0)
            abort();
        buf_free(&err);
        ready = true;
    }
    struct maildrop_limits lim;
    maildrop_limits_from_config(&lim, &cfg);
    struct maildrop_entry e;
    const char *why = NULL;
    if (maildrop_decode(data, size, &lim, &e, &why) != 0) {
        if (why == NULL)
            __builtin_trap();
        return 0;
    }
    struct buf again = BUF_INIT;
    maildrop_encode(&e, &again);
    if (again.len != size || memcmp(again.data, data, size) != 0)
        __builtin_trap();
    buf_free(&again);
    const struct mta_pickup_origin o = {.uid = e.uid, .user = e.uid ? "user" : NULL, .arrival = 1};
    struct spool_message sm;
    bool sender_set;
    if (mta_pickup_convert(&cfg, "0000000000000000000000Am1", &e, &o, &sm, &sender_set, &why) ==
        MTA_PICKUP_OK) {
        if (sm.env.n_rcpts != e.n_rcpts || strncmp(sm.data.data, "Received: by ", 13) != 0 ||
            mta_pickup_check(&cfg, &e, &why) != MTA_PICKUP_OK)
            __builtin_trap();
        spool_message_free(&sm);
    }
    maildrop_entry_free(&e);
    return 0;
}
