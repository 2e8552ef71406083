/* CRIU's lazy-pages daemon on the receiving host of a post-copy migration:
 * `criu lazy-pages --page-server --ps-socket FD` serves the restored
 * tenant's page faults, fetching the pages from the source over a socket
 * ferry relays. The restore (criu_restore_opts.lazy_pages) connects to its
 * socket, lazy-pages.socket in the restore's work directory. */
#ifndef FERRY_CRIU_LAZYPAGES_H
#define FERRY_CRIU_LAZYPAGES_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/err.h"

struct criu_lazy_pages_opts {
	const char *criu_path;
	const char *images_dir; /* the restore's images (-D) */
	const char *work_dir;	/* the restore's work directory (-W): socket and log */
	int ps_fd;		/* the page connection, kept under its number */
};

/* Start the daemon (with CRIU's cached kernel probes, criu/kdat.h: it
 * touches no tenant's mounts). *ready gets a pipe CRIU writes one byte to
 * (--status-fd) once its socket listens; EOF when it died first. Returns
 * its pid; the caller reaps it (criu_reap). Log: WORK/lazy-pages.log. */
pid_t criu_lazy_pages_start(const struct criu_lazy_pages_opts *o, int *ready, ferr_t *err);

/* Wait (up to timeout_ms) until the daemon listens: 0, or -1 when it died
 * or took longer. */
int criu_lazy_pages_ready(int ready, int timeout_ms, const char *work_dir, ferr_t *err);

/* Did the restore whose work directory is work_dir fail only because the
 * daemon's socket was not there yet? CRIU connects to it before it creates
 * anything (prepare_lazy_pages_socket in cr_restore_tasks), so such a
 * restore can simply be run again. Read from its restore.log. */
bool criu_lazy_pages_missed(const char *work_dir);

#endif
