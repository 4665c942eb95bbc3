/*
 * spf.c - SPF check_host() (RFC 7208) over the answers of a struct authdns
 * (see spf.h). Each run starts from the top: the counters of DNS-querying
 * terms and void lookups come out the same on every run, so the answers
 * decide the result and the order of runs does not.
 *
 * Must never recurse past SPF_LOOKUP_LIMIT includes or redirects, read past
 * a term, or call a temporary DNS failure anything but temperror.
 */
#include "mailauth/spf.h"

#include "base/alloc.h"
#include "net/dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *spf_result_name(enum spf_result r)
{
    static const char *const names[] = {"none",     "neutral",   "pass",     "fail",
                                        "softfail", "temperror", "permerror"};
    return names[r];
}

bool spf_ip_parse(const char *s, struct spf_ip *ip_r)
{
    memset(ip_r, 0, sizeof(*ip_r));
    if (inet_pton(AF_INET, s, ip_r->addr) == 1) {
        ip_r->family = AF_INET;
        return true;
    }
    uint8_t a6[16];
    if (inet_pton(AF_INET6, s, a6) != 1)
        return false;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a6, mapped, 12) == 0) {
        ip_r->family = AF_INET;
        memcpy(ip_r->addr, a6 + 12, 4);
    } else {
        ip_r->family = AF_INET6;
        memcpy(ip_r->addr, a6, 16);
    }
    return true;
}

/* ---- evaluation context ---- */

struct ctx {
    const struct spf_input *in;
    struct authdns *dns;
    int lookups, voids;
    bool need;
    const char *why;
    char sender[600];
    const char *local, *sdomain; /* into sender_copy */
    char sender_copy[600];
};

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

/* ---- macros (section 7) ---- */

static bool is_delim(char c)
{
    return strchr(".-+,/_=", c) != NULL && c != '\0';
}

static void ip_text(const struct spf_ip *ip, bool dotted_nibbles, struct buf *out)
{
    if (ip->family == AF_INET) {
        buf_printf(out, "%u.%u.%u.%u", ip->addr[0], ip->addr[1], ip->addr[2], ip->addr[3]);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        if (i > 0 && dotted_nibbles)
            buf_append_byte(out, '.');
        buf_append_byte(out, hex[ip->addr[i] >> 4]);
        if (dotted_nibbles)
            buf_append_byte(out, '.');
        buf_append_byte(out, hex[ip->addr[i] & 15]);
    }
}

static void url_escape(struct slice s, struct buf *out)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            buf_append_byte(out, (char)c);
        else
            buf_printf(out, "%%%02X", c);
    }
}

