/*
 * imap_acl.c - the ACL commands (RFC 4314): SETACL, DELETEACL, GETACL,
 * LISTRIGHTS, MYRIGHTS, over the store's ACL rows (store_acl_*).
 *
 * Identifiers: an account ("bob@example.org", kept in lower case),
 * "anyone", or either after "-" (negative rights, taken away from what the
 * others grant). The owner of a mailbox always has every right; that entry
 * cannot be changed and is shown first by GETACL (public folders have no
 * owner entry). Rights are "lrswipkxtea"; "c" and "d" (RFC 2086) are
 * accepted as k and x t e, and returned when one of their members is there.
 * Must never: answer a user without "l" differently from a missing mailbox,
 * or change an ACL without "a".
 */
#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_int.h"
#include "mime/mime.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An identifier: "-" + an address (RFC 5321: 64 + 1 + 255). */
#define IMAP_MAX_ACL_IDENTIFIER 321

static const char missing[] = "[NONEXISTENT] Mailbox does not exist";

/* The mailbox argument resolved and checked for need; false when answered. */
static bool acl_mailbox(struct imap_session *s, struct slice tag, const struct imap_arg *a,
                        unsigned need, struct imap_mbref *r)
{
    memset(r, 0, sizeof(*r));
    char *name = imap_mailbox_arg(s, a);
    if (name == NULL) {
        imap_bad(s, tag, "Invalid mailbox name");
        return false;
    }
    int rc = imap_mbref_resolve(s, name, r);
    free(name);
    if (rc != 0) {
        imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", TAGF(tag));
        return false;
    }
    if (r->own && r->name != NULL && !r->exists) {
        imap_printf(s, "%.*s NO %s", TAGF(tag), missing);
        return false;
    }
    return imap_mbref_allowed(s, tag, r, need, missing);
}

/* The identifier argument, canonical (lower case), or NULL (BAD sent). */
static char *acl_identifier(struct imap_session *s, struct slice tag, const struct imap_arg *a)
{
    struct slice id;
    if (!imap_arg_astring(a, &id) || id.len == 0 || id.len > IMAP_MAX_ACL_IDENTIFIER ||
        (id.len == 1 && id.ptr[0] == '-')) {
        imap_bad(s, tag, "Invalid identifier");
        return NULL;
    }
    char *v = slice_strdup(id);
    for (char *p = v; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            free(v);
            imap_bad(s, tag, "Invalid identifier");
            return NULL;
        }
        *p = (char)tolower((unsigned char)*p);
    }
    return v;
}

/* "* <what> mailbox" with the name the client used (read and written as every mailbox name is). */
static void acl_head(struct imap_session *s, struct buf *out, const char *what,
                     const struct imap_arg *mailbox)
{
    char *name = imap_mailbox_arg(s, mailbox); /* acl_mailbox read it already: not NULL */
    buf_printf(out, "* %s ", what);
    imap_mailbox_name_write(s, out, name ? name : "");
    free(name);
}

static void acl_change(struct imap_session *s, struct slice tag, const struct imap_arg *args,
                       const char *rights_text, const char *cmd)
{
    struct imap_mbref r;
    struct buf err = BUF_INIT, cur = BUF_INIT, text = BUF_INIT;
    char *id = NULL;
    if (!acl_mailbox(s, tag, &args[0], IMAP_RIGHT_A, &r) ||
        (id = acl_identifier(s, tag, &args[1])) == NULL)
        goto done;
    if (strcmp(id, r.owner) == 0) {
        imap_printf(s, "%.*s NO [CANNOT] The owner always has every right", TAGF(tag));
        goto done;
    }
    unsigned bits = 0;
    if (rights_text != NULL) {
        char mod = rights_text[0] == '+' || rights_text[0] == '-' ? rights_text[0] : 0;
        if (!imap_rights_parse(slice_from_cstr(rights_text + (mod != 0)), &bits)) {
            imap_bad(s, tag, "Unknown right (RFC 4314: lrswipkxtea)");
            goto done;
        }
        if (mod != 0) {
            unsigned old = 0;
            if (store_acl_get(s->srv->store, r.owner, r.name, id, &cur, &err) != 0) {
                imap_store_error(s, tag, "acl", &err);
                goto done;
            }
            (void)imap_rights_parse(slice_make(cur.data, cur.len), &old);
            bits = mod == '+' ? old | bits : old & ~bits;
        }
    }
    for (size_t i = 0; i < sizeof(IMAP_RIGHTS) - 1; i++)
        if (bits & (1u << i))
            buf_append_byte(&text, IMAP_RIGHTS[i]);
    if (store_acl_set(s->srv->store, r.owner, r.name, id, buf_cstr(&text), &err) != 0) {
        imap_store_error(s, tag, "acl", &err);
        goto done;
    }
    log_info("user=<%s>: %s %s/%s %s %s", s->account, cmd, r.owner, r.name, id, buf_cstr(&text));
    imap_printf(s, "%.*s OK %s completed", TAGF(tag), cmd);
done:
    imap_mbref_free(&r);
    free(id);
    buf_free(&err);
    buf_free(&cur);
    buf_free(&text);
}

