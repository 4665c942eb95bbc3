/*
 * sq_schema.c - the SQLite store driver's schema and its migrations.
 *
 * PRAGMA user_version is the schema version; migrations[i] brings a
 * database from version i to i + 1, each in its own transaction. Never edit
 * a released migration: add the next one.
 */
#include "store/sqlite/sq_schema.h"
#include "store/sqlite/sq_int.h"

#include <stddef.h>

/*
 * 13 -> 14 (issue 13, JMAP threads, RFC 8621 3): the thread of each message row
 * (messages.thread, the same for every copy of a body in an account) and
 * the msg-ids that lead to a thread with the base subject its messages
 * share (thread_ids; sq_thread.c). threads_touched records the threads a
 * copy left (expunge, move, destroy), at a fresh account state of its
 * own, for Thread/changes. The messages already stored get their threads
 * from sq_thread_backfill, run in the same transaction right after this
 * step (sq_schema_after), so the step stays one self-contained entry.
 */
/* see the list below (14 -> 15); the readers name the column from then on */
static const char migration_blob_body[] = "ALTER TABLE blobs ADD COLUMN body BLOB;";

/* see the list below (17 -> 18); from then on the bodies kept in the database are
 * in blob_bodies, named by blobs.offset, and blobs.body is NULL */
static const char migration_blob_rows[] =
    "CREATE TABLE blob_bodies(id INTEGER PRIMARY KEY, body BLOB NOT NULL);"
    "CREATE TEMP TABLE blob_move(hash TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO blob_move SELECT hash, row_number() OVER (ORDER BY hash) FROM blobs"
    "  WHERE segment < 0;"
    "INSERT INTO blob_bodies(id, body) SELECT m.n, COALESCE(b.body, X'') FROM blob_move m"
    "  JOIN blobs b ON b.hash = m.hash;"
    "UPDATE blobs SET offset = (SELECT m.n FROM blob_move m WHERE m.hash = blobs.hash),"
    "  body = NULL WHERE segment < 0;"
    "DROP TABLE blob_move;"
    "CREATE TRIGGER blob_bodies_delete AFTER DELETE ON blobs WHEN OLD.segment < 0 BEGIN"
    "  DELETE FROM blob_bodies WHERE id = OLD.offset; END;";

static const char migration_threads[] =
    "ALTER TABLE messages ADD COLUMN thread INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX messages_thread ON messages(thread);"
    "CREATE TABLE thread_ids(owner TEXT NOT NULL, msgid TEXT NOT NULL, subject TEXT NOT NULL,"
    "  thread INTEGER NOT NULL, PRIMARY KEY(owner, msgid, subject)) WITHOUT ROWID;"
    "CREATE TABLE threads_touched(owner TEXT NOT NULL, thread INTEGER NOT NULL,"
    "  state INTEGER NOT NULL, PRIMARY KEY(owner, thread)) WITHOUT ROWID;"
    "INSERT INTO meta VALUES('thread_id_next', 1);"
    "CREATE TRIGGER jmap_thread_delete AFTER DELETE ON messages BEGIN"
    "  UPDATE account_state SET state = state + 1"
    "  WHERE owner = (SELECT owner FROM mailboxes WHERE id = OLD.mailbox_id);"
    "  INSERT OR REPLACE INTO threads_touched SELECT a.owner, OLD.thread, a.state"
    "  FROM account_state a JOIN mailboxes b ON a.owner = b.owner WHERE b.id = OLD.mailbox_id;"
    "  END;";

/*
 * (issue 13, JMAP text query) the full-text index (sq_text.c): one row per
 * body (text_docs: its hash, the index's rowid, whether it has leaf parts
 * that are not text), its decoded fields in the FTS5 table text_index,
 * tokenized in trigrams so that a MATCH of a quoted string of 3 or more
 * characters is a case-insensitive substring search. A body's row goes with
 * its blobs row (the trigger), so a body shared by several messages or
 * accounts is indexed once. Filled lazily, never by delivery: text_marks is
 * each mailbox's highest UID indexed (with its UIDVALIDITY), so the bodies
 * already stored are indexed by the first search or the mta's idle top-up,
 * not by this step.
 */
