/*
 * child.h - the component side of wharfd: running one component process.
 */
#ifndef WHARF_SUPERVISOR_CHILD_H
#define WHARF_SUPERVISOR_CHILD_H

/* Handles `wharfd --component NAME ...`; never returns. */
void child_run(int argc, char **argv) __attribute__((noreturn));

#endif
