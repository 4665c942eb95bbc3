/*
 * directory.h - the directory component (Active Directory Connector): accounts and home servers from LDAP.
 */
#ifndef WHARF_DIRECTORY_DIRECTORY_H
#define WHARF_DIRECTORY_DIRECTORY_H

#include "base/component.h"

extern const struct component_def directory_component;

#endif
