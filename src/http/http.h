/*
 * http.h - the http component (Outlook Web Access): webmail, JMAP API, admin API, /metrics.
 */
#ifndef WHARF_HTTP_HTTP_H
#define WHARF_HTTP_HTTP_H

#include "base/component.h"

extern const struct component_def http_component;

#endif
