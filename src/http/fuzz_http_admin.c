/*
 * fuzz_http_admin.c - libFuzzer target for the admin API's request decoder
 * (http_admin_request): the input is "PATH\nQUERY\nBODY", as a client
 * controls all three; a result must be an object whose path is an array of
 * strings, and a refusal must say why with 400 or 413.
 */
#include "http/http_admin.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *nl1 = memchr(p, '\n', size);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
    if (nl2 == NULL)
        return 0;
    char *path = strndup(p, (size_t)(nl1 - p));
    char *query = strndup(nl1 + 1, (size_t)(nl2 - nl1 - 1));
    int status = 0;
    const char *why = NULL;
    json_t *r = http_admin_request("admin@example.org", "POST", path, query,
                                   slice_make(nl2 + 1, (size_t)(end - nl2 - 1)), &status, &why);
    if (r == NULL && (why == NULL || (status != 400 && status != 413)))
        __builtin_trap();
    if (r != NULL) {
        size_t i;
        json_t *seg;
        if (!json_is_array(json_object_get(r, "path")))
            __builtin_trap();
        json_array_foreach(json_object_get(r, "path"), i, seg)
        {
            if (!json_is_string(seg) || json_string_length(seg) == 0)
                __builtin_trap();
        }
        json_decref(r);
    }
    free(path);
    free(query);
    return 0;
}
