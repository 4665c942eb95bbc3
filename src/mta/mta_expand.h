/*
 * mta_expand.h - the categorizer: an alias that forwards to other domains is
 * replaced in the spool entry by its expansion, before anything is
 * delivered to it.
 *
 * Postfix's virtual_alias_maps and Exchange's categorizer do this once, when
 * the message enters the queue manager: from then on every expanded
 * recipient has a state of its own, so a local account reached by the alias
 * is delivered once and its remote targets go through the outbound path
 * (retries, bounces, `wharf mailq`) like any remote recipient. The caller
 * writes the entry (spool_update_rcpts) before it delivers anything; a crash
 * in between leaves the entry as it was, or expanded: either way nothing is
 * lost, and the store's (queue id, account) dedupe keeps a local delivery
 * single. Aliases whose targets are all local are left alone: local delivery
 * stores them in one transaction, so there is nothing to record.
 *
 * Never expands an entry past MTA_EXPAND_RCPTS_MAX recipients, never
 * expands a recipient twice, and never adds an address the entry already
 * holds.
 */
#ifndef WHARF_MTA_EXPAND_H
#define WHARF_MTA_EXPAND_H

#include "directory/directory.h"
#include "spool/spool.h"

#include <stddef.h>

/*
 * Most recipients one spool entry may hold after expansion. One recipient
 * expands to at most directory_alias_max_targets addresses, but a message
 * may name many aliases; the entry is read, rewritten and sent whole, so its
 * size is bounded too. An expansion that would pass it is not made (a
 * warning is logged): local delivery stores the alias's accounts and keeps
 * the recipient pending, so no mail is lost.
 */
#define MTA_EXPAND_RCPTS_MAX 10000

/*
 * Expands the pending recipients of sm that are aliases forwarding to
 * another domain (directory_resolve: n_remote > 0) or, on a front-end (or a
 * back-end with frontend_secret), naming an account homed on another server
 * (local_home_elsewhere). Each becomes SPOOL_RCPT_EXPANDED and is followed,
 * at the end of the list, by its local accounts (account = true, with their
 * folder; an account homed elsewhere as a plain address, which local
 * delivery hands to the mta for its home server) and its remote addresses,
 * each with ORCPT = the alias's own ORCPT or "rfc822;ALIAS" and the alias's
 * NOTIFY. Addresses the entry already holds are not added again. A
 * recipient the directory cannot resolve now is left as it is (local
 * delivery defers it). Returns how many recipients were expanded: when it is
 * more than 0, sm must be written before any of them is delivered.
 */
size_t mta_expand(struct directory *d, struct spool_message *sm);

/* The address inside an ORCPT "type;address" (for orig_to= in logs). */
const char *mta_expand_orig_to(const char *orcpt);

#endif
