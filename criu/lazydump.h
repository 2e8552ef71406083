/* CRIU's lazy dump on the sending host of a post-copy migration, through
 * its command line:
 *
 *   criu dump -t PID -D IMAGES -W WORK -o dump.log -vN [--file-locks]
 *        [--network-lock nftables] [--tcp-established]
 *        --skip-in-flight --lazy-pages --ps-socket FD --action-script SCRIPT
 *
 * Over swrk RPC a handed page-server socket is closed before the lazy phase
 * (docs/migrate.md); the command line without --page-server writes the
 * non-lazy pages to the local images and serves the lazy ones on FD. The
 * action script (criu/hook.h) reaches the caller over the UNIX socket
 * named in hook_sock. CRIU runs in a process group of its own. */
#ifndef FERRY_CRIU_LAZYDUMP_H
#define FERRY_CRIU_LAZYDUMP_H

#include <stdbool.h>
#include <sys/types.h>

#include "criu/spawn.h"
#include "lib/err.h"

struct criu_lazy_dump_opts {
	const char *criu_path;
	pid_t pid;		   /* the tree's root task */
	const char *images_dir;	   /* -D */
	const char *work_dir;	   /* -W: dump.log and stats land here */
	int log_level;		   /* criu_log_level(): 0 is ferry's default */
	bool file_locks;	   /* --file-locks */
	bool nftables_lock;	   /* --network-lock nftables */
	bool tcp_established;	   /* --tcp-established */
	int ps_fd;		   /* --ps-socket: the lazy pages' connection, kept */
	const char *action_script; /* --action-script */
	const char *hook_sock;	   /* the script's socket (CRIU_HOOK_SOCK_ENV), or NULL */
};

/* The command line above (pure: for tests and logs). */
void criu_lazy_dump_argv(const struct criu_lazy_dump_opts *o, struct criu_argv *a);

/* Start it: CRIU's pid; the caller reaps it (waitpid or criu_reap). */
pid_t criu_lazy_dump_start(const struct criu_lazy_dump_opts *o, ferr_t *err);

/* The error of a lazy dump that failed with wait status ws: how it ended,
 * CRIU's error lines from work_dir/dump.log (criu_log_tail) and the log's
 * path, as for a failed RPC dump. Returns -1. */
int criu_lazy_dump_failed(const char *work_dir, int ws, ferr_t *err);

#endif
