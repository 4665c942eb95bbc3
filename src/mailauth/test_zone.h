/*
 * test_zone.h - unit tests only: answers the questions a check left in a
 * struct authdns from a fixed table, as the smtp worker does from DNS.
 */
#ifndef WHARF_MAILAUTH_TEST_ZONE_H
#define WHARF_MAILAUTH_TEST_ZONE_H

#include "mailauth/authdns.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

struct zone_rr {
    const char *name;
    int type;        /* AUTHDNS_*; 0 ends the table */
    const char *val; /* A/AAAA: address; TXT: text; MX: "PREF host"; PTR: host; "SERVFAIL" */
};

static inline void zone_name_rdata(const char *host, unsigned char *out, size_t *len)
{
    size_t n = 0;
    const char *p = host;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        out[n++] = (unsigned char)l;
        memcpy(out + n, p, l);
        n += l;
        p += l + (dot ? 1 : 0);
    }
    out[n++] = 0;
    *len = n;
}

/* Answers every WANTED question from zone; returns how many it answered. */
static inline size_t zone_answer(struct authdns *d, const struct zone_rr *zone)
{
    size_t answered = 0;
    for (size_t i = 0; i < d->n; i++) {
        struct authdns_answer *a = &d->a[i];
        if (a->status != AUTHDNS_WANTED)
            continue;
        answered++;
        bool exists = false, servfail = false;
        for (const struct zone_rr *z = zone; z->type; z++) {
            if (strcasecmp(z->name, a->name) != 0)
                continue;
            exists = true;
            if (strcmp(z->val, "SERVFAIL") == 0)
                servfail = true;
            if (z->type != a->type || servfail)
                continue;
            unsigned char rd[1024];
            size_t len = 0;
            if (z->type == AUTHDNS_A)
                inet_pton(AF_INET, z->val, rd), len = 4;
            else if (z->type == AUTHDNS_AAAA)
                inet_pton(AF_INET6, z->val, rd), len = 16;
            else if (z->type == AUTHDNS_TXT) {
                size_t tl = strlen(z->val);
                for (size_t k = 0; k < tl; k += 255) {
                    size_t c = tl - k < 255 ? tl - k : 255;
                    rd[len++] = (unsigned char)c;
                    memcpy(rd + len, z->val + k, c);
                    len += c;
                }
            } else if (z->type == AUTHDNS_MX) {
                int pref = atoi(z->val);
                rd[0] = (unsigned char)(pref >> 8), rd[1] = (unsigned char)pref;
                zone_name_rdata(strchr(z->val, ' ') + 1, rd + 2, &len);
                len += 2;
            } else if (z->type == AUTHDNS_PTR) {
                zone_name_rdata(z->val, rd, &len);
            }
            authdns_add(d, i, rd, len);
        }
        authdns_set(d, i, servfail ? AUTHDNS_TEMPFAIL : exists ? AUTHDNS_OK : AUTHDNS_NXDOMAIN);
    }
    return answered;
}

/* True when name was asked for (any type). */
static inline bool zone_asked(const struct authdns *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcasecmp(d->a[i].name, name) == 0)
            return true;
    return false;
}

#endif
