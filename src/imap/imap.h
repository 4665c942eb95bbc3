/*
 * imap.h - the imap component (IMAP4): mailbox access over IMAP4rev2/rev1.
 */
#ifndef WHARF_IMAP_IMAP_H
#define WHARF_IMAP_IMAP_H

#include "base/component.h"

extern const struct component_def imap_component;

#endif
