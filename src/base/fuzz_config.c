/*
 * fuzz_config.c - libFuzzer target for the wharf.conf parser: any text is
 * either loaded or refused with "file:line: message"; never a crash, a leak
 * or an error without a line number.
 */
#include "base/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* the file reader refuses NUL bytes before the parser sees them */
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    config_init(&cfg);
    if (config_load_string(&cfg, "f.conf", text, &err) != 0) {
        if (strncmp(buf_cstr(&err), "f.conf:", 7) != 0)
            abort();
    } else {
        /* Whatever loaded formats back to text that loads again. */
        struct buf dump = BUF_INIT;
        for (size_t i = 0; i < OPTID__COUNT; i++) {
            buf_printf(&dump, "%s = ", config_options[i].name);
            config_format_value(&cfg, &config_options[i], &dump);
            buf_append_byte(&dump, '\n');
        }
        struct wharf_config again;
        config_init(&again);
        buf_reset(&err);
        if (config_load_string(&again, "dump", buf_cstr(&dump), &err) != 0)
            abort();
        config_free(&again);
        buf_free(&dump);
        config_finalize(&cfg, &err);
    }
    config_free(&cfg);
    buf_free(&err);
    free(text);
    return 0;
}
