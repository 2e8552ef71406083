/* Children nobody else waits for.
 *
 * CRIU restores a tenant's root task as a sibling of `criu swrk`, i.e. as a
 * child of the ferry process that asked for the restore. A one-shot command
 * exits and the tree is re-parented to init; a long-lived agent (`ferry
 * serve`) must reap such tenants itself when they end (killed by a later
 * migration away, by `ferry kill`, or by a failed restore), or each one stays
 * a zombie holding a pid. Only pids handed to reap_watch() are reaped, so
 * the specific waitpid() calls on CRIU's own processes keep working. */
#ifndef FERRY_REAP_H
#define FERRY_REAP_H

#include <sys/types.h>

/* Reap PID (a child of this process) once it exits. */
void reap_watch(pid_t pid);
/* Reap the watched children that have exited; returns how many. */
int reap_poll(void);

#endif