void imap_cmd_setacl(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    struct slice rights;
    if (n != 3 || !imap_arg_astring(&args[2], &rights) || memchr(rights.ptr, '\0', rights.len)) {
        imap_bad(s, tag, "Usage: SETACL mailbox identifier [+|-]rights");
        return;
    }
    char *text = slice_strdup(rights);
    acl_change(s, tag, args, text, "SETACL");
    free(text);
}

void imap_cmd_deleteacl(struct imap_session *s, struct slice tag, bool uid,
                        const struct imap_arg *args, size_t n)
{
    (void)uid;
    if (n != 2) {
        imap_bad(s, tag, "Usage: DELETEACL mailbox identifier");
        return;
    }
    acl_change(s, tag, args, NULL, "DELETEACL");
}

void imap_cmd_getacl(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    if (n != 1) {
        imap_bad(s, tag, "Usage: GETACL mailbox");
        return;
    }
    struct imap_mbref r;
    struct store_acl_entry *acl = NULL;
    size_t n_acl = 0;
    struct buf err = BUF_INIT, out = BUF_INIT;
    if (!acl_mailbox(s, tag, &args[0], IMAP_RIGHT_A, &r))
        goto done;
    if (store_acl_list(s->srv->store, r.owner, r.name, &acl, &n_acl, &err) != 0) {
        imap_store_error(s, tag, "getacl", &err);
        goto done;
    }
    acl_head(s, &out, "ACL", &args[0]);
    if (strcmp(r.owner, STORE_PUBLIC_OWNER) != 0) {
        buf_append_byte(&out, ' ');
        mime_imap_string(&out, slice_from_cstr(r.owner));
        buf_append_byte(&out, ' ');
        imap_rights_write(&out, IMAP_RIGHTS_ALL, true);
    }
    for (size_t i = 0; i < n_acl; i++) {
        unsigned bits = 0;
        (void)imap_rights_parse(slice_from_cstr(acl[i].rights), &bits);
        buf_append_byte(&out, ' ');
        mime_imap_string(&out, slice_from_cstr(acl[i].identifier));
        buf_append_byte(&out, ' ');
        imap_rights_write(&out, bits, true);
    }
    buf_printf(&out, "\r\n%.*s OK GETACL completed\r\n", TAGF(tag));
    net_conn_write(s->conn, out.data, out.len);
done:
    store_acl_list_free(acl, n_acl);
    imap_mbref_free(&r);
    buf_free(&err);
    buf_free(&out);
}

void imap_cmd_listrights(struct imap_session *s, struct slice tag, bool uid,
                         const struct imap_arg *args, size_t n)
{
    (void)uid;
    if (n != 2) {
        imap_bad(s, tag, "Usage: LISTRIGHTS mailbox identifier");
        return;
    }
    struct imap_mbref r;
    char *id = NULL;
    struct buf out = BUF_INIT;
    if (!acl_mailbox(s, tag, &args[0], IMAP_RIGHT_A, &r) ||
        (id = acl_identifier(s, tag, &args[1])) == NULL)
        goto done;
    acl_head(s, &out, "LISTRIGHTS", &args[0]);
    buf_append_byte(&out, ' ');
    mime_imap_string(&out, slice_from_cstr(id));
    if (strcmp(id, r.owner) == 0) {
        buf_append_cstr(&out, " lrswipkxtea"); /* all required, none optional */
    } else {
        /* Nothing is required; every right can be granted on its own (c and d too). */
        buf_append_cstr(&out, " \"\"");
        for (const char *p = IMAP_RIGHTS "cd"; *p; p++)
            buf_printf(&out, " %c", *p);
    }
    buf_printf(&out, "\r\n%.*s OK LISTRIGHTS completed\r\n", TAGF(tag));
    net_conn_write(s->conn, out.data, out.len);
done:
    imap_mbref_free(&r);
    free(id);
    buf_free(&out);
}

void imap_cmd_myrights(struct imap_session *s, struct slice tag, bool uid,
                       const struct imap_arg *args, size_t n)
{
    (void)uid;
    if (n != 1) {
        imap_bad(s, tag, "Usage: MYRIGHTS mailbox");
        return;
    }
    struct imap_mbref r;
    if (acl_mailbox(s, tag, &args[0], 0, &r)) {
        /* RFC 4314 4: any of l r i k x a. */
        const unsigned any =
            IMAP_RIGHT_L | IMAP_RIGHT_R | IMAP_RIGHT_I | IMAP_RIGHT_K | IMAP_RIGHT_X | IMAP_RIGHT_A;
        if (!(r.rights & any)) {
            imap_printf(s, "%.*s NO %s", TAGF(tag), missing);
        } else {
            struct buf out = BUF_INIT;
            acl_head(s, &out, "MYRIGHTS", &args[0]);
            buf_append_byte(&out, ' ');
            imap_rights_write(&out, r.rights, true);
            buf_printf(&out, "\r\n%.*s OK MYRIGHTS completed\r\n", TAGF(tag));
            net_conn_write(s->conn, out.data, out.len);
            buf_free(&out);
        }
    }
    imap_mbref_free(&r);
}
