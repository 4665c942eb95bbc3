/*
 * mta_component.c - how wharfd knows the mta component.
 */
#include "mta/mta.h"
#include "net/net.h"

/* What mta_out_new would refuse at start, said by `wharf config check` and before
 * wharfd starts or reloads. */
static int mta_check_config(const struct wharf_config *cfg, struct buf *err)
{
    return net_addr_source_list_check(&cfg->mta_source_address, "mta_source_address", err) ? 0 : -1;
}

const struct component_def mta_component = {
    .name = "mta",
    .exchange_name = "Message Transfer Agent",
    .kind = COMPONENT_SINGLETON,
    .main = mta_main,
    .job = "queue, categorize, route, deliver, retry, bounce",
    .check_config = mta_check_config,
};
