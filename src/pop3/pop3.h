/*
 * pop3.h - the pop3 component (POP3): mailbox download over POP3.
 */
#ifndef WHARF_POP3_POP3_H
#define WHARF_POP3_POP3_H

#include "base/component.h"

extern const struct component_def pop3_component;

#endif
