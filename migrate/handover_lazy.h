/* Destination, post-copy: lazy-pages daemons of migrations in progress
 * (handover_lazy.c). Thread-safe. */
#ifndef FERRY_HANDOVER_LAZY_H
#define FERRY_HANDOVER_LAZY_H

#include <stdbool.h>
#include <sys/types.h>

/* The migration's end of the daemon's page-server socket (owned from now)
 * and its image directory (removed once the daemon is done). */
int lazy_register(const char *id, int sk, bool lz4, const char *dir);
void lazy_set_daemon(const char *id, pid_t pid);
/* Forget the migration: close its socket if nobody took it, reap the
 * daemon (SIGKILL first with kill_daemon). */
void lazy_drop(const char *id, bool kill_daemon);

#endif
