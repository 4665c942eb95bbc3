/*
 * imap_notify.h - NOTIFY (RFC 5465, imap_notify.c): the command and the
 * entry points the session's event handling calls.
 * Must never: be included outside src/imap.
 */
#ifndef WHARF_IMAP_IMAP_NOTIFY_H
#define WHARF_IMAP_IMAP_NOTIFY_H

#include "imap/imap_int.h"

/* NOTIFY SET [STATUS] (mailboxes events) ... / NOTIFY NONE. */
imap_handler imap_cmd_notify;
void imap_notify_free(struct imap_session *s);
/*
 * The selected mailbox changed (another session, a delivery): false when
 * NOTIFY is not in use (the caller keeps IDLE's behaviour); else the
 * session was told what NOTIFY asks for, now.
 */
bool imap_notify_selected_changed(struct imap_session *s);
/* Another mailbox of owner changed: a STATUS when the session watches it. */
void imap_notify_mailbox_changed(struct imap_session *s, const char *owner, const char *mailbox);
/*
 * s created, deleted, renamed (old: the former name), subscribed or
 * unsubscribed owner's mailbox name: the other sessions here and, through
 * the bus, in other processes hear of it (MailboxName, SubscriptionChange).
 */
void imap_notify_list_changed(struct imap_session *s, enum ipc_mailbox_list_change change,
                              const char *owner, const char *name, const char *old);
/* An IPC_EVENT_MAILBOX_LIST from the bus. */
void imap_notify_list_event(struct imap_server *srv, const struct ipc_event_mailbox_list *ev);

#endif
