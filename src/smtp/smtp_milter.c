/*
 * smtp_milter.c - the milter client (see smtp_milter.h): one conversation
 * per filter and message, driven step by step by the filter's replies.
 *
 * Must never wait for a reply the filter said it would not send (the NR_
 * protocol flags), send a step it asked not to see (the NO flags), or
 * accept a modification it was not offered.
 */
#include "smtp/smtp_milter.h"
#include "base/clock.h"

#include "base/alloc.h"
#include "base/log.h"
#include "mailauth/dkim.h"
#include "smtp/milter_proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#define OFFERED_ACTIONS (MILTER_F_ADDHDRS | MILTER_F_CHGHDRS | MILTER_F_QUARANTINE)

enum default_action { DEF_TEMPFAIL, DEF_ACCEPT, DEF_REJECT };

struct milter_addr {
    char *spec; /* as configured, for the log */
    struct sockaddr_storage sa;
    int salen;
};

struct smtp_milters {
    struct event_base *base;
    const struct wharf_config *cfg;
    struct milter_addr *addr;
    size_t n;
    enum default_action def;
};

/* The steps of one conversation, in order. */
enum step {
    S_OPTNEG,
    S_CONNECT,
    S_HELO,
    S_MAIL,
    S_RCPT,
    S_DATA,
    S_HEADER,
    S_EOH,
    S_BODY,
    S_EOB, /* modifications, then the final answer */
    S_DONE,
};

struct smtp_milter_job {
    struct smtp_milters *m;
    const struct smtp_check_msg *msg;
    struct smtp_check_result *res;
    smtp_milter_cb *cb;
    void *arg;
    struct buf fields;    /* a copy of the checks' own fields: res->header grows */
    struct dkim_msg view; /* the message as the filters see it (work if replaced) */
    struct buf work;      /* the changed message, once a field is changed */
    size_t cur;           /* which filter */
    struct bufferevent *bev;
    struct event *timer, *start_ev, *done_ev;
    struct buf in;
    enum step step;
    size_t item;        /* rcpt, header field or body offset within the step */
    size_t n_hdr;       /* header fields shown: the checks' and the message's */
    struct dkim_msg ff; /* the checks' fields, split */
    uint32_t proto;     /* negotiated protocol flags */
    uint32_t actions;   /* negotiated actions */
    bool waiting;       /* a reply is due */
    bool finished;      /* the verdict is set */
};

static bool parse_addr(const char *spec, struct milter_addr *a)
{
    memset(a, 0, sizeof(*a));
    a->spec = xstrdup(spec);
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;
        const char *path = spec + 5;
        if (path[0] != '/' || strlen(path) >= sizeof(un->sun_path))
            return false;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, strlen(path) + 1);
        a->salen = (int)sizeof(*un);
        return true;
    }
    const char *hp = NULL;
    if (strncmp(spec, "inet:", 5) == 0)
        hp = spec + 5;
    else if (strncmp(spec, "inet6:", 6) == 0)
        hp = spec + 6;
    else
        return false;
    char tmp[300];
    if (strncmp(hp, "localhost:", 10) == 0) {
        snprintf(tmp, sizeof(tmp), "127.0.0.1:%s", hp + 10);
        hp = tmp;
    }
    a->salen = (int)sizeof(a->sa);
    if (evutil_parse_sockaddr_port(hp, (struct sockaddr *)&a->sa, &a->salen) != 0)
        return false;
    const struct sockaddr_in *in = (const struct sockaddr_in *)&a->sa;
    return in->sin_port != 0; /* same offset in sockaddr_in6 */
}

struct smtp_milters *smtp_milters_new(struct event_base *base, const struct wharf_config *cfg,
                                      struct buf *err)
{
    struct smtp_milters *m = xcalloc(1, sizeof(*m));
    m->base = base;
    m->cfg = cfg;
    const char *d = cfg->milter_default_action;
    if (strcmp(d, "tempfail") == 0)
        m->def = DEF_TEMPFAIL;
    else if (strcmp(d, "accept") == 0)
        m->def = DEF_ACCEPT;
    else if (strcmp(d, "reject") == 0)
        m->def = DEF_REJECT;
    else {
        buf_printf(err, "milter_default_action must be tempfail, accept or reject");
        goto fail;
    }
    for (size_t i = 0; i < cfg->milter_services.n; i++) {
        const char *s = cfg->milter_services.v[i];
        if (strcmp(s, "smtp") != 0 && strcmp(s, "submission") != 0 &&
            strcmp(s, "submissions") != 0) {
            buf_printf(err, "milter_services: unknown listener %s (smtp, submission, submissions)",
                       s);
            goto fail;
        }
    }
    m->addr = xcalloc(cfg->milters.n + 1, sizeof(*m->addr));
    for (size_t i = 0; i < cfg->milters.n; i++) {
        m->n++;
        if (!parse_addr(cfg->milters.v[i], &m->addr[i])) {
            buf_printf(err, "milters: %s is not inet:ADDRESS:PORT nor unix:/PATH",
                       cfg->milters.v[i]);
            goto fail;
        }
    }
    return m;
fail:
    smtp_milters_free(m);
    return NULL;
}

