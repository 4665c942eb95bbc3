/*
 * sqlite_setup.c - see sqlite_setup.h.
 */
#include "base/sqlite_setup.h"

#include <pthread.h>
#include <sqlite3.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void setup_once(void)
{
    /* SQLITE_MISUSE when SQLite was initialised already: then the defaults stay */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)sqlite3_initialize();
}

void sqlite_setup(void)
{
    pthread_once(&once, setup_once);
}
