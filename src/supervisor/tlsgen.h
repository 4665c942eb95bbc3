/*
 * tlsgen.h - the self-signed certificate made at first start.
 */
#ifndef WHARF_SUPERVISOR_TLSGEN_H
#define WHARF_SUPERVISOR_TLSGEN_H

#include "base/buf.h"
#include "base/config.h"

/*
 * Makes sure tls_cert_file and tls_key_file exist. When both are missing and
 * both are left at their defaults (DATA/tls/), generates an EC P-256 key
 * (mode 0600) and a self-signed certificate whose subject alternative name is
 * myhostname. Returns 0, or -1 with err (a configured file that is missing is
 * an error, never silently replaced).
 */
int tlsgen_ensure(const struct wharf_config *cfg, struct buf *err);

#endif
