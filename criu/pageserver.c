/* CRIU's page server on the receiving host (pageserver.h). */
#include "criu/pageserver.h"

#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criu/log.h"
#include "criu/spawn.h"

/* How long a page server may take to finish its last pages once our end
 * is closed, before it is killed. */
#define PS_STOP_MS 5000

int page_server_start(const char *criu, const char *dir, const char *parent, struct page_server *ps,
		      ferr_t *err)
{
	struct criu_argv argv;
	struct criu_spawn_opts so = {
	    .argv = &argv, .n_keep = 1, .own_pgrp = true, .sigpipe_default = true};
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return ferr_sys(err, FX_FAIL, "socketpair for the page server");
	so.keep = &sv[1];
	criu_argv_init(&argv, criu);
	criu_argv_add(&argv, "page-server", "-D", dir, "--ps-socket", NULL);
	criu_argv_addf(&argv, "%d", sv[1]);
	if (parent && *parent)
		criu_argv_add(&argv, "--prev-images-dir", parent, NULL);
	criu_argv_add(&argv, "-o", "page-server.log", NULL);
	criu_argv_addf(&argv, "-v%d", criu_log_level(0));
	ps->pid = criu_spawn(&so, err);
	close(sv[1]);
	if (ps->pid < 0) {
		close(sv[0]);
		return ferr_wrap(err, "page server");
	}
	ps->sk = sv[0];
	return 0;
}

int page_server_stop(struct page_server *ps, bool kill_it, const char *dir, ferr_t *err)
{
	int st;

	if (ps->sk >= 0)
		close(ps->sk);
	ps->sk = -1;
	if (ps->pid <= 0)
		return 0;
	st = criu_reap(ps->pid, PS_STOP_MS, kill_it);
	ps->pid = -1;
	if (!kill_it && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		return ferr_set(err, FX_FAIL, "CRIU page server failed (see %s/page-server.log)",
				dir);
	return 0;
}
