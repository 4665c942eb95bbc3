/*
 * directory_proto.h - the payloads of IPC_DIRECTORY_LOOKUP and
 * IPC_DIRECTORY_ANSWER (ipc/frame.h fields, in this order), shared by the
 * directory process (directory_server.c) and the workers' client
 * (directory_client.c) so that both sides read the same format.
 *
 *   IPC_DIRECTORY_LOOKUP: u64 id, u64 query (enum directory_query), str key
 *   IPC_DIRECTORY_ANSWER: u64 id, u64 status (enum directory_lookup_status),
 *                         u64 kind (enum directory_resolve_kind), u64 flags,
 *                         u64 quota_bytes, u64 quota_messages, str home, str dn,
 *                         str secret,
 *                         u64 n_targets, n_targets x (str account, str folder),
 *                         u64 n_remote, n_remote x str address
 *
 * A str is a u32 length and the bytes. id is the client's, echoed back;
 * answers may come out of order. key is an envelope address for
 * DIRECTORY_Q_RECIPIENT and an account name for DIRECTORY_Q_ACCOUNT. flags:
 * DIRECTORY_FLAG_LOOP (directory_result.loop). home is the account's home
 * server ("" for this one); quota_* and home are those of the account for
 * an ACCOUNT query (kind LOCAL, one target: the account), 0 and "" for a
 * RECIPIENT query. dn: for a LOGIN query (a login name, asked by the auth
 * process of a directory that checks passwords by LDAP bind), the DN to bind
 * as, with the canonical account as the one target; "" otherwise. secret: for
 * a LOGIN query of a directory that reads hashes (ldap_password_check =
 * hash), the account's password value as the tree holds it ("" when it has
 * none, or when it could not be read: flag DIRECTORY_FLAG_NO_SECRET, no LDAP
 * server answered); "" in every other answer. Only the auth process's socket
 * is ever answered a LOGIN query, so a worker never sees one. status TEMPFAIL: the directory
 * could not answer (the worker answers 4xx); every other field is then zero or empty.
 *
 * Decoding refuses any frame with a string too long or holding a NUL, a
 * value out of its range, unknown flags, more entries than the payload
 * could hold, or bytes left over: the reader then closes the connection, it
 * never guesses.
 */
#ifndef WHARF_DIRECTORY_DIRECTORY_PROTO_H
#define WHARF_DIRECTORY_DIRECTORY_PROTO_H

#include "base/buf.h"
#include "directory/directory.h"

#include <stdbool.h>
#include <stdint.h>

#define DIRECTORY_PROTO_MAX_KEY 1024 /* longest address or account name asked about */
#define DIRECTORY_FLAG_LOOP 1u
#define DIRECTORY_FLAG_NO_SECRET 2u     /* LOGIN: the password value could not be read now */
#define DIRECTORY_PROTO_MAX_SECRET 1024 /* longest password value (password.h's too) */

enum directory_query {
    DIRECTORY_Q_RECIPIENT = 1, /* resolve an envelope recipient (directory_resolve) */
    DIRECTORY_Q_ACCOUNT = 2,   /* quota and home server of an account */
    DIRECTORY_Q_LOGIN = 3,     /* the account and DN a login binds as (LDAP) */
};

enum directory_lookup_status {
    DIRECTORY_LOOKUP_OK = 0,
    DIRECTORY_LOOKUP_TEMPFAIL = 1,
};

/* A decoded answer; every string is allocated (directory_answer_free). */
struct directory_answer {
    enum directory_lookup_status status;
    enum directory_resolve_kind kind;
    bool loop;
    uint64_t quota_bytes, quota_messages; /* 0: unlimited */
    char *home;                           /* "" : this server */
    char *dn;                             /* LOGIN: the DN to bind as; else "" */
    char *secret;   /* LOGIN, hash mode: the password value; else "" (wiped when freed) */
    bool no_secret; /* LOGIN, hash mode: the value could not be read (no LDAP server) */
    size_t n_targets;
    char **accounts, **folders; /* folders[i] "" : INBOX */
    size_t n_remote;
    char **remote;
};

void directory_answer_free(struct directory_answer *a);

void directory_proto_put_lookup(struct buf *payload, uint64_t id, enum directory_query q,
                                const char *key);
/* key points into payload (not NUL-terminated). Returns 0, or -1 with a static reason. */
int directory_proto_get_lookup(const void *payload, size_t len, uint64_t *id_r,
                               enum directory_query *q_r, struct slice *key_r, const char **why_r);

void directory_proto_put_answer(struct buf *payload, uint64_t id, const struct directory_answer *a);
/* Fills *a (free it with directory_answer_free, also after a failure). 0, or -1. */
int directory_proto_get_answer(const void *payload, size_t len, uint64_t *id_r,
                               struct directory_answer *a);

#endif
