/*
 * smtp_component.c - how wharfd knows the smtp component.
 */
#include "smtp/smtp.h"

const struct component_def smtp_component = {
    .name = "smtp",
    .exchange_name = "SMTP",
    .kind = COMPONENT_WORKERS,
    .main = NULL, /* not built yet */
    .job = "receive mail: MX on 25, submission with AUTH on 587 and 465",
};
