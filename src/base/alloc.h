/*
 * alloc.h - memory allocation that never returns NULL.
 *
 * Every allocation in Wharf goes through these wrappers. Out of memory is not
 * an error a caller can handle sensibly, so it is handled here, once: the
 * process logs a panic and aborts (the supervisor restarts it). Callers never
 * test for NULL. Size computations that could overflow use the *_array forms.
 */
#ifndef WHARF_BASE_ALLOC_H
#define WHARF_BASE_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* realloc to nmemb * size, aborting on multiplication overflow. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/* Overwrites the string s (a password, a hash, a token), then frees it; NULL: nothing. */
void xfree_secret(char *s);

/* Gives the heap's free pages back to the system, which glibc keeps otherwise
 * (malloc_trim): for a process that just freed much at once, or went quiet. */
void alloc_trim(void);

#endif
