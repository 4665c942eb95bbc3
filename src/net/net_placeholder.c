/*
 * net_placeholder.c - keeps the net library non-empty until its first real file lands.
 */
#include "base/log.h"

void net_placeholder(void);

void net_placeholder(void)
{
}
