/* Destination, post-copy: lazy-pages daemons of migrations in progress
 * (handover_lazy.c). Thread-safe. */
#ifndef FERRY_HANDOVER_LAZY_H
#define FERRY_HANDOVER_LAZY_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/err.h"
#include "snapshot/restore.h"

/* The migration's end of the daemon's page-server socket (owned from now)
 * and its image directory (removed once the daemon is done). */
int lazy_register(const char *id, int sk, bool lz4, const char *dir);
void lazy_set_daemon(const char *id, pid_t pid);
/* Forget the migration: close its socket if nobody took it, reap the
 * daemon (SIGKILL first with kill_daemon). */
void lazy_drop(const char *id, bool kill_daemon);

/* Post-copy restore: start the migration's `criu lazy-pages` daemon on sk
 * (its end of the page connection: the daemon inherits it, the caller
 * closes its own copy afterwards) and restore at the same time (lazy_pages in ro). The
 * daemon is registered under id; lazy_drop() ends it. */
struct lazy_restore {
	const char *id;
	const char *tenant; /* its work directory holds the daemon's socket */
	const char *criu_path;
	const char *images_dir;
	int sk;
};
int lazy_restore(const struct lazy_restore *l, const struct restore_opts *ro,
		 struct restore_result *rr, ferr_t *err);

#endif
