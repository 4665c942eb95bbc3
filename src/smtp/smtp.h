/*
 * smtp.h - the smtp component (SMTP): receive mail: MX on 25, submission with AUTH on 587 and 465.
 */
#ifndef WHARF_SMTP_SMTP_H
#define WHARF_SMTP_SMTP_H

#include "base/component.h"

extern const struct component_def smtp_component;

#endif
