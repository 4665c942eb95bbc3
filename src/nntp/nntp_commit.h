/*
 * nntp_commit.h - group commit of the articles an nntp worker takes (POST,
 * IHAVE, TAKETHIS): every article finished while the previous batch was
 * being made durable goes to the store in ONE store_deliver (one blob
 * fdatasync, one commit), on a writer thread with a store handle of its
 * own (base/offload.h), whatever connection it came on. The writer also
 * checks each article's groups and posting rights just before (its handle's
 * page cache is the one a commit keeps; the store refuses a Message-ID it
 * holds inside the commit), and keeps the groups and rights it read until
 * another handle commits (store_data_version). Each article's
 * callback runs on the loop after the commit that holds it, so that a
 * 240/235/239 is only ever written for a committed article. The other
 * processes are told once per commit and group (IPC_EVENT_MAILBOX_CHANGED),
 * not once per article.
 * Must never: call back before the batch's commit returned, touch a session
 * from the writer thread, or store an article of a history twice (the
 * deliveries are unique_msgid).
 */
#ifndef WHARF_NNTP_NNTP_COMMIT_H
#define WHARF_NNTP_NNTP_COMMIT_H

#include "base/buf.h"
#include "net/net.h"
#include "store/store.h"

struct nntp_commit;
struct nntp_commit_job;

/* On the loop, once the job's batch is committed (or failed); job is freed after. */
typedef void (*nntp_commit_cb)(void *arg, const struct nntp_commit_job *job);

/* What the callback reads. */
struct nntp_commit_job {
    struct buf data;        /* the article as stored */
    struct store_target *t; /* one per group it went to, #public; statuses set */
    size_t n;
    char *refused; /* why the groups or rights refused it (nothing stored); NULL: not */
    bool failed;   /* the checks or the batch could not be made: nothing of it is stored */
};

/* Starts the writer thread with its own store. NULL with err on failure. */
struct nntp_commit *nntp_commit_new(struct net_worker *w, const struct wharf_config *cfg,
                                    struct buf *err);
/* Finishes what was submitted (callbacks run), then stops. */
void nntp_commit_free(struct nntp_commit *c);
/* Queues article data (taken: reset here) for the groups of its Newsgroups field
 * (nntp_article_groups: transit for a peer's article, user the poster's account or
 * NULL); log: what the log line starts with ("POST: user=<...>, rip=..."). */
struct nntp_commit_job *nntp_commit_submit(struct nntp_commit *c, struct buf *data,
                                           struct slice newsgroups, bool transit, const char *user,
                                           const char *log, nntp_commit_cb cb, void *arg);
/* The session went: the article is still committed (and its groups told), cb is not run. */
void nntp_commit_cancel(struct nntp_commit_job *job);

#endif
