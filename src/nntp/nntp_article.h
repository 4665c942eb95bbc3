/*
 * nntp_article.h - the checks a news server makes on an article offered by
 * POST (RFC 5536, RFC 5537 3.5): the header section well formed, From,
 * Newsgroups and Subject present once, a valid Message-ID when there is
 * one, no Injection-Info or Injection-Date from a poster (peers' articles
 * carry them: transit), a body (INN's rules: nnrpd's for a poster, innd's
 * for a peer); the newsgroups list split into names; header fields read by
 * name; and a stored article as a reader gets it (the fields the server
 * adds, its :bytes).
 *
 * Pure functions of the bytes given (CRLF line ends, as the dot reader
 * leaves them), fuzzed by fuzz_nntp_article.c.
 * Must never: read outside the article, or pass an article whose header
 * a reader could split differently (a field without a colon, a bare CR).
 */
#ifndef WHARF_NNTP_NNTP_ARTICLE_H
#define WHARF_NNTP_NNTP_ARTICLE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* RFC 3977 3.1 and RFC 5536 3.1.4: a newsgroup name is at most this long here. */
#define NNTP_GROUP_NAME_MAX 200

struct nntp_article_info {
    size_t header_len; /* bytes of the header section, without the blank line */
    bool has_body;     /* a blank line ends the header (else the article is all header) */
    /* raw values, without the leading and trailing white space (ptr NULL: absent) */
    struct slice from, newsgroups, subject, message_id, date, path;
};

/* Checks article; false with *why_r the text of the 441 reply. transit: an
 * article offered by a peer (IHAVE, TAKETHIS): Message-ID, Date and Path are
 * required too, and the Injection fields another server added are kept.
 * An article with no blank line after its header has no body: refused, as
 * INN refuses it (nnrpd "Article has no body -- just headers", innd "No
 * body"); a poster's with the blank line and nothing after it too, unless
 * it has a Control field (nnrpd's "Article is empty"; innd takes it from a
 * peer). A body of white space or empty lines is a body, for both. */
bool nntp_article_check(struct slice article, bool transit, struct nntp_article_info *info,
                        const char **why_r);

/* The value of the first field called name (any case) in header (raw, folded as it is,
 * trimmed); ptr NULL when absent. */
struct slice nntp_header_field(struct slice header, const char *name);

/* The next name of a Newsgroups value (names separated by "," and white space);
 * false at the end. *rest starts as the whole value. */
bool nntp_newsgroups_next(struct slice *rest, struct slice *name_r);
/* RFC 5536 3.1.4: components of letters, digits, "+", "-", "_", joined by dots. */
bool nntp_group_name_valid(struct slice name);

/* Whether name is one of the path identities of a Path value (entries split at
 * "!", white space ignored, any case): the server it names has the article. */
bool nntp_path_has(struct slice path, struct slice name);

/* The article a as this server stores it (RFC 5537 3.5, 3.6): "Path: host!"
 * before a's Path ("not-for-mail" when it has none), then extra (fields the
 * server adds, CRLF-ended), then a's own fields but its Path, then its body
 * (an article that is all header gets the blank line). info: nntp_article_check's. */
void nntp_article_rebuild(struct slice a, const struct nntp_article_info *info, const char *host,
                          struct slice extra, struct buf *out);

/* What an article that came in by mail or IMAP lacks to be one (RFC 5536 3.1): the
 * fields "Path: host!not-for-mail" and "Newsgroups: group" (group NULL: not that one)
 * when header has none, CRLF-ended, appended to out: a reader (ARTICLE, HEAD) and a
 * feed peer get them before the article's own fields. */
void nntp_article_missing_fields(struct slice header, const char *host, const char *group,
                                 struct buf *out);

/* Where the header section of stored article a ends (its last CRLF in, the blank line
 * out) and where its body begins (after the blank line); both a.len without one. */
void nntp_article_split(struct slice a, size_t *hlen_r, size_t *body_r);

/* The header section a reader gets of a stored article whose own is header
 * (nntp_article_split's): nntp_article_missing_fields', then "Xref: " xref when
 * xref.ptr is set (this server's own, RFC 5536 3.2.14), then header's
 * fields but any Xref (a peer's, kept in the store as it came: innd replaces it
 * too) and any first line that is no field (it starts with white space, and
 * would continue the field before it). Appended to out. ARTICLE and HEAD send
 * it, OVER and HDR read it. */
void nntp_article_reader_header(struct slice header, const char *host, const char *group,
                                struct slice xref, struct buf *out);

/* RFC 3977 8.5.2 :bytes of an article sent as header (nntp_article_reader_header's)
 * then rest (the stored article from its blank line on): their octets, and the CRLF
 * the dot writer ends them with when they lack it; dot-stuffing not counted. */
size_t nntp_article_bytes(struct slice header, struct slice rest);

#endif
