/* CRIU's lazy-pages daemon (lazypages.h). */
#include "criu/lazypages.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "criu/kdat.h"
#include "criu/log.h"
#include "criu/spawn.h"
#include "lib/util.h"

pid_t criu_lazy_pages_start(const struct criu_lazy_pages_opts *o, int *ready, ferr_t *err)
{
	struct criu_argv argv;
	struct criu_spawn_opts so = {.argv = &argv, .own_pgrp = true};
	int pfd[2], keep[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return ferr_sys(err, FX_FAIL, "pipe for the lazy-pages daemon");
	keep[0] = o->ps_fd;
	keep[1] = pfd[1];
	so.keep = keep;
	so.n_keep = 2;
	criu_kdat_use(&so);
	criu_argv_init(&argv, o->criu_path);
	criu_argv_add(&argv, "lazy-pages", "--page-server", "--ps-socket", NULL);
	criu_argv_addf(&argv, "%d", o->ps_fd);
	criu_argv_add(&argv, "-D", o->images_dir, "-W", o->work_dir, "--status-fd", NULL);
	criu_argv_addf(&argv, "%d", pfd[1]);
	criu_argv_add(&argv, "-o", "lazy-pages.log", NULL);
	criu_argv_addf(&argv, "-v%d", criu_log_level(0));
	pid = criu_spawn(&so, err);
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		return ferr_wrap(err, "the lazy-pages daemon");
	}
	*ready = pfd[0];
	return pid;
}

int criu_lazy_pages_ready(int ready, int timeout_ms, const char *work_dir, ferr_t *err)
{
	struct pollfd pf = {.fd = ready, .events = POLLIN};
	char c;

	if (poll(&pf, 1, timeout_ms) == 1 && read(ready, &c, 1) == 1)
		return 0;
	return ferr_set(err, FX_FAIL, "the lazy-pages daemon did not start (see %s/lazy-pages.log)",
			work_dir);
}

bool criu_lazy_pages_missed(const char *work_dir)
{
	char path[PATH_MAX], line[1024];
	bool missed = false;
	FILE *f;

	if (xsnprintf_path(path, sizeof(path), work_dir, "restore.log") < 0 ||
	    !(f = fopen(path, "r")))
		return false;
	while (!missed && fgets(line, sizeof(line), f))
		missed = strstr(line, "lazy-pages.socket failed") && strstr(line, "connect to");
	fclose(f);
	return missed;
}
