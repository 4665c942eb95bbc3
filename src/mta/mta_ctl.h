/*
 * mta_ctl.h - the bus event by which `wharf queue` asks the running mta to
 * change queue entries (the mta is their only writer while wharfd runs).
 *
 * Payload: "ACTION ID" or "ACTION ALL", ACTION one of flush, hold, release,
 * requeue, delete. The mta checks both words; it must never act on a queue
 * id that is not a valid spool id.
 */
#ifndef WHARF_MTA_MTA_CTL_H
#define WHARF_MTA_MTA_CTL_H

#define MTA_EVENT_QUEUE_CTL "queue-ctl"
#define MTA_CTL_ALL "ALL"

#endif
