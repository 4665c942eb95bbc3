/*
 * mta_pickup_check.c - what the pickup believes of a maildrop file, and the
 * spool entry it makes of it (see mta_pickup.h). No I/O: fuzzed with the
 * maildrop decoder (fuzz_maildrop.c) and called by `wharf sendmail`.
 *
 * Must never: take an address the SMTP server would refuse, take message
 * bytes past the server's limits or with a bare CR or LF (unless the server
 * normalizes them), or let the file's content say who sent it.
 */
#include "mta/mta_pickup.h"

#include "base/alloc.h"
#include "base/date.h"
#include "net/dotread.h"
#include "smtp/smtp_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool has_8bit(struct slice s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.ptr[i] >= 0x80)
            return true;
    return false;
}

static enum mta_pickup_verdict check_addresses(const struct wharf_config *cfg,
                                               const struct maildrop_entry *e, bool *utf8_r,
                                               const char **why_r)
{
    bool utf8 = false;
    *utf8_r = false;
    if (e->sender[0] && !smtp_address_valid(slice_from_cstr(e->sender), utf8_r)) {
        *why_r = "bad sender address syntax";
        return MTA_PICKUP_BAD_ADDRESS;
    }
    if (e->n_rcpts == 0 || e->n_rcpts > (size_t)cfg->smtp_max_recipients) {
        *why_r = e->n_rcpts ? "too many recipients" : "no recipients";
        return MTA_PICKUP_BAD_ADDRESS;
    }
    for (size_t i = 0; i < e->n_rcpts; i++) {
        if (!smtp_address_valid(slice_from_cstr(e->rcpts[i]), &utf8)) {
            *why_r = "bad recipient address syntax";
            return MTA_PICKUP_BAD_ADDRESS;
        }
        *utf8_r |= utf8;
    }
    return MTA_PICKUP_OK;
}

/* Runs the message through the SMTP server's DATA scanner (as BDAT: no dots)
 * with the server's limits, appending it to out. */
static enum mta_pickup_verdict scan_message(const struct wharf_config *cfg, struct slice data,
                                            struct buf *out, const char **why_r)
{
    const struct dotread_limits lim = {
        .max_size = (uint64_t)cfg->smtp_max_message_size,
        .max_line = (size_t)cfg->smtp_max_data_line_length,
        .max_header = (size_t)cfg->smtp_max_header_size,
        .newline = strcmp(cfg->smtp_bare_newline, "normalize") == 0 ? DOTREAD_NEWLINE_NORMALIZE
                                                                    : DOTREAD_NEWLINE_REJECT,
    };
    struct dotread sc;
    size_t used;
    dotread_init(&sc, &lim, true, false, out);
    dotread_feed(&sc, data.ptr, data.len, &used);
    dotread_finish(&sc);
    if (!dotread_failed(&sc))
        return MTA_PICKUP_OK;
    *why_r = sc.oversize        ? "message too large"
             : sc.bare_lf       ? "bare <LF> in the message"
             : sc.bare_cr       ? "bare <CR> in the message"
             : sc.line_too_long ? "line too long in the message"
                                : "header section too large";
    return MTA_PICKUP_BAD_MESSAGE;
}

enum mta_pickup_verdict mta_pickup_check(const struct wharf_config *cfg,
                                         const struct maildrop_entry *e, const char **why_r)
{
    bool utf8;
    enum mta_pickup_verdict v = check_addresses(cfg, e, &utf8, why_r);
    if (v != MTA_PICKUP_OK)
        return v;
    struct buf scratch = BUF_INIT;
    v = scan_message(cfg, buf_slice(&e->data), &scratch, why_r);
    buf_free(&scratch);
    return v;
}

enum mta_pickup_verdict mta_pickup_convert(const struct wharf_config *cfg, const char *id,
                                           const struct maildrop_entry *e,
                                           const struct mta_pickup_origin *o,
                                           struct spool_message *sm_r, bool *sender_set_r,
                                           const char **why_r)
{
    bool utf8;
    enum mta_pickup_verdict v = check_addresses(cfg, e, &utf8, why_r);
    if (v != MTA_PICKUP_OK)
        return v;
    struct buf data = BUF_INIT, own = BUF_INIT;
    char date[64], who[32];
    date_rfc5322_format(o->arrival, date, sizeof(date));
    snprintf(who, sizeof(who), "uid %u", (unsigned)o->uid);
    /* what sendmail sends without -f (a uid without a name: as "nobody") */
    buf_printf(&own, "%s@%s", o->user ? o->user : "nobody", cfg->myhostname);
    *sender_set_r = strcmp(e->sender, buf_cstr(&own)) != 0;
    buf_free(&own);
    struct slice msg = buf_slice(&e->data);
    buf_reserve(&data, msg.len + 512);
    /* Postfix's shape for a local submission: the uid, never a host */
    buf_printf(&data, "Received: by %s (Wharf, from userid %u)\r\n\tid %s; %s\r\n", cfg->myhostname,
               (unsigned)o->uid, id, date);
    if (*sender_set_r && !o->trusted) /* as sendmail marks it */
        buf_printf(&data, "X-Authentication-Warning: %s: %s set sender to <%s> using -f\r\n",
                   cfg->myhostname, o->user ? o->user : who, e->sender);
    if (!smtp_header_present(msg, "Message-ID"))
        buf_printf(&data, "Message-ID: <%s@%s>\r\n", id, cfg->myhostname);
    if (!smtp_header_present(msg, "Date"))
        buf_printf(&data, "Date: %s\r\n", date);
    v = scan_message(cfg, msg, &data, why_r);
    if (v != MTA_PICKUP_OK) {
        buf_free(&data);
        return v;
    }
    memset(sm_r, 0, sizeof(*sm_r));
    struct spool_envelope *env = &sm_r->env;
    snprintf(env->id, sizeof(env->id), "%s", id);
    env->sender = xstrdup(e->sender);
    env->rcpts = xcalloc(e->n_rcpts, sizeof(*env->rcpts));
    for (size_t i = 0; i < e->n_rcpts; i++)
        env->rcpts[i].address = xstrdup(e->rcpts[i]);
    env->n_rcpts = e->n_rcpts;
    env->body = has_8bit(msg) ? SPOOL_BODY_8BITMIME : SPOOL_BODY_7BIT;
    env->smtputf8 = utf8;
    env->client = xstrdup("local");
    env->arrival = (int64_t)o->arrival;
    sm_r->data = data;
    return MTA_PICKUP_OK;
}
