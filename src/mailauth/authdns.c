/*
 * authdns.c - the table of DNS questions and answers of one message's
 * checks (see authdns.h). Never does a lookup itself.
 */
#include "mailauth/authdns.h"

#include "base/alloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void authdns_init(struct authdns *d)
{
    memset(d, 0, sizeof(*d));
}

void authdns_free(struct authdns *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->a[i].name);
        free(d->a[i].off);
        free(d->a[i].len);
        buf_free(&d->a[i].data);
    }
    free(d->a);
    memset(d, 0, sizeof(*d));
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (c <= ' ' || c >= 0x7f || ++label > 63)
            return false;
    }
    return label > 0;
}

static struct authdns_answer *add(struct authdns *d, char *name, int type, enum authdns_status st)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->a = xreallocarray(d->a, d->cap, sizeof(*d->a));
    }
    struct authdns_answer *a = &d->a[d->n++];
    memset(a, 0, sizeof(*a));
    a->name = name;
    a->type = type;
    a->status = st;
    buf_init(&a->data);
    return a;
}

const struct authdns_answer *authdns_get(struct authdns *d, const char *name, int type)
{
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] == '.')
        n--;
    char *low = xstrndup(name, n);
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)low[i]);
    for (size_t i = 0; i < d->n; i++)
        if (d->a[i].type == type && strcmp(d->a[i].name, low) == 0) {
            free(low);
            return d->a[i].status == AUTHDNS_WANTED ? NULL : &d->a[i];
        }
    if (!name_ok(low, n))
        return add(d, low, type, AUTHDNS_NXDOMAIN);
    if (d->n >= AUTHDNS_MAX)
        return add(d, low, type, AUTHDNS_TEMPFAIL);
    add(d, low, type, AUTHDNS_WANTED);
    return NULL;
}

void authdns_set(struct authdns *d, size_t i, enum authdns_status st)
{
    d->a[i].status = st;
}

void authdns_add(struct authdns *d, size_t i, const void *rdata, size_t len)
{
    struct authdns_answer *a = &d->a[i];
    a->off = xreallocarray(a->off, a->n + 1, sizeof(*a->off));
    a->len = xreallocarray(a->len, a->n + 1, sizeof(*a->len));
    size_t start = a->data.len;
    if (a->type == AUTHDNS_TXT) {
        const unsigned char *p = rdata;
        size_t k = 0;
        while (k < len) {
            size_t l = p[k++];
            if (l > len - k)
                l = len - k;
            buf_append(&a->data, p + k, l);
            k += l;
        }
    } else {
        buf_append(&a->data, rdata, len);
    }
    a->off[a->n] = start;
    a->len[a->n] = a->data.len - start;
    a->n++;
}

bool authdns_pending(const struct authdns *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->a[i].status == AUTHDNS_WANTED)
            return true;
    return false;
}
