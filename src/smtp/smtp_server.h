/*
 * smtp_server.h - one smtp worker's shared state and the session entry
 * points the component registers with the net layer.
 */
#ifndef WHARF_SMTP_SMTP_SERVER_H
#define WHARF_SMTP_SMTP_SERVER_H

#include "net/net.h"
#include "smtp/smtp_checks.h"
#include "smtp/smtp_commit.h"
#include "net/dotread.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_policy.h"

enum smtp_service_kind {
    SMTP_SERVICE_MX,         /* 25: mail for our domains, relay only for trusted clients */
    SMTP_SERVICE_SUBMISSION, /* 587: STARTTLS, then AUTH required */
    SMTP_SERVICE_SMTPS,      /* 465: implicit TLS, AUTH required */
};

struct smtp_server {
    struct net_worker *w;
    const struct wharf_config *cfg;
    struct smtp_policy *policy;
    struct smtp_commit *commit;
    struct smtp_checks *checks; /* after end of data, before the answer (port 25) */
    struct auth_client *auth;
    struct dotread_limits limits;
    uint64_t sessions, queued, rejected;
};

struct smtp_service {
    struct smtp_server *srv;
    enum smtp_service_kind kind;
};

extern const struct net_proto smtp_session_proto;

#endif
