/*
 * nntp.h - the nntp component (NNTP): public folders as newsgroups; feeds to other news servers.
 */
#ifndef WHARF_NNTP_NNTP_H
#define WHARF_NNTP_NNTP_H

#include "base/component.h"

extern const struct component_def nntp_component;
/* The outbound feeds (nntp_feed.c): one process for the server. */
extern const struct component_def nntpfeed_component;

#endif
