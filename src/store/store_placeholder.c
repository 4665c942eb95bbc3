/*
 * store_placeholder.c - keeps the store library non-empty until its first real file lands.
 */
#include "base/log.h"

void store_placeholder(void);

void store_placeholder(void)
{
}
