/*
 * fuzz_org_config.c - libFuzzer target for the organization configuration
 * record (org.h): the record parser with a fixed key, and the validator on
 * whatever JSON object the input is. Neither may crash, leak or accept a
 * record whose MAC does not verify; a record it accepts is signed again and
 * must parse to the same MAC.
 */
#include "routing/org.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char key[ORG_KEY_LEN];
    memset(key, 0x5a, sizeof(key));
    struct buf err = BUF_INIT, out = BUF_INIT;
    struct org_config oc, again, made;
    if (org_record_parse((const char *)data, size, key, &oc, &err)) {
        if (!org_record_make(oc.cfg, key, &out, &made, &err) ||
            !org_record_parse(out.data, out.len, key, &again, &err) ||
            strcmp(again.mac, oc.mac) != 0 || again.serial != oc.serial)
            abort();
        org_config_free(&again);
        org_config_free(&made);
        org_config_free(&oc);
    }
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (j) {
        buf_reset(&err);
        (void)org_config_validate(j, &err);
        json_decref(j);
    }
    buf_free(&err);
    buf_free(&out);
    return 0;
}