/* Expands one macro-string; false on a syntax error. */
static bool expand(struct ctx *c, struct slice spec, const char *domain, struct buf *out)
{
    for (size_t i = 0; i < spec.len; i++) {
        char ch = spec.ptr[i];
        if (ch != '%') {
            unsigned char u = (unsigned char)ch;
            if (u < 0x21 || u > 0x7e)
                return false;
            buf_append_byte(out, ch);
            continue;
        }
        if (++i >= spec.len)
            return false;
        ch = spec.ptr[i];
        if (ch == '%') {
            buf_append_byte(out, '%');
            continue;
        }
        if (ch == '_') {
            buf_append_byte(out, ' ');
            continue;
        }
        if (ch == '-') {
            buf_append_cstr(out, "%20");
            continue;
        }
        if (ch != '{' || ++i >= spec.len)
            return false;
        char letter = spec.ptr[i++];
        bool upper = isupper((unsigned char)letter);
        struct buf val = BUF_INIT;
        switch (tolower((unsigned char)letter)) {
        case 's':
            buf_append_cstr(&val, c->sender);
            break;
        case 'l':
            buf_append_cstr(&val, c->local);
            break;
        case 'o':
            buf_append_cstr(&val, c->sdomain);
            break;
        case 'd':
            buf_append_cstr(&val, domain);
            break;
        case 'i':
            ip_text(&c->in->ip, true, &val);
            break;
        case 'p':
            buf_append_cstr(&val, "unknown"); /* 7.3: not validated here */
            break;
        case 'v':
            buf_append_cstr(&val, c->in->ip.family == AF_INET ? "in-addr" : "ip6");
            break;
        case 'h':
            buf_append_cstr(&val, c->in->helo ? c->in->helo : "");
            break;
        default: /* c, r, t are for exp= only */
            buf_free(&val);
            return false;
        }
        unsigned keep = 0;
        bool digits = false, rev = false;
        while (i < spec.len && isdigit((unsigned char)spec.ptr[i])) {
            keep = keep * 10 + (unsigned)(spec.ptr[i++] - '0');
            if (keep > 1000) {
                buf_free(&val);
                return false;
            }
            digits = true;
        }
        if (digits && keep == 0) {
            buf_free(&val);
            return false;
        }
        if (i < spec.len && (spec.ptr[i] == 'r' || spec.ptr[i] == 'R')) {
            rev = true;
            i++;
        }
        char delims[16];
        size_t nd = 0;
        while (i < spec.len && spec.ptr[i] != '}') {
            if (!is_delim(spec.ptr[i]) || nd + 1 >= sizeof(delims)) {
                buf_free(&val);
                return false;
            }
            delims[nd++] = spec.ptr[i++];
        }
        if (i >= spec.len) {
            buf_free(&val);
            return false;
        }
        if (nd == 0)
            delims[nd++] = '.';
        delims[nd] = '\0';
        /* split, maybe reverse, keep the rightmost `keep`, join with dots */
        struct slice parts[128];
        size_t np = 0, st = 0;
        for (size_t k = 0; k <= val.len && np < 128; k++)
            if (k == val.len || strchr(delims, val.data[k]) != NULL) {
                parts[np++] = slice_make(val.data + st, k - st);
                st = k + 1;
            }
        if (rev)
            for (size_t a = 0, b = np ? np - 1 : 0; a < b; a++, b--) {
                struct slice t = parts[a];
                parts[a] = parts[b];
                parts[b] = t;
            }
        size_t from = digits && keep < np ? np - keep : 0;
        for (size_t k = from; k < np; k++) {
            if (k > from)
                buf_append_byte(out, '.');
            if (upper)
                url_escape(parts[k], out);
            else
                buf_append_slice(out, parts[k]);
        }
        buf_free(&val);
    }
    return true;
}

/* The syntax of a macro-string (exp= may use c, r, t too). */
static bool macro_syntax_ok(struct slice spec)
{
    for (size_t i = 0; i < spec.len; i++) {
        unsigned char ch = (unsigned char)spec.ptr[i];
        if (ch < 0x21 || ch > 0x7e)
            return false;
        if (ch != '%')
            continue;
        if (++i >= spec.len)
            return false;
        ch = (unsigned char)spec.ptr[i];
        if (ch == '%' || ch == '_' || ch == '-')
            continue;
        if (ch != '{' || ++i >= spec.len || strchr("slodiphvcrtSLODIPHVCRT", spec.ptr[i]) == NULL)
            return false;
        i++;
        size_t nd = 0;
        bool zero = false;
        while (i < spec.len && isdigit((unsigned char)spec.ptr[i])) {
            zero = nd == 0 && spec.ptr[i] == '0';
            nd++, i++;
        }
        if ((nd > 0 && zero && nd == 1) || nd > 3)
            return false;
        if (i < spec.len && (spec.ptr[i] == 'r' || spec.ptr[i] == 'R'))
            i++;
        while (i < spec.len && is_delim(spec.ptr[i]))
            i++;
        if (i >= spec.len || spec.ptr[i] != '}')
            return false;
    }
    return true;
}