static const char migration_text_index[] =
    "CREATE TABLE text_docs(id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE,"
    "  other INTEGER NOT NULL);"
    "CREATE INDEX text_docs_other ON text_docs(id) WHERE other;"
    "CREATE VIRTUAL TABLE text_index USING fts5(subject, from_, to_, cc, bcc, header, body,"
    "  tokenize = 'trigram');"
    "CREATE TABLE text_marks(mailbox_id INTEGER PRIMARY KEY, uidvalidity INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL);"
    "CREATE TRIGGER text_blob_delete AFTER DELETE ON blobs BEGIN"
    "  DELETE FROM text_index WHERE rowid = (SELECT id FROM text_docs WHERE hash = OLD.hash);"
    "  DELETE FROM text_docs WHERE hash = OLD.hash; END;"
    "CREATE TRIGGER text_mailbox_delete AFTER DELETE ON mailboxes BEGIN"
    "  DELETE FROM text_marks WHERE mailbox_id = OLD.id; END;";

static const char *const migrations[] = {
    /* 0 -> 1: the first schema */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    /* accounts the store has seen (their default folders exist) */
    "CREATE TABLE accounts(owner TEXT PRIMARY KEY, created INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE mailboxes("
    "  id INTEGER PRIMARY KEY,"
    "  owner TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  special_use TEXT,"
    "  uidvalidity INTEGER NOT NULL,"
    "  uidnext INTEGER NOT NULL,"
    "  highestmodseq INTEGER NOT NULL,"
    "  UNIQUE(owner, name));"
    "CREATE TABLE blobs("
    "  hash TEXT PRIMARY KEY,"
    "  segment INTEGER NOT NULL,"
    "  offset INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  refs INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX blobs_segment ON blobs(segment);"
    "CREATE TABLE messages("
    "  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
    "  uid INTEGER NOT NULL,"
    "  modseq INTEGER NOT NULL,"
    "  flags INTEGER NOT NULL,"
    "  keywords TEXT NOT NULL DEFAULT '',"
    "  internaldate INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  blob TEXT NOT NULL REFERENCES blobs(hash),"
    "  envelope TEXT,"      /* filled by the MIME layer */
    "  bodystructure TEXT," /* idem */
    "  PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
    "CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);"
    "CREATE TABLE expunged("
    "  mailbox_id INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL,"
    "  modseq INTEGER NOT NULL,"
    "  PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
    "CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);"
    "CREATE TABLE quota(owner TEXT PRIMARY KEY, bytes INTEGER NOT NULL,"
    "  messages INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE subscriptions(owner TEXT NOT NULL, name TEXT NOT NULL,"
    "  PRIMARY KEY(owner, name)) WITHOUT ROWID;"
    "CREATE TABLE acl(mailbox_id INTEGER NOT NULL, identifier TEXT NOT NULL,"
    "  rights TEXT NOT NULL, PRIMARY KEY(mailbox_id, identifier)) WITHOUT ROWID;"
    /* exactly-once delivery: (queue id, account) delivered */
    "CREATE TABLE delivered(dedupe_id TEXT NOT NULL, owner TEXT NOT NULL,"
    "  at INTEGER NOT NULL, PRIMARY KEY(dedupe_id, owner)) WITHOUT ROWID;"
    "CREATE INDEX delivered_at ON delivered(at);"
    "INSERT INTO meta VALUES('segment_current', 0);"
    "INSERT INTO meta VALUES('uidvalidity_next', CAST(strftime('%s','now') AS INTEGER));",
    /*
     * 1 -> 2: STATUS and LIST-STATUS counts kept per mailbox by triggers, so
     * that reading them costs one row, not three scans of the messages (a
     * PostgreSQL driver keeps them the same way).
     */
    "ALTER TABLE mailboxes ADD COLUMN n_messages INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE mailboxes ADD COLUMN n_unseen INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE mailboxes ADD COLUMN n_bytes INTEGER NOT NULL DEFAULT 0;"
    "UPDATE mailboxes SET"
    "  n_messages = (SELECT COUNT(*) FROM messages x WHERE x.mailbox_id = mailboxes.id),"
    "  n_unseen = (SELECT COUNT(*) FROM messages x WHERE x.mailbox_id = mailboxes.id"
    "              AND (x.flags & 1) = 0),"
    "  n_bytes = (SELECT COALESCE(SUM(size), 0) FROM messages x"
    "             WHERE x.mailbox_id = mailboxes.id);"
    "CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN"
    "  UPDATE mailboxes SET n_messages = n_messages + 1,"
    "    n_unseen = n_unseen + ((NEW.flags & 1) = 0), n_bytes = n_bytes + NEW.size"
    "  WHERE id = NEW.mailbox_id; END;"
    "CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN"
    "  UPDATE mailboxes SET n_messages = n_messages - 1,"
    "    n_unseen = n_unseen - ((OLD.flags & 1) = 0), n_bytes = n_bytes - OLD.size"
    "  WHERE id = OLD.mailbox_id; END;"
    "CREATE TRIGGER messages_count_seen AFTER UPDATE OF flags ON messages"
    "  WHEN (OLD.flags & 1) != (NEW.flags & 1) BEGIN"
    "  UPDATE mailboxes SET n_unseen = n_unseen + ((NEW.flags & 1) = 0) - ((OLD.flags & 1) = 0)"
    "  WHERE id = NEW.mailbox_id; END;",
    /*
     * 2 -> 3: the search record (mime_cache_record: the searchable header
     * fields, decoded), written with ENVELOPE and BODYSTRUCTURE at delivery
     * and APPEND, so that header searches and the first FETCH ENVELOPE never
     * parse the messages. Rows of older stores stay NULL and are filled the
     * first time a search needs them.
     */
    "ALTER TABLE messages ADD COLUMN search BLOB;",
    /*
     * 3 -> 4 (IMAP, issue 19): recent_uid, the first UID no session has
     * claimed as \Recent yet (RFC 3501 2.3.2; what exists now counts as
     * seen). An expunged message keeps its body's reference in the expunge
     * log (blob, at) for STORE_EXPUNGE_HOLD seconds, so that sessions not yet
     * told of the expunge can still read it (RFC 2180 4.1.1); sq_gc drops it.
     */
    "ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;"
    "UPDATE mailboxes SET recent_uid = uidnext;"
    "ALTER TABLE expunged ADD COLUMN blob TEXT;"
    "ALTER TABLE expunged ADD COLUMN at INTEGER;"
    "CREATE INDEX expunged_held ON expunged(at) WHERE blob IS NOT NULL;",
    /*
     * 4 -> 5 (issue 12): the account-wide change state (store_account_state),
     * for JMAP's state and /changes and the http push. Triggers bump it in the
     * same transaction as every change to a mailbox of the account: a mailbox
     * created, deleted, renamed or renumbered, a message appended, copied,
     * flagged or expunged (each takes the mailbox's next MODSEQ or UIDNEXT), a
     * subscription. Caches (search records, the MIME columns) and \Recent
     * claims are not changes a client sees and leave it alone.
     * Mailbox ids, which callers now keep (store_mailbox_resolve), are never
     * reused from here on: mailbox_id_next hands them out.
     */
    "CREATE TABLE account_state(owner TEXT PRIMARY KEY, state INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO account_state SELECT owner, 1 FROM mailboxes GROUP BY owner;"
    "INSERT INTO meta SELECT 'mailbox_id_next', COALESCE(MAX(id), 0) + 1 FROM mailboxes;"
    "CREATE TRIGGER state_mailbox_insert AFTER INSERT ON mailboxes BEGIN"
    "  INSERT OR IGNORE INTO account_state VALUES(NEW.owner, 0);"
    "  UPDATE account_state SET state = state + 1 WHERE owner = NEW.owner; END;"
    "CREATE TRIGGER state_mailbox_update"
    "  AFTER UPDATE OF name, special_use, uidvalidity, uidnext, highestmodseq ON mailboxes BEGIN"
    "  INSERT OR IGNORE INTO account_state VALUES(NEW.owner, 0);"
    "  UPDATE account_state SET state = state + 1 WHERE owner = NEW.owner; END;"
    "CREATE TRIGGER state_mailbox_delete AFTER DELETE ON mailboxes BEGIN"
    "  UPDATE account_state SET state = state + 1 WHERE owner = OLD.owner; END;"
    "CREATE TRIGGER state_subscribe AFTER INSERT ON subscriptions BEGIN"
    "  INSERT OR IGNORE INTO account_state VALUES(NEW.owner, 0);"
    "  UPDATE account_state SET state = state + 1 WHERE owner = NEW.owner; END;"
    "CREATE TRIGGER state_unsubscribe AFTER DELETE ON subscriptions BEGIN"
    "  UPDATE account_state SET state = state + 1 WHERE owner = OLD.owner; END;",
    /*
     * 5 -> 6 (issue 15): public folders that anchor a newsgroup hierarchy
     * (NNTP). Keyed by the folder's id, which is never reused (a rename
     * keeps the anchor); a deleted folder's row goes with it.
     */
    "CREATE TABLE newsgroups(mailbox_id INTEGER PRIMARY KEY, hierarchy TEXT NOT NULL UNIQUE,"
    " created INTEGER NOT NULL);"
    "CREATE TRIGGER newsgroups_mailbox_delete AFTER DELETE ON mailboxes BEGIN"
    "  DELETE FROM newsgroups WHERE mailbox_id = OLD.id; END;",
    /*
     * 6 -> 7 (issue 13, JMAP): which account state last changed each mailbox
     * and message (state) and which one created it (created_state), and the
     * mailboxes and bodies that went (mailboxes_gone, emails_gone), so that
     * Mailbox/changes and Email/changes since a state cost the changes, not
     * the account. Each trigger takes a fresh state of its own (the counter
     * may grow by more than one a transaction), so the state it records is
     * above any state read before the transaction and at most the one after.
     * A JMAP Email is a body (blob hash) in the account; messages_blob finds
     * its copies.
     */
    "ALTER TABLE mailboxes ADD COLUMN state INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE mailboxes ADD COLUMN created_state INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN state INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN created_state INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX messages_blob ON messages(blob);"
    "CREATE INDEX messages_state ON messages(mailbox_id, state);"
    "CREATE TABLE mailboxes_gone(owner TEXT NOT NULL, id INTEGER NOT NULL,"
    "  state INTEGER NOT NULL, PRIMARY KEY(owner, id)) WITHOUT ROWID;"
    "CREATE TABLE emails_gone(owner TEXT NOT NULL, hash TEXT NOT NULL,"
    "  state INTEGER NOT NULL, PRIMARY KEY(owner, hash)) WITHOUT ROWID;"
    /* uploads (JMAP blob upload): each holds one reference to its body until it expires */
    "CREATE TABLE uploads(owner TEXT NOT NULL, hash TEXT NOT NULL, at INTEGER NOT NULL,"
    "  PRIMARY KEY(owner, hash)) WITHOUT ROWID;"
    "CREATE INDEX uploads_at ON uploads(at);"
    "CREATE TRIGGER jmap_mailbox_insert AFTER INSERT ON mailboxes BEGIN"
    "  INSERT OR IGNORE INTO account_state VALUES(NEW.owner, 0);"
    "  UPDATE account_state SET state = state + 1 WHERE owner = NEW.owner;"
    "  UPDATE mailboxes SET state = (SELECT state FROM account_state WHERE owner = NEW.owner),"
    "    created_state = (SELECT state FROM account_state WHERE owner = NEW.owner)"
    "  WHERE id = NEW.id; END;"
    "CREATE TRIGGER jmap_mailbox_update AFTER UPDATE OF name, special_use, uidvalidity,"
    "  n_messages, n_unseen ON mailboxes BEGIN"
    "  UPDATE account_state SET state = state + 1 WHERE owner = NEW.owner;"
    "  UPDATE mailboxes SET state = (SELECT state FROM account_state WHERE owner = NEW.owner)"
    "  WHERE id = NEW.id; END;"
    "CREATE TRIGGER jmap_mailbox_delete AFTER DELETE ON mailboxes BEGIN"
    "  UPDATE account_state SET state = state + 1 WHERE owner = OLD.owner;"
    "  INSERT OR REPLACE INTO mailboxes_gone VALUES(OLD.owner, OLD.id,"
    "    (SELECT state FROM account_state WHERE owner = OLD.owner)); END;"
    "CREATE TRIGGER jmap_subscribe AFTER INSERT ON subscriptions BEGIN"
    "  UPDATE mailboxes SET state = (SELECT state FROM account_state WHERE owner = NEW.owner)"
    "  WHERE owner = NEW.owner AND name = NEW.name; END;"
    "CREATE TRIGGER jmap_unsubscribe AFTER DELETE ON subscriptions BEGIN"
    "  UPDATE mailboxes SET state = (SELECT state FROM account_state WHERE owner = OLD.owner)"
    "  WHERE owner = OLD.owner AND name = OLD.name; END;"
    "CREATE TRIGGER jmap_message_insert AFTER INSERT ON messages BEGIN"
    "  UPDATE account_state SET state = state + 1"
    "  WHERE owner = (SELECT owner FROM mailboxes WHERE id = NEW.mailbox_id);"
    "  UPDATE messages SET state = (SELECT a.state FROM account_state a JOIN mailboxes b"
    "    ON a.owner = b.owner WHERE b.id = NEW.mailbox_id),"
    "    created_state = (SELECT a.state FROM account_state a JOIN mailboxes b"
    "    ON a.owner = b.owner WHERE b.id = NEW.mailbox_id)"
    "  WHERE mailbox_id = NEW.mailbox_id AND uid = NEW.uid; END;"
    "CREATE TRIGGER jmap_message_update AFTER UPDATE OF flags, keywords ON messages BEGIN"
    "  UPDATE account_state SET state = state + 1"
    "  WHERE owner = (SELECT owner FROM mailboxes WHERE id = NEW.mailbox_id);"
    "  UPDATE messages SET state = (SELECT a.state FROM account_state a JOIN mailboxes b"
    "    ON a.owner = b.owner WHERE b.id = NEW.mailbox_id)"
    "  WHERE mailbox_id = NEW.mailbox_id AND uid = NEW.uid; END;"
    "CREATE TRIGGER jmap_message_delete AFTER DELETE ON messages BEGIN"
    "  UPDATE account_state SET state = state + 1"
    "  WHERE owner = (SELECT owner FROM mailboxes WHERE id = OLD.mailbox_id);"
    "  INSERT OR REPLACE INTO emails_gone SELECT a.owner, OLD.blob, a.state"
    "  FROM account_state a JOIN mailboxes b ON a.owner = b.owner WHERE b.id = OLD.mailbox_id;"
    "  END;",
    /*
     * 7 -> 8 (issue 13, JMAP VacationResponse): the account's vacation
     * response (RFC 8621 8; NULL dates: no bound) and the senders its
     * automatic reply went to, and when (RFC 3834 2: one reply per sender per
     * period), so that a restart of the mta does not answer them again.
     * Self-contained: touches no other table.
     */
    "CREATE TABLE vacation(owner TEXT PRIMARY KEY, enabled INTEGER NOT NULL,"
    "  from_date INTEGER, to_date INTEGER, subject TEXT, text_body TEXT, html_body TEXT)"
    "  WITHOUT ROWID;"
    "CREATE TABLE vacation_sent(owner TEXT NOT NULL, sender TEXT NOT NULL, at INTEGER NOT NULL,"
    "  PRIMARY KEY(owner, sender)) WITHOUT ROWID;",
    /*
     * 8 -> 9 (issue 13, JMAP Identity/set): the identities an account made
     * (RFC 8621 6; its directory addresses are identities without a row).
     * Ids are never reused (AUTOINCREMENT). Each row records the account
     * state of its last change and of its creation, and identities_gone the
     * ones destroyed, for Identity/changes. Self-contained: reads
     * account_state, changes no other table's shape.
     */
    "CREATE TABLE identities(id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL,"
    "  email TEXT NOT NULL, name TEXT NOT NULL, reply_to TEXT, bcc TEXT,"
    "  text_signature TEXT NOT NULL, html_signature TEXT NOT NULL,"
    "  state INTEGER NOT NULL, created_state INTEGER NOT NULL);"
    "CREATE INDEX identities_owner ON identities(owner);"
    "CREATE TABLE identities_gone(owner TEXT NOT NULL, id INTEGER NOT NULL,"
    "  state INTEGER NOT NULL, PRIMARY KEY(owner, id)) WITHOUT ROWID;",
    /*
     * 9 -> 10 (issue 15, outbound NNTP feeds): the durable queue of articles
     * each feed peer is to be offered, and per peer and fed folder the
     * highest UID already queued (store_feed_*). One self-contained step.
     */
    "CREATE TABLE nntp_feed_queue(peer TEXT NOT NULL, msgid TEXT NOT NULL,"
    "  mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    "  due INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(peer, msgid)) WITHOUT ROWID;"
    "CREATE INDEX nntp_feed_queue_due ON nntp_feed_queue(peer, due);"
    "CREATE TABLE nntp_feed_cursor(peer TEXT NOT NULL, mailbox_id INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL, PRIMARY KEY(peer, mailbox_id)) WITHOUT ROWID;"
    "CREATE TRIGGER nntp_feed_mailbox_delete AFTER DELETE ON mailboxes BEGIN"
    "  DELETE FROM nntp_feed_cursor WHERE mailbox_id = OLD.id;"
    "  DELETE FROM nntp_feed_queue WHERE mailbox_id = OLD.id; END;",
    /*
     * 10 -> 11 (issue 15, NNTP history): each message's Message-ID (its
     * search record's first one, trimmed; NULL: none, or no record yet),
     * indexed, so that a news server's history lookup (store_msgid_find,
     * store_delivery.unique_msgid) is an index probe, not a walk of every
     * article. The rows there are filled from their records by
     * wharf_record_msgid(), a function the driver registers before it
     * migrates; delivery, copy and a record written later set it. One
     * self-contained step: a column and an index of messages.
     */
    "ALTER TABLE messages ADD COLUMN msgid TEXT;"
    "UPDATE messages SET msgid = wharf_record_msgid(search) WHERE search IS NOT NULL;"
    "CREATE INDEX messages_msgid ON messages(msgid) WHERE msgid IS NOT NULL;",
    /*
     * 11 -> 12 (issue 15, NNTP pulls): per peer pulled with NEWNEWS, when its
     * last successful pull began (store_pull_*). One self-contained step.
     */
    "CREATE TABLE nntp_pull(peer TEXT PRIMARY KEY, since INTEGER NOT NULL) WITHOUT ROWID;",
    /*
     * 12 -> 13 (issue 15): the \Recent count of each mailbox (messages from
     * recent_uid on) kept by triggers like the other counts, instead of a
     * COUNT in every mailbox list and get: that COUNT was linear in a folder
     * no IMAP session selects (a newsgroup: recent_uid stays 1), and NNTP
     * lists the public folders for every article it takes. A claim recounts
     * from its new recent_uid only (the messages after it: few). One
     * self-contained step: a column of mailboxes and its triggers.
     */
    "ALTER TABLE mailboxes ADD COLUMN n_recent INTEGER NOT NULL DEFAULT 0;"
    "UPDATE mailboxes SET n_recent = (SELECT COUNT(*) FROM messages r"
    "  WHERE r.mailbox_id = mailboxes.id AND r.uid >= mailboxes.recent_uid);"
    "CREATE TRIGGER recent_count_insert AFTER INSERT ON messages BEGIN"
    "  UPDATE mailboxes SET n_recent = n_recent + (NEW.uid >= recent_uid)"
    "  WHERE id = NEW.mailbox_id; END;"
    "CREATE TRIGGER recent_count_delete AFTER DELETE ON messages BEGIN"
    "  UPDATE mailboxes SET n_recent = n_recent - (OLD.uid >= recent_uid)"
    "  WHERE id = OLD.mailbox_id; END;"
    "CREATE TRIGGER recent_count_claim AFTER UPDATE OF recent_uid ON mailboxes BEGIN"
    "  UPDATE mailboxes SET n_recent = (SELECT COUNT(*) FROM messages r"
    "    WHERE r.mailbox_id = NEW.id AND r.uid >= NEW.recent_uid) WHERE id = NEW.id; END;",
    migration_threads,
    /*
     * 14 -> 15 (issue 15, one sync per commit): a body of at most
     * store_inline_body_max bytes is kept in its blobs row (segment -1,
     * offset 0) instead of a segment file, so that it is made durable by the
     * commit's WAL sync with the rows that name it: one sync per commit
     * instead of the segment's fdatasync, then the WAL's. Still one row per
     * body (content-addressed, reference-counted). One self-contained step:
     * a column of blobs.
     */
    migration_blob_body,
    migration_text_index,
    /*
     * 16 -> 17 (issue 15, fewer pages per commit): blobs_segment indexes only
     * the bodies in segment files (segment >= 0), which is all sq_gc and the
     * backup look up by segment. The bodies kept in their rows (segment -1:
     * most articles and small mails) were one more random leaf of that index
     * written, and one more WAL frame synced, per message. One self-contained
     * step: an index of blobs.
     */
    "DROP INDEX blobs_segment;"
    "CREATE INDEX blobs_segment ON blobs(segment) WHERE segment >= 0;",
    /*
     * 17 -> 18 (issue 15, no body read to find a row): the bodies kept in the
     * database move out of blobs into blob_bodies, a rowid table (id = the
     * blobs row's offset; a trigger deletes the body with its blobs row).
     * blobs is WITHOUT ROWID: its rows are the cells of its key's b-tree, and
     * SQLite compares a probe with a cell that overflows its page only after
     * reading the whole cell, so every lookup by hash (a delivery's reference
     * count, insert and foreign-key check, every read) read and copied the
     * 4 KiB bodies of the rows it passed, and a leaf held about four rows.
     * `perf` of a streaming feed: sq_blob_ref 20 % of the article writer.
     * Now a blobs row is ~100 bytes and the bodies are appended in id order.
     * One self-contained step: a table, its rows moved, a trigger.
     */
    migration_blob_rows,
    /*
     * 18 -> 19 (issue 14, shared accounts): the shares of a user are looked up
     * by identifier (the user, anyone, and their negative rights) on every
     * JMAP request, for the session state; acl's key starts with mailbox_id,
     * so that was a scan of every ACL row of the server. IF NOT EXISTS: an
     * index only, so a store rolled back past this step by the migration
     * tests opens again without undoing it. One self-contained step.
     */
    "CREATE INDEX IF NOT EXISTS acl_identifier ON acl(identifier);",
    /*
     * 19 -> 20 (issue 14, the cold first sign-in): the columns Email/query
     * and Thread/get read of each copy, by mailbox and receivedAt, in an
     * index of their own (store_account_dates), so that a worker with no
     * account view answers a webmail's first page from ~100 bytes a copy
     * instead of the message rows (~500: envelope, body structure, search
     * record), and without building the view's indexes. A flag change now
     * rewrites this entry too. IF NOT EXISTS: an index only, like 18 -> 19.
     * One self-contained step.
     */
    "CREATE INDEX IF NOT EXISTS messages_date ON messages(mailbox_id, internaldate,"
    "  created_state, thread, flags, keywords, blob);",
    /*
     * 20 -> 21 (issue 14, the cold first sign-in): the copies of a mailbox
     * that are not the first (lowest UID) of their body in it (message_dupes,
     * kept by triggers). Without them a mailbox's copies are its Emails one
     * for one, so a worker with no account view walks a mail list's first
     * page and counts its total in SQLite (store_dates, store_mailbox_count)
     * instead of reading every copy to group them by body. An insert looks
     * up the body's other copies (messages_blob); a delete, in a mailbox that
     * has such copies, too. The first fill probes every copy once. One
     * self-contained step.
     */
    "CREATE TABLE message_dupes(mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL,"
    "  PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID;"
    "INSERT INTO message_dupes SELECT m.mailbox_id, m.uid FROM messages m WHERE EXISTS"
    "  (SELECT 1 FROM messages f WHERE f.blob = m.blob AND f.mailbox_id = m.mailbox_id"
    "  AND f.uid < m.uid);"
    "CREATE TRIGGER message_dupes_insert AFTER INSERT ON messages WHEN EXISTS (SELECT 1"
    "  FROM messages d WHERE d.blob = NEW.blob AND d.mailbox_id = NEW.mailbox_id"
    "  AND d.uid != NEW.uid) BEGIN"
    "  INSERT OR IGNORE INTO message_dupes SELECT d.mailbox_id, d.uid FROM messages d"
    "    WHERE d.blob = NEW.blob AND d.mailbox_id = NEW.mailbox_id AND d.uid > (SELECT"
    "    MIN(f.uid) FROM messages f WHERE f.blob = NEW.blob AND f.mailbox_id = NEW.mailbox_id);"
    "  DELETE FROM message_dupes WHERE mailbox_id = NEW.mailbox_id AND uid = (SELECT MIN(f.uid)"
    "    FROM messages f WHERE f.blob = NEW.blob AND f.mailbox_id = NEW.mailbox_id); END;"
    "CREATE TRIGGER message_dupes_delete AFTER DELETE ON messages WHEN EXISTS (SELECT 1"
    "  FROM message_dupes x WHERE x.mailbox_id = OLD.mailbox_id) BEGIN"
    "  DELETE FROM message_dupes WHERE mailbox_id = OLD.mailbox_id AND (uid = OLD.uid OR"
    "    uid = (SELECT MIN(f.uid) FROM messages f WHERE f.blob = OLD.blob"
    "    AND f.mailbox_id = OLD.mailbox_id)); END;",
    /*
     * 21 -> 22 (issue 14, the cold first sign-in): the copies that carry a
     * keyword word (the flags are bits, not words), in a partial index of their
     * own, so that a worker with no account view finds the copies having a
     * keyword (the webmail's settings query: hasKeyword $wharfsettings) among
     * those few instead of reading every copy of the account from messages_date
     * (store_dates by keyword: ~25 ms of CPU on a 100,000-message account, ~2
     * this way). IF NOT EXISTS: an index only, like 18 -> 19. One self-contained
     * step.
     */
    "CREATE INDEX IF NOT EXISTS messages_keywords ON messages(mailbox_id) WHERE keywords != '';",
    /*
     * 22 -> 23 (issue 15, a public folder's address after a RENAME): the former
     * names of public folders, kept by triggers whatever renames them (IMAP,
     * JMAP, the CLI), so that mail to an address given under an old name
     * reaches the folder under its new one (store_public_folder_now). A name
     * goes when a folder is created with it or renamed to it, and all of a
     * folder's go with the folder. The table is a handful of rows: the
     * deletion's lookup by mailbox_id scans it. IF NOT EXISTS, like 18 -> 19:
     * nothing in it depends on an earlier step's undoing. One self-contained
     * step.
     */
    "CREATE TABLE IF NOT EXISTS public_former_names(name TEXT PRIMARY KEY,"
    "  mailbox_id INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TRIGGER IF NOT EXISTS public_former_name AFTER UPDATE OF name ON mailboxes"
    "  WHEN NEW.owner = '#public' AND OLD.name != NEW.name BEGIN"
    "  INSERT OR REPLACE INTO public_former_names VALUES(OLD.name, NEW.id);"
    "  DELETE FROM public_former_names WHERE name = NEW.name; END;"
    "CREATE TRIGGER IF NOT EXISTS public_former_name_taken AFTER INSERT ON mailboxes"
    "  WHEN NEW.owner = '#public' BEGIN"
    "  DELETE FROM public_former_names WHERE name = NEW.name; END;"
    "CREATE TRIGGER IF NOT EXISTS public_former_names_gone AFTER DELETE ON mailboxes"
    "  WHEN OLD.owner = '#public' BEGIN"
    "  DELETE FROM public_former_names WHERE mailbox_id = OLD.id; END;",
};

size_t sq_schema_count(void)
{
    return sizeof(migrations) / sizeof(migrations[0]);
}

const char *sq_schema_migration(size_t from_version)
{
    return from_version < sq_schema_count() ? migrations[from_version] : NULL;
}

sq_schema_step_fn *sq_schema_after(size_t from_version)
{
    if (from_version < sq_schema_count() && migrations[from_version] == migration_threads)
        return sq_thread_backfill;
    return NULL;
}

/* Whether the steps up to version include step. */
static bool has_step(size_t version, const char *step)
{
    for (size_t i = 0; i < version && i < sq_schema_count(); i++)
        if (migrations[i] == step)
            return true;
    return false;
}

bool sq_schema_blob_body(size_t version)
{
    return has_step(version, migration_blob_body);
}

bool sq_schema_blob_rows(size_t version)
{
    return has_step(version, migration_blob_rows);
}
