/*
 * mime_placeholder.c - keeps the mime library non-empty until its first real file lands.
 */
#include "base/log.h"

void mime_placeholder(void);

void mime_placeholder(void)
{
}