/* A domain-spec expanded, cut to 253 octets from the left (7.3). */
static bool expand_domain(struct ctx *c, struct slice spec, const char *domain, struct buf *out)
{
    if (!expand(c, spec, domain, out))
        return false;
    while (out->len > 253) {
        const char *dot = memchr(out->data, '.', out->len);
        if (dot == NULL)
            return false;
        buf_consume(out, (size_t)(dot - out->data) + 1);
    }
    while (out->len > 0 && out->data[out->len - 1] == '.')
        out->data[--out->len] = '\0';
    return out->len > 0;
}

/* ---- terms ---- */

enum mech { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

struct term {
    bool modifier;
    char qual;
    enum mech mech;
    struct slice name; /* modifier name */
    struct slice arg;  /* domain-spec, network or modifier value; len 0 when absent */
    bool has_arg;
    unsigned cidr4, cidr6;
};

static bool parse_cidr(struct slice *s, unsigned *v4, unsigned *v6, bool dual)
{
    /* from the end: "/N", "//N", "/N//M" */
    *v4 = 32, *v6 = 128;
    const char *p = s->ptr, *e = s->ptr + s->len;
    const char *slash = NULL;
    for (const char *q = p; q < e; q++)
        if (*q == '/') {
            slash = q;
            break;
        }
    if (slash == NULL)
        return true;
    struct slice rest = slice_make(slash, (size_t)(e - slash));
    s->len = (size_t)(slash - p);
    size_t i = 0;
    unsigned *target = v4;
    while (i < rest.len) {
        if (rest.ptr[i] != '/')
            return false;
        i++;
        if (dual && i < rest.len && rest.ptr[i] == '/') {
            i++;
            target = v6;
        } else if (target == v6) {
            return false; /* "/N" after "//M" */
        }
        unsigned v = 0;
        size_t nd = 0;
        while (i < rest.len && isdigit((unsigned char)rest.ptr[i]) && nd < 4) {
            v = v * 10 + (unsigned)(rest.ptr[i++] - '0');
            nd++;
        }
        if (nd == 0 || (nd > 1 && rest.ptr[i - nd] == '0'))
            return false;
        if (v > (target == v4 ? 32u : 128u))
            return false;
        *target = v;
        if (target == v4)
            target = v6; /* only "//M" may follow */
        if (i < rest.len && !(dual && rest.ptr[i] == '/'))
            return false;
    }
    return true;
}

static bool parse_term(struct slice t, struct term *out)
{
    memset(out, 0, sizeof(*out));
    out->cidr4 = 32, out->cidr6 = 128;
    size_t i = 0;
    if (t.len > 0 && strchr("+-~?", t.ptr[0]) != NULL) {
        out->qual = t.ptr[0];
        i = 1;
    } else {
        out->qual = '+';
    }
    size_t ns = i;
    if (i >= t.len || !isalpha((unsigned char)t.ptr[i]))
        return false;
    while (i < t.len && (isalnum((unsigned char)t.ptr[i]) || t.ptr[i] == '-' || t.ptr[i] == '_' ||
                         t.ptr[i] == '.'))
        i++;
    struct slice name = slice_make(t.ptr + ns, i - ns);
    if (i < t.len && t.ptr[i] == '=') {
        if (ns != 0)
            return false; /* a modifier has no qualifier */
        out->modifier = true;
        out->name = name;
        out->arg = slice_make(t.ptr + i + 1, t.len - i - 1);
        out->has_arg = true;
        return true;
    }
    static const struct {
        const char *n;
        enum mech m;
    } mechs[] = {{"all", M_ALL}, {"include", M_INCLUDE}, {"a", M_A},     {"mx", M_MX},
                 {"ptr", M_PTR}, {"ip4", M_IP4},         {"ip6", M_IP6}, {"exists", M_EXISTS}};
    size_t k = 0;
    for (; k < sizeof(mechs) / sizeof(mechs[0]); k++)
        if (slice_eq_cstr_nocase(name, mechs[k].n))
            break;
    if (k == sizeof(mechs) / sizeof(mechs[0]))
        return false; /* unknown mechanism: permerror (5) */
    out->mech = mechs[k].m;
    struct slice rest = slice_make(t.ptr + i, t.len - i);
    if (rest.len > 0 && rest.ptr[0] == ':') {
        out->has_arg = true;
        out->arg = slice_make(rest.ptr + 1, rest.len - 1);
        if (out->arg.len == 0)
            return false;
    } else if (rest.len > 0 && rest.ptr[0] != '/') {
        return false;
    } else {
        out->arg = rest; /* maybe a CIDR suffix */
    }
    switch (out->mech) {
    case M_ALL:
        return rest.len == 0;
    case M_INCLUDE:
    case M_EXISTS:
        return out->has_arg;
    case M_PTR:
        return rest.len == 0 || out->has_arg;
    case M_A:
    case M_MX:
        if (!parse_cidr(&out->arg, &out->cidr4, &out->cidr6, true))
            return false;
        if (out->has_arg && out->arg.len == 0)
            return false;
        return true;
    case M_IP4:
    case M_IP6: {
        if (!out->has_arg)
            return false;
        unsigned max = out->mech == M_IP4 ? 32 : 128, len = max;
        const char *slash = memchr(out->arg.ptr, '/', out->arg.len);
        if (slash != NULL) {
            struct slice d =
                slice_make(slash + 1, out->arg.len - (size_t)(slash + 1 - out->arg.ptr));
            if (d.len == 0 || d.len > 3 || (d.len > 1 && d.ptr[0] == '0'))
                return false;
            len = 0;
            for (size_t j = 0; j < d.len; j++) {
                if (!isdigit((unsigned char)d.ptr[j]))
                    return false;
                len = len * 10 + (unsigned)(d.ptr[j] - '0');
            }
            if (len > max)
                return false;
            out->arg.len = (size_t)(slash - out->arg.ptr);
        }
        char tmp[64];
        if (out->arg.len == 0 || out->arg.len >= sizeof(tmp))
            return false;
        memcpy(tmp, out->arg.ptr, out->arg.len);
        tmp[out->arg.len] = '\0';
        uint8_t a[16];
        if (inet_pton(out->mech == M_IP4 ? AF_INET : AF_INET6, tmp, a) != 1)
            return false;
        if (out->mech == M_IP4)
            out->cidr4 = len;
        else
            out->cidr6 = len;
        return true;
    }
    }
    return false;
}

/* Splits a record into terms (SP-separated); false on a syntax error. */
#define SPF_TERMS_MAX 64
static bool macro_syntax_ok(struct slice spec);

static bool split_terms(struct slice rec, struct term *terms, size_t *n_r,
                        const struct term **redirect_r)
{
    size_t n = 0, i = 6; /* after "v=spf1" */
    *redirect_r = NULL;
    bool exp = false;
    while (i < rec.len) {
        while (i < rec.len && rec.ptr[i] == ' ')
            i++;
        size_t st = i;
        while (i < rec.len && rec.ptr[i] != ' ')
            i++;
        if (i == st)
            break;
        if (n == SPF_TERMS_MAX || !parse_term(slice_make(rec.ptr + st, i - st), &terms[n]))
            return false;
        if (terms[n].has_arg && !(terms[n].mech == M_IP4 || terms[n].mech == M_IP6) &&
            !macro_syntax_ok(terms[n].arg))
            return false;
        if (terms[n].modifier) {
            if (slice_eq_cstr_nocase(terms[n].name, "redirect")) {
                if (*redirect_r != NULL || terms[n].arg.len == 0)
                    return false;
                *redirect_r = &terms[n];
            } else if (slice_eq_cstr_nocase(terms[n].name, "exp")) {
                if (exp || terms[n].arg.len == 0)
                    return false;
                exp = true;
            }
        }
        n++;
    }
    *n_r = n;
    return true;
}

static bool is_spf_record(struct slice t)
{
    return t.len >= 6 && strncasecmp(t.ptr, "v=spf1", 6) == 0 && (t.len == 6 || t.ptr[6] == ' ');
}

bool spf_record_valid(struct slice record)
{
    if (!is_spf_record(record))
        return false;
    struct term terms[SPF_TERMS_MAX];
    size_t n;
    const struct term *redirect;
    return split_terms(record, terms, &n, &redirect);
}

/* ---- check_host ---- */

static enum spf_result check_host(struct ctx *c, const char *domain, int depth);

static const struct authdns_answer *lookup(struct ctx *c, const char *name, int type)
{
    const struct authdns_answer *a = authdns_get(c->dns, name, type);
    if (a == NULL)
        c->need = true;
    return a;
}

/* 1: match, 0: no match, -1: result in *r (an error), -2: need answers */
static int addr_match(struct ctx *c, const struct authdns_answer *a, unsigned cidr4, unsigned cidr6)
{
    for (size_t k = 0; k < a->n; k++) {
        struct slice rr = authdns_record(a, k);
        if (c->in->ip.family == AF_INET && a->type == AUTHDNS_A && rr.len == 4 &&
            prefix_match((const uint8_t *)rr.ptr, c->in->ip.addr, cidr4))
            return 1;
        if (c->in->ip.family == AF_INET6 && a->type == AUTHDNS_AAAA && rr.len == 16 &&
            prefix_match((const uint8_t *)rr.ptr, c->in->ip.addr, cidr6))
            return 1;
    }
    return 0;
}

/* Counts a DNS-querying term; false when over the limit. */
static bool count_lookup(struct ctx *c)
{
    if (++c->lookups > SPF_LOOKUP_LIMIT) {
        c->why = "more than 10 DNS lookups";
        return false;
    }
    return true;
}

/* A term's own query answered NXDOMAIN or nothing: false when over the limit. */
static bool count_void(struct ctx *c, const struct authdns_answer *a)
{
    if (a->status == AUTHDNS_NXDOMAIN || (a->status == AUTHDNS_OK && a->n == 0)) {
        if (++c->voids > SPF_VOID_LIMIT) {
            c->why = "more than 2 void lookups";
            return false;
        }
    }
    return true;
}

static bool name_within(const char *name, const char *dom)
{
    size_t n = strlen(name), d = strlen(dom);
    return strcasecmp(name, dom) == 0 ||
           (n > d && name[n - d - 1] == '.' && strcasecmp(name + n - d, dom) == 0);
}

/* Evaluates one mechanism: 1 match, 0 no match, -1 error (*err), -2 need. */
static int mechanism(struct ctx *c, const struct term *t, const char *domain, int depth,
                     enum spf_result *err)
{
    int atype = c->in->ip.family == AF_INET ? AUTHDNS_A : AUTHDNS_AAAA;
    struct buf target = BUF_INIT;
    int rc = 0;
    *err = SPF_PERMERROR;
    if (t->mech != M_ALL && t->mech != M_IP4 && t->mech != M_IP6) {
        if (!count_lookup(c)) /* include, a, mx, ptr, exists (4.6.4) */
            return -1;
        if (t->has_arg) {
            if (!expand_domain(c, t->arg, domain, &target)) {
                c->why = "bad macro";
                buf_free(&target);
                return -1;
            }
        } else {
            buf_append_cstr(&target, domain);
        }
    }
    switch (t->mech) {
    case M_ALL:
        rc = 1;
        break;
    case M_IP4:
    case M_IP6: {
        char tmp[64];
        memcpy(tmp, t->arg.ptr, t->arg.len);
        tmp[t->arg.len] = '\0';
        uint8_t a[16];
        if (t->mech == M_IP4)
            rc = c->in->ip.family == AF_INET && inet_pton(AF_INET, tmp, a) == 1 &&
                 prefix_match(a, c->in->ip.addr, t->cidr4);
        else
            rc = c->in->ip.family == AF_INET6 && inet_pton(AF_INET6, tmp, a) == 1 &&
                 prefix_match(a, c->in->ip.addr, t->cidr6);
        break;
    }
    case M_INCLUDE: {
        enum spf_result r = check_host(c, buf_cstr(&target), depth + 1);
        if (c->need)
            rc = -2;
        else if (r == SPF_PASS)
            rc = 1;
        else if (r == SPF_FAIL || r == SPF_SOFTFAIL || r == SPF_NEUTRAL)
            rc = 0;
        else {
            *err = r == SPF_TEMPERROR ? SPF_TEMPERROR : SPF_PERMERROR;
            if (r == SPF_NONE)
                c->why = "included domain has no SPF record";
            rc = -1;
        }
        break;
    }
    case M_A:
    case M_EXISTS: {
        const struct authdns_answer *a =
            lookup(c, buf_cstr(&target), t->mech == M_EXISTS ? AUTHDNS_A : atype);
        if (a == NULL)
            rc = -2;
        else if (a->status == AUTHDNS_TEMPFAIL) {
            *err = SPF_TEMPERROR;
            c->why = "DNS failure";
            rc = -1;
        } else if (!count_void(c, a))
            rc = -1;
        else if (t->mech == M_EXISTS)
            rc = a->status == AUTHDNS_OK && a->n > 0;
        else
            rc = addr_match(c, a, t->cidr4, t->cidr6);
        break;
    }
    case M_MX: {
        const struct authdns_answer *a = lookup(c, buf_cstr(&target), AUTHDNS_MX);
        if (a == NULL) {
            rc = -2;
            break;
        }
        if (a->status == AUTHDNS_TEMPFAIL) {
            *err = SPF_TEMPERROR;
            c->why = "DNS failure";
            rc = -1;
            break;
        }
        if (!count_void(c, a)) {
            rc = -1;
            break;
        }
        if (a->n > SPF_NAMES_LIMIT) {
            c->why = "more than 10 MX names";
            rc = -1;
            break;
        }
        bool missing = false;
        struct buf host = BUF_INIT;
        for (size_t k = 0; k < a->n && rc == 0; k++) {
            struct slice rr = authdns_record(a, k);
            int pref;
            if (!dns_mx_rdata_parse((const unsigned char *)rr.ptr, rr.len, &pref, &host) ||
                host.len == 0)
                continue;
            const struct authdns_answer *h = lookup(c, buf_cstr(&host), atype);
            if (h == NULL) {
                missing = true;
                continue;
            }
            if (h->status == AUTHDNS_TEMPFAIL) {
                *err = SPF_TEMPERROR;
                c->why = "DNS failure";
                rc = -1;
                break;
            }
            rc = addr_match(c, h, t->cidr4, t->cidr6);
        }
        buf_free(&host);
        if (rc == 0 && missing)
            rc = -2;
        break;
    }
    case M_PTR: {
        struct buf rev = BUF_INIT;
        dns_reverse_name(c->in->ip.family, c->in->ip.addr, NULL, &rev);
        const struct authdns_answer *a = lookup(c, buf_cstr(&rev), AUTHDNS_PTR);
        buf_free(&rev);
        if (a == NULL) {
            rc = -2;
            break;
        }
        if (a->status == AUTHDNS_TEMPFAIL) { /* 5.5: a PTR failure is no match */
            rc = 0;
            break;
        }
        if (!count_void(c, a)) {
            rc = -1;
            break;
        }
        bool missing = false;
        struct buf name = BUF_INIT;
        for (size_t k = 0; k < a->n && k < SPF_NAMES_LIMIT && rc == 0; k++) {
            struct slice rr = authdns_record(a, k);
            size_t used;
            if (!dns_name_parse((const unsigned char *)rr.ptr, rr.len, &used, &name) ||
                name.len == 0)
                continue;
            if (!name_within(buf_cstr(&name), buf_cstr(&target)))
                continue;
            const struct authdns_answer *h = lookup(c, buf_cstr(&name), atype);
            if (h == NULL) {
                missing = true;
                continue;
            }
            rc = h->status == AUTHDNS_OK && addr_match(c, h, 32, 128);
        }
        buf_free(&name);
        if (rc == 0 && missing)
            rc = -2;
        break;
    }
    }
    buf_free(&target);
    return rc;
}

static enum spf_result qualified(char q)
{
    return q == '-' ? SPF_FAIL : q == '~' ? SPF_SOFTFAIL : q == '?' ? SPF_NEUTRAL : SPF_PASS;
}

static enum spf_result check_host(struct ctx *c, const char *domain, int depth)
{
    if (depth > SPF_LOOKUP_LIMIT + 1) {
        c->why = "too deep";
        return SPF_PERMERROR;
    }
    const struct authdns_answer *a = lookup(c, domain, AUTHDNS_TXT);
    if (a == NULL)
        return SPF_NONE;
    if (a->status == AUTHDNS_TEMPFAIL) {
        c->why = "DNS failure looking up the SPF record";
        return SPF_TEMPERROR;
    }
    if (a->status == AUTHDNS_NXDOMAIN)
        return SPF_NONE;
    size_t found = 0;
    struct slice rec = {0};
    for (size_t k = 0; k < a->n; k++) {
        struct slice t = authdns_record(a, k);
        if (is_spf_record(t)) {
            rec = t;
            found++;
        }
    }
    if (found == 0)
        return SPF_NONE;
    if (found > 1) {
        c->why = "more than one SPF record";
        return SPF_PERMERROR;
    }
    struct term terms[SPF_TERMS_MAX];
    size_t n;
    const struct term *redirect;
    if (!split_terms(rec, terms, &n, &redirect)) {
        c->why = "SPF record syntax error";
        return SPF_PERMERROR;
    }
    bool has_all = false;
    for (size_t k = 0; k < n; k++) {
        if (terms[k].modifier)
            continue;
        if (terms[k].mech == M_ALL)
            has_all = true;
        enum spf_result err;
        int m = mechanism(c, &terms[k], domain, depth, &err);
        if (m == -2 || c->need)
            return SPF_NONE;
        if (m == -1)
            return err;
        if (m == 1)
            return qualified(terms[k].qual);
    }
    if (redirect != NULL && !has_all) {
        if (!count_lookup(c))
            return SPF_PERMERROR;
        struct buf target = BUF_INIT;
        if (!expand_domain(c, redirect->arg, domain, &target)) {
            buf_free(&target);
            c->why = "bad macro";
            return SPF_PERMERROR;
        }
        enum spf_result r = check_host(c, buf_cstr(&target), depth + 1);
        buf_free(&target);
        if (c->need)
            return SPF_NONE;
        if (r == SPF_NONE) {
            c->why = "redirect to a domain without an SPF record";
            return SPF_PERMERROR;
        }
        return r;
    }
    return SPF_NEUTRAL;
}

void spf_check(const struct spf_input *in, struct authdns *dns, struct spf_outcome *out)
{
    struct ctx c = {.in = in, .dns = dns};
    memset(out, 0, sizeof(*out));
    const char *sender = in->sender;
    const char *helo = in->helo ? in->helo : "";
    if (sender == NULL || sender[0] == '\0' || strchr(sender, '@') == NULL)
        snprintf(c.sender, sizeof(c.sender), "postmaster@%s",
                 sender && sender[0] && !strchr(sender, '@') ? sender : helo);
    else
        snprintf(c.sender, sizeof(c.sender), "%s", sender);
    memcpy(c.sender_copy, c.sender, sizeof(c.sender));
    char *at = strrchr(c.sender_copy, '@');
    *at = '\0';
    c.local = c.sender_copy;
    c.sdomain = at + 1;
    snprintf(out->domain, sizeof(out->domain), "%s", c.sdomain);
    enum spf_result r;
    /* 4.3: a domain that is not a usable name has no SPF record */
    if (c.sdomain[0] == '\0' || strchr(c.sdomain, '.') == NULL)
        r = SPF_NONE;
    else
        r = check_host(&c, c.sdomain, 0);
    if (c.need)
        return;
    out->done = true;
    out->result = r;
    if (c.why)
        snprintf(out->reason, sizeof(out->reason), "%s", c.why);
}