void smtp_milters_free(struct smtp_milters *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->addr[i].spec);
    free(m->addr);
    free(m);
}

bool smtp_milters_apply(const struct smtp_milters *m, const char *service)
{
    if (m == NULL || m->n == 0)
        return false;
    for (size_t i = 0; i < m->cfg->milter_services.n; i++)
        if (strcmp(m->cfg->milter_services.v[i], service) == 0)
            return true;
    return false;
}

/* ---- the verdict ---- */

static void set_verdict(struct smtp_milter_job *j, enum smtp_verdict v, const char *reply,
                        const char *why)
{
    struct smtp_check_result *r = j->res;
    r->verdict = v;
    if (reply != NULL)
        snprintf(r->reply, sizeof(r->reply), "%s", reply);
    struct buf b = BUF_INIT; /* the log line, cut to its field */
    buf_printf(&b, "milter %s: %s", j->m->addr[j->cur].spec, why);
    snprintf(r->log, sizeof(r->log), "%.*s", (int)sizeof(r->log) - 1, buf_cstr(&b));
    buf_free(&b);
    j->finished = true;
}

static void conn_close(struct smtp_milter_job *j)
{
    if (j->bev != NULL) {
        bufferevent_free(j->bev);
        j->bev = NULL;
    }
    event_del(j->timer);
    buf_reset(&j->in);
}

static void start_filter(struct smtp_milter_job *j);

