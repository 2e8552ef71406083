/* Starting CRIU: every CRIU process ferry runs (`criu swrk` of the RPC
 * client, `criu check` of the kernel-probe cache and of `ferry check`, the
 * page server, the lazy-pages daemon, the lazy dump of post-copy) is
 * started and reaped here.
 *
 * In the child, before exec (async-signal-safe only):
 *   - every fd of ferry from 3 up is closed on exec, except the ones listed
 *     in keep, which stay open under their own numbers (CRIU's command line
 *     or RPC request names them): registry locks, sockets and image fds
 *     never leak into CRIU and from there into restored tenants;
 *   - stdio is ferry's own, /dev/null, or output into an fd (a log, a
 *     pipe the caller reads: `ferry check` runs `criu check` so, and its
 *     other host probes the same way);
 *   - optionally a process group of its own (a caller can then wait until
 *     CRIU's helpers are gone too), SIGPIPE back to its default (ferry
 *     ignores it), a working directory;
 *   - optionally a private mount namespace with a fresh tmpfs on /run,
 *     seeded with one file (CRIU's kernel-probe cache, criu/kdat.h);
 *   - exec of the binary (criu_locate(); it may be a wrapper script such as
 *     the one `make deps` writes) with ferry's environment plus env.
 * An exec failure ends the child with status 127. */
#ifndef FERRY_CRIU_SPAWN_H
#define FERRY_CRIU_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/err.h"

#define CRIU_ARGV_MAX 40
#define CRIU_ARGV_NUM 8

/* A command line built before the fork: v[0] is the binary. Arguments made
 * by criu_argv_addf live in the struct itself (do not copy it). */
struct criu_argv {
	const char *v[CRIU_ARGV_MAX + 1]; /* NULL-terminated */
	size_t n;
	char num[CRIU_ARGV_NUM][32]; /* storage of formatted arguments */
	size_t n_num;
	bool overflow; /* something did not fit: criu_spawn refuses it */
};

void criu_argv_init(struct criu_argv *a, const char *criu_path);
/* Append arguments up to a NULL. */
void criu_argv_add(struct criu_argv *a, ...) __attribute__((sentinel));
/* Append one formatted argument (a number, "-v4"). */
void criu_argv_addf(struct criu_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

enum criu_stdio {
	CRIU_STDIO_INHERIT = 0, /* ferry's stdin, stdout, stderr */
	CRIU_STDIO_NULL,	/* all three on /dev/null */
	CRIU_STDIO_FD,		/* stdin on /dev/null, stdout and stderr on out_fd */
};

struct criu_spawn_opts {
	const struct criu_argv *argv;
	const int *keep; /* fds CRIU keeps under their numbers; -1 entries skipped */
	size_t n_keep;
	const char *const *env; /* NAME=VALUE set for CRIU, NULL-terminated, or NULL */
	enum criu_stdio stdio;
	int out_fd;	      /* CRIU_STDIO_FD: a log file, a pipe the caller reads */
	const char *cwd;      /* NULL: ferry's */
	bool own_pgrp;	      /* setpgid(0, 0) */
	bool sigpipe_default; /* SIGPIPE back to SIG_DFL */
	/* A private mount namespace (nothing propagates to the host) with a
	 * fresh tmpfs on /run holding run_file (run_len bytes of run_data).
	 * Best effort: when it cannot be made CRIU runs without it. */
	bool private_run;
	const char *run_file; /* name inside /run */
	const void *run_data;
	size_t run_len;
};

/* Fork and exec; returns CRIU's pid (a child of this process). */
pid_t criu_spawn(const struct criu_spawn_opts *o, ferr_t *err);

/* Reap pid: SIGKILL first with kill_first; wait up to timeout_ms (< 0: as
 * long as it takes), then SIGKILL and wait. Returns the wait status, -1
 * when there was nothing to reap. */
int criu_reap(pid_t pid, int timeout_ms, bool kill_first);

/* The calling process enters a private mount namespace with a fresh tmpfs
 * on /run (what private_run does in the child). Async-signal-safe. */
bool criu_private_run(void);

#endif
