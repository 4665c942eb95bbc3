/*
 * test_home_stub.c - for the mta's unit tests that link local.c against a
 * stub directory: the front-end hooks local_home_elsewhere calls, saying
 * "no front-end here", so every account is homed on this server.
 * Must never be linked into anything but those tests.
 */
#include "directory/directory.h"
#include "net/net_proxy.h"

/* Front-ends (local_home_elsewhere): this stub directory belongs to none. */
const struct wharf_config *directory_config(const struct directory *d)
{
    (void)d;
    return NULL;
}

int directory_account_info(struct directory *d, const char *account, uint64_t *bytes_r,
                           uint64_t *messages_r, struct buf *home_r, struct buf *err)
{
    (void)d, (void)account, (void)bytes_r, (void)messages_r, (void)home_r, (void)err;
    return 0;
}

bool net_proxy_is_frontend(const struct wharf_config *cfg)
{
    (void)cfg;
    return false;
}

bool net_proxy_home_is_here(const struct wharf_config *cfg, const char *home)
{
    (void)cfg, (void)home;
    return true;
}