/* This filter is over: the next one, or the end. */
static void next_filter(struct smtp_milter_job *j)
{
    if (j->bev != NULL && evbuffer_get_length(bufferevent_get_output(j->bev)) == 0) {
        /* a goodbye on a socket with nothing queued: best effort, never waited for */
        static const char quit[5] = {0, 0, 0, 1, MILTER_C_QUIT};
        (void)!send(bufferevent_getfd(j->bev), quit, sizeof(quit), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    conn_close(j);
    j->cur++;
    if (j->finished || j->cur >= j->m->n) {
        event_active(j->done_ev, EV_TIMEOUT, 0);
        return;
    }
    start_filter(j);
}

/* The filter failed us: milter_default_action. */
static void filter_failed(struct smtp_milter_job *j, const char *why)
{
    log_info("%s: milter %s: %s", j->msg->id, j->m->addr[j->cur].spec, why);
    if (j->m->def == DEF_TEMPFAIL)
        set_verdict(j, SMTP_VERDICT_REJECT, "451 4.7.1 Service unavailable - try again later", why);
    else if (j->m->def == DEF_REJECT)
        set_verdict(j, SMTP_VERDICT_REJECT, "550 5.7.1 Command rejected", why);
    next_filter(j);
}

/* ---- what the filters are shown ---- */

static void send_buf(struct smtp_milter_job *j, struct buf *b)
{
    bufferevent_write(j->bev, b->data, b->len);
    buf_reset(b);
}

/* A header value as Sendmail hands it to filters: line breaks as LF, the
 * leading space dropped unless the filter asked to see it. */
static void header_value(const struct smtp_milter_job *j, struct slice v, struct buf *out)
{
    size_t i = 0;
    if (!(j->proto & MILTER_P_HDR_LEADSPC) && v.len > 0 && v.ptr[0] == ' ')
        i = 1;
    for (; i < v.len; i++)
        if (!(v.ptr[i] == '\r' && i + 1 < v.len && v.ptr[i + 1] == '\n'))
            buf_append_byte(out, v.ptr[i]);
    buf_append_byte(out, '\0');
}

static const struct dkim_field *field_at(const struct smtp_milter_job *j, size_t i)
{
    return i < j->ff.n_fields ? &j->ff.fields[i] : &j->view.fields[i - j->ff.n_fields];
}

/* Sends the packets of the current step; true when a reply is due. */
static bool send_step(struct smtp_milter_job *j)
{
    const struct smtp_check_msg *m = j->msg;
    struct buf b;
    buf_init(&b);
    bool reply = false;
    char tmp[600];
    switch (j->step) {
    case S_OPTNEG: {
        unsigned char o[12];
        uint32_t v[3] = {MILTER_VERSION, OFFERED_ACTIONS, MILTER_P_OFFERED};
        for (int k = 0; k < 3; k++)
            for (int s = 0; s < 4; s++)
                o[4 * k + s] = (unsigned char)(v[k] >> (24 - 8 * s));
        milter_packet(&b, MILTER_C_OPTNEG, o, sizeof(o));
        reply = true;
        break;
    }
    case S_CONNECT: {
        snprintf(tmp, sizeof(tmp), "[%s]", m->client_ip);
        milter_packet_macros(&b, 'C', "j", j->m->cfg->myhostname, "{daemon_name}", m->service, "v",
                             "Wharf", "{client_addr}", m->client_ip, "{client_name}", tmp,
                             (char *)NULL);
        if (j->proto & MILTER_P_NOCONNECT)
            break;
        struct buf c;
        buf_init(&c);
        buf_append(&c, tmp, strlen(tmp) + 1);
        bool v6 = strchr(m->client_ip, ':') != NULL;
        buf_append_byte(&c, v6 ? '6' : '4');
        buf_append_u16(&c, 0); /* the client's port is not kept */
        buf_append(&c, m->client_ip, strlen(m->client_ip) + 1);
        milter_packet(&b, MILTER_C_CONNECT, c.data, c.len);
        buf_free(&c);
        reply = !(j->proto & MILTER_P_NR_CONN);
        break;
    }
    case S_HELO:
        if (j->proto & MILTER_P_NOHELO)
            break;
        milter_packet_strings(&b, MILTER_C_HELO, m->helo ? m->helo : "", (char *)NULL);
        reply = !(j->proto & MILTER_P_NR_HELO);
        break;
    case S_MAIL:
        milter_packet_macros(&b, 'M', "i", m->id, "{mail_addr}", m->sender ? m->sender : "",
                             "{auth_authen}", m->auth_user ? m->auth_user : "", (char *)NULL);
        if (j->proto & MILTER_P_NOMAIL)
            break;
        snprintf(tmp, sizeof(tmp), "<%s>", m->sender ? m->sender : "");
        milter_packet_strings(&b, MILTER_C_MAIL, tmp, (char *)NULL);
        reply = !(j->proto & MILTER_P_NR_MAIL);
        break;
    case S_RCPT:
        milter_packet_macros(&b, 'R', "{rcpt_addr}", m->rcpts[j->item], (char *)NULL);
        if (j->proto & MILTER_P_NORCPT)
            break;
        snprintf(tmp, sizeof(tmp), "<%s>", m->rcpts[j->item]);
        milter_packet_strings(&b, MILTER_C_RCPT, tmp, (char *)NULL);
        reply = !(j->proto & MILTER_P_NR_RCPT);
        break;
    case S_DATA:
        if (j->proto & MILTER_P_NODATA)
            break;
        milter_packet(&b, MILTER_C_DATA, NULL, 0);
        reply = !(j->proto & MILTER_P_NR_DATA);
        break;
    case S_HEADER: {
        if (j->proto & MILTER_P_NOHDRS)
            break;
        const struct dkim_field *f = field_at(j, j->item);
        struct buf h;
        buf_init(&h);
        buf_append_slice(&h, f->name);
        buf_append_byte(&h, '\0');
        header_value(j, f->value, &h);
        milter_packet(&b, MILTER_C_HEADER, h.data, h.len);
        buf_free(&h);
        reply = !(j->proto & MILTER_P_NR_HDR);
        break;
    }
    case S_EOH:
        if (j->proto & MILTER_P_NOEOH)
            break;
        milter_packet(&b, MILTER_C_EOH, NULL, 0);
        reply = !(j->proto & MILTER_P_NR_EOH);
        break;
    case S_BODY: {
        if (j->proto & MILTER_P_NOBODY)
            break;
        size_t n = j->view.body.len - j->item;
        if (n > MILTER_CHUNK_MAX)
            n = MILTER_CHUNK_MAX;
        milter_packet(&b, MILTER_C_BODY, j->view.body.ptr + j->item, n);
        reply = !(j->proto & MILTER_P_NR_BODY);
        break;
    }
    case S_EOB:
        milter_packet_macros(&b, 'E', "i", m->id, (char *)NULL);
        milter_packet(&b, MILTER_C_BODYEOB, NULL, 0);
        reply = true;
        break;
    case S_DONE:
        break;
    }
    if (b.len > 0)
        send_buf(j, &b);
    buf_free(&b);
    return reply;
}

/* Moves to the next step (or the next item of this one). */
static void advance(struct smtp_milter_job *j)
{
    switch (j->step) {
    case S_RCPT:
        if (++j->item < j->msg->n_rcpts)
            return;
        break;
    case S_HEADER:
        if (++j->item < j->n_hdr && !(j->proto & MILTER_P_NOHDRS))
            return;
        break;
    case S_BODY:
        j->item += MILTER_CHUNK_MAX;
        if (j->item < j->view.body.len && !(j->proto & MILTER_P_NOBODY))
            return;
        break;
    default:
        break;
    }
    j->step++;
    j->item = 0;
    if (j->step == S_RCPT && j->msg->n_rcpts == 0)
        j->step++;
    if (j->step == S_HEADER && j->n_hdr == 0)
        j->step++;
    if (j->step == S_BODY && j->view.body.len == 0)
        j->step++;
}

/* Sends steps until one wants a reply. */
static void run(struct smtp_milter_job *j)
{
    while (j->step != S_DONE) {
        if (send_step(j)) {
            j->waiting = true;
            return;
        }
        advance(j);
    }
}

static void restart_timer(struct smtp_milter_job *j)
{
    int64_t ms = j->m->cfg->milter_timeout;
    struct timeval tv = clock_timeval_ms(ms);
    event_add(j->timer, &tv);
}

/* ---- what the filters may change ---- */

/* The message the filters are shown: work once it exists. */
static void view_reset(struct smtp_milter_job *j)
{
    dkim_msg_free(&j->view);
    dkim_msg_init(&j->view, j->res->replaced ? buf_slice(&j->work) : j->msg->message);
    j->n_hdr = j->ff.n_fields + j->view.n_fields;
}

/* "name: value" CRLF, the filter's LF line breaks (Sendmail's form) as CRLF. */
static void field_line(struct buf *out, struct slice name, struct slice value)
{
    buf_append_slice(out, name);
    buf_append_cstr(out, ": ");
    for (size_t i = 0; i < value.len; i++) {
        if (value.ptr[i] == '\n' && (i == 0 || value.ptr[i - 1] != '\r'))
            buf_append_byte(out, '\r');
        buf_append_byte(out, value.ptr[i]);
    }
    buf_append_cstr(out, "\r\n");
}

/* CHGHEADER: the index-th field named name (from 1) gets value, or goes
 * when value is empty; a missing one with a value is added. */
static void change_field(struct smtp_milter_job *j, uint32_t index, struct slice name,
                         struct slice value)
{
    struct slice cur = j->res->replaced ? buf_slice(&j->work) : j->msg->message;
    struct dkim_msg v;
    dkim_msg_init(&v, cur);
    const struct dkim_field *hit = NULL;
    uint32_t seen = 0;
    for (size_t i = 0; i < v.n_fields && hit == NULL; i++)
        if (slice_eq_nocase(v.fields[i].name, name) && ++seen == (index ? index : 1))
            hit = &v.fields[i];
    struct buf out;
    buf_init(&out);
    const char *end = cur.ptr + cur.len;
    if (hit != NULL) {
        buf_append(&out, cur.ptr, (size_t)(hit->name.ptr - cur.ptr));
        const char *after = hit->value.ptr + hit->value.len;
        if (after < end && *after == '\r')
            after++;
        if (after < end && *after == '\n')
            after++;
        if (value.len > 0)
            field_line(&out, hit->name, value);
        buf_append(&out, after, (size_t)(end - after));
    } else {
        buf_append(&out, cur.ptr, cur.len);
        if (value.len > 0) {
            /* RFC 5322 header fields go on top: the field is added like ADDHEADER */
            struct buf top;
            buf_init(&top);
            field_line(&top, name, value);
            buf_append_slice(&top, buf_slice(&out));
            buf_free(&out);
            out = top;
        }
    }
    dkim_msg_free(&v);
    buf_free(&j->work);
    j->work = out;
    j->res->replaced = true;
    view_reset(j);
}

/* ADDHEADER and INSHEADER: on top, with the checks' own fields. */
static void add_field(struct smtp_milter_job *j, struct slice name, struct slice value)
{
    field_line(&j->res->header, name, value);
}

/* REPLYCODE text: its first line, as one final line of reply. */
static void reply_line(struct slice t, char *out, size_t size)
{
    size_t n = 0;
    while (n < t.len && t.ptr[n] != '\r' && t.ptr[n] != '\n')
        n++;
    snprintf(out, size, "%.*s", (int)n, t.ptr);
    if (n > 3)
        out[3] = ' ';
}

/* One reply of the filter. */
static void on_reply(struct smtp_milter_job *j, const struct milter_reply *r)
{
    char why[600];
    if (r->cmd == MILTER_R_PROGRESS) {
        restart_timer(j);
        return;
    }
    if (j->step == S_OPTNEG) {
        if (r->cmd != MILTER_R_OPTNEG) {
            filter_failed(j, "no option negotiation");
            return;
        }
        if ((r->protocol & ~MILTER_P_OFFERED) != 0) {
            /* steps or replies Wharf does not know how to leave out */
            snprintf(why, sizeof(why), "asks for protocol flags 0x%x not offered",
                     (unsigned)(r->protocol & ~MILTER_P_OFFERED));
            filter_failed(j, why);
            return;
        }
        /* filters ask for every action they might take (rspamd: 0x3f); they
         * get those offered, and a use of another one is an error later */
        j->actions = r->actions & OFFERED_ACTIONS;
        j->proto = r->protocol;
        j->waiting = false;
        advance(j);
        run(j);
        return;
    }
    switch (r->cmd) {
    case MILTER_R_CONTINUE:
        if (j->step == S_EOB)
            goto accept;
        j->waiting = false;
        advance(j);
        run(j);
        return;
    case MILTER_R_SKIP:
        if (j->step != S_BODY || !(j->proto & MILTER_P_SKIP))
            break;
        j->waiting = false;
        j->step = S_EOB;
        j->item = 0;
        run(j);
        return;
    case MILTER_R_ACCEPT:
    accept:
        next_filter(j);
        return;
    case MILTER_R_REJECT:
        set_verdict(j, SMTP_VERDICT_REJECT, "550 5.7.1 Command rejected", "reject");
        next_filter(j);
        return;
    case MILTER_R_DISCARD:
        set_verdict(j, SMTP_VERDICT_REJECT, "550 5.7.1 Message refused by a content filter",
                    "discard (refused: Wharf never drops what it answered 250 for)");
        next_filter(j);
        return;
    case MILTER_R_TEMPFAIL:
        set_verdict(j, SMTP_VERDICT_REJECT, "451 4.7.1 Service unavailable - try again later",
                    "tempfail");
        next_filter(j);
        return;
    case MILTER_R_REPLYCODE: {
        char line[512];
        reply_line(r->text, line, sizeof(line));
        set_verdict(j, SMTP_VERDICT_REJECT, line, line);
        next_filter(j);
        return;
    }
    case MILTER_R_QUARANTINE:
        if (j->step != S_EOB || !(j->actions & MILTER_F_QUARANTINE))
            break;
        j->res->verdict = SMTP_VERDICT_QUARANTINE;
        snprintf(j->res->log, sizeof(j->res->log), "milter %s: quarantine: %.*s",
                 j->m->addr[j->cur].spec, (int)(r->text.len > 300 ? 300 : r->text.len),
                 r->text.ptr);
        return;
    case MILTER_R_ADDHEADER:
    case MILTER_R_INSHEADER:
        if (j->step != S_EOB || !(j->actions & MILTER_F_ADDHDRS))
            break;
        add_field(j, r->name, r->value);
        return;
    case MILTER_R_CHGHEADER:
        if (j->step != S_EOB || !(j->actions & MILTER_F_CHGHDRS))
            break;
        change_field(j, r->index, r->name, r->value);
        return;
    default:
        break;
    }
    snprintf(why, sizeof(why), "unexpected reply '%c' at step %d", r->cmd, (int)j->step);
    filter_failed(j, why);
}

/* ---- the connection ---- */

static void on_read(struct bufferevent *bev, void *arg)
{
    struct smtp_milter_job *j = arg;
    struct evbuffer *ib = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(ib);
    buf_reserve(&j->in, n);
    evbuffer_remove(ib, j->in.data + j->in.len, n);
    j->in.len += n;
    size_t cur = j->cur;
    while (j->cur == cur && j->bev != NULL) {
        char cmd = 0;
        struct slice data;
        size_t used = 0;
        enum milter_take t = milter_take(buf_slice(&j->in), &cmd, &data, &used);
        if (t == MILTER_TAKE_MORE)
            return;
        if (t == MILTER_TAKE_BAD) {
            filter_failed(j, "sent a packet of a bad length");
            return;
        }
        struct milter_reply r;
        bool ok = milter_reply_parse(cmd, data, &r);
        if (!ok || !j->waiting) {
            char why[100];
            snprintf(why, sizeof(why), "%s reply '%c'", ok ? "unasked" : "malformed", cmd);
            filter_failed(j, why);
            return;
        }
        restart_timer(j);
        on_reply(j, &r);
        if (j->cur == cur && j->bev != NULL)
            buf_consume(&j->in, used);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct smtp_milter_job *j = arg;
    if (what & BEV_EVENT_CONNECTED) {
        run(j);
        return;
    }
    char why[200];
    snprintf(why, sizeof(why), "%s",
             (what & BEV_EVENT_EOF) ? "closed the connection"
                                    : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    filter_failed(j, why);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    filter_failed(arg, "timed out");
}

static void start_filter(struct smtp_milter_job *j)
{
    const struct milter_addr *a = &j->m->addr[j->cur];
    j->step = S_OPTNEG;
    j->item = 0;
    j->proto = j->actions = 0;
    j->waiting = false;
    view_reset(j);
    j->bev = bufferevent_socket_new(j->m->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(j->bev, on_read, NULL, on_event, j);
    bufferevent_enable(j->bev, EV_READ | EV_WRITE);
    restart_timer(j);
    if (bufferevent_socket_connect(j->bev, (const struct sockaddr *)&a->sa, a->salen) != 0) {
        /* refused at once (a unix socket that is not there): still from the loop */
        bufferevent_free(j->bev);
        j->bev = NULL;
        filter_failed(j, "cannot connect");
    }
}

static void on_start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct smtp_milter_job *j = arg;
    event_free(j->start_ev);
    j->start_ev = NULL;
    start_filter(j);
}

static void job_free(struct smtp_milter_job *j)
{
    conn_close(j);
    event_free(j->timer);
    if (j->start_ev)
        event_free(j->start_ev);
    event_free(j->done_ev);
    dkim_msg_free(&j->view);
    dkim_msg_free(&j->ff);
    buf_free(&j->fields);
    buf_free(&j->in);
    free(j);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct smtp_milter_job *j = arg;
    struct smtp_check_result *res = j->res;
    if (res->replaced) {
        buf_free(&res->message);
        res->message = j->work; /* the caller owns it now */
    } else {
        buf_free(&j->work);
    }
    smtp_milter_cb *cb = j->cb;
    void *cb_arg = j->arg;
    job_free(j);
    cb(cb_arg, res);
}

struct smtp_milter_job *smtp_milter_run(struct smtp_milters *m, const struct smtp_check_msg *msg,
                                        struct slice fields, struct smtp_check_result *res,
                                        smtp_milter_cb *cb, void *arg)
{
    struct smtp_milter_job *j = xcalloc(1, sizeof(*j));
    j->m = m;
    j->msg = msg;
    j->res = res;
    j->cb = cb;
    j->arg = arg;
    buf_init(&j->fields);
    buf_append_slice(&j->fields, fields);
    buf_init(&j->work);
    buf_init(&j->in);
    dkim_msg_init(&j->ff, buf_slice(&j->fields)); /* never into res->header, which grows */
    dkim_msg_init(&j->view, msg->message);
    j->timer = event_new(m->base, -1, 0, on_timeout, j);
    /* the first connection is made from the loop too: the callback never
     * runs inside this call */
    j->start_ev = event_new(m->base, -1, 0, on_start, j);
    j->done_ev = event_new(m->base, -1, 0, on_done, j);
    event_active(j->start_ev, EV_TIMEOUT, 0);
    return j;
}

void smtp_milter_cancel(struct smtp_milter_job *j)
{
    if (j == NULL)
        return;
    buf_free(&j->work);
    job_free(j);
}
