/*
 * imap_session.h - the IMAP protocol on one connection (RFC 9051, RFC 3501),
 * on top of the network layer (net/net.h).
 */
#ifndef WHARF_IMAP_IMAP_SESSION_H
#define WHARF_IMAP_IMAP_SESSION_H

#include "base/buf.h"
#include "net/net.h"

struct imap_server;

extern const struct net_proto imap_proto;

/* The worker's event-bus callback (IPC_EVENT_MAILBOX_CHANGED wakes IDLE sessions). */
void imap_server_event(void *arg, const struct ipc_event *ev);

#endif
