/*
 * fuzz_mailbox_name.c - libFuzzer target: a client-chosen mailbox name
 * through create, rename, get and delete (name checks, canonical INBOX,
 * prepared statements). Must never crash; a name the store accepted must be
 * found again under the same spelling.
 */
#include "store/store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    if (memchr(data, '\0', size))
        return 0;
    char *name = strndup((const char *)data, size);
    struct buf err = BUF_INIT;
    if (store_mailbox_create(fuzz_store, "fuzz@example.test", name, NULL, &err) == 0) {
        struct store_mailbox mb;
        if (store_mailbox_get(fuzz_store, "fuzz@example.test", name, &mb, &err) != 0)
            __builtin_trap();
        store_mailbox_free(&mb);
        struct buf to = BUF_INIT;
        buf_printf(&to, "%s/x", name);
        store_mailbox_rename(fuzz_store, "fuzz@example.test", name, to.data, &err);
        store_mailbox_delete(fuzz_store, "fuzz@example.test", to.data, &err);
        store_mailbox_delete(fuzz_store, "fuzz@example.test", name, &err);
        buf_free(&to);
    }
    buf_free(&err);
    free(name);
    return 0;
}
