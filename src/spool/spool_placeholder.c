/*
 * spool_placeholder.c - keeps the spool library non-empty until its first real file lands.
 */
#include "base/log.h"

void spool_placeholder(void);

void spool_placeholder(void)
{
}
