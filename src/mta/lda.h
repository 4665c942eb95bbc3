/*
 * lda.h - `wharf deliver`: the local delivery agent, and the deliver.sock
 * frames it exchanges with the running mta.
 *
 * The message arrives on stdin with LF or CRLF line ends and is stored with
 * CRLF (a bare LF becomes CRLF; everything else, including a lone CR or NUL
 * bytes, is kept as is). When wharfd runs, the message goes to the mta over
 * DATA/run/deliver.sock so that concurrent deliveries share one fsync (group
 * commit); otherwise it is delivered in-process through the same
 * local_deliver(). Exit codes follow sysexits.h: 0 delivered, 67 unknown
 * user, 75 temporary failure (the caller, e.g. fetchmail or procmail,
 * tries again), 65 message too large.
 */
#ifndef WHARF_MTA_LDA_H
#define WHARF_MTA_LDA_H

#include "base/buf.h"
#include "base/config.h"
#include "mta/local.h"

#include <stdint.h>

/* Appends in to out with every bare LF turned into CRLF. */
void lda_crlf(struct slice in, struct buf *out);

/* deliver.sock: IPC_DELIVER_REQUEST = str user, str folder ("" = none), bytes message. */
void lda_encode_request(struct buf *out, const char *user, const char *folder, struct slice msg);
int lda_decode_request(const void *payload, size_t len, struct slice *user, struct slice *folder,
                       struct slice *msg);
/* IPC_DELIVER_REPLY = u64 sysexits code, str text. */
void lda_encode_reply(struct buf *out, int code, const char *text);
int lda_decode_reply(const void *payload, size_t len, int *code_r, struct slice *text);

/* The sysexits code for one recipient's outcome (0, EX_NOUSER, EX_TEMPFAIL). */
int lda_status_code(enum local_status st);

/* "alice" -> "alice@FIRST-MYDOMAIN"; an address is kept. Caller frees. */
char *lda_user_address(const struct wharf_config *cfg, const char *user);

/* The whole command: wharf deliver [-m FOLDER] USER < message. Returns a sysexits code. */
int lda_main(const struct wharf_config *cfg, int argc, char **argv);

/*
 * The client half (lda_client.c, libc and src/base only): parses argv, reads
 * the message from stdin into rq and hands it to the mta over deliver.sock.
 * Returns a sysexits code, or LDA_MTA_DOWN when nobody listens there: rq then
 * holds the request (msg with CRLF line ends; the caller frees rq->msg) for
 * an in-process delivery.
 */
#define LDA_MTA_DOWN (-1)
struct lda_request {
    const char *user;   /* as given: "alice" or an address */
    const char *folder; /* -m, or NULL */
    struct buf msg;
};
int lda_client_deliver(const struct wharf_config *cfg, int argc, char **argv,
                       struct lda_request *rq);

#endif
