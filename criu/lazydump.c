/* CRIU's lazy dump of post-copy (lazydump.h). */
#include "criu/lazydump.h"

#include <limits.h>
#include <stdio.h>
#include <sys/wait.h>

#include "criu/hook.h"
#include "criu/log.h"

void criu_lazy_dump_argv(const struct criu_lazy_dump_opts *o, struct criu_argv *a)
{
	criu_argv_init(a, o->criu_path);
	criu_argv_add(a, "dump", "-t", NULL);
	criu_argv_addf(a, "%d", (int)o->pid);
	criu_argv_add(a, "-D", o->images_dir, "-W", o->work_dir, "-o", "dump.log", NULL);
	criu_argv_addf(a, "-v%d", criu_log_level(o->log_level));
	if (o->file_locks)
		criu_argv_add(a, "--file-locks", NULL);
	if (o->nftables_lock)
		criu_argv_add(a, "--network-lock", "nftables", NULL);
	if (o->tcp_established)
		criu_argv_add(a, "--tcp-established", NULL);
	/* always: a connection not yet accepted at the freeze would fail the dump
	 * (criu_dump_opts, docs/migrate.md) */
	criu_argv_add(a, "--skip-in-flight", "--lazy-pages", "--ps-socket", NULL);
	criu_argv_addf(a, "%d", o->ps_fd);
	criu_argv_add(a, "--action-script", o->action_script, NULL);
}

pid_t criu_lazy_dump_start(const struct criu_lazy_dump_opts *o, ferr_t *err)
{
	struct criu_argv argv;
	char env[CRIU_HOOK_SOCK_MAX + sizeof(CRIU_HOOK_SOCK_ENV) + 1];
	const char *envv[] = {env, NULL};
	struct criu_spawn_opts so = {.argv = &argv,
				     .keep = &o->ps_fd,
				     .n_keep = 1,
				     .own_pgrp = true,
				     .sigpipe_default = true};
	pid_t pid;

	criu_lazy_dump_argv(o, &argv);
	if (o->hook_sock) {
		if (snprintf(env, sizeof(env), "%s=%s", CRIU_HOOK_SOCK_ENV, o->hook_sock) >=
		    (int)sizeof(env))
			return ferr_set(err, FX_FAIL, "action script socket name too long");
		so.env = envv;
	}
	pid = criu_spawn(&so, err);
	if (pid < 0)
		return ferr_wrap(err, "CRIU's lazy dump of pid %d", (int)o->pid);
	return pid;
}

int criu_lazy_dump_failed(const char *work_dir, int ws, ferr_t *err)
{
	char log[PATH_MAX], tail[768], how[48];

	snprintf(log, sizeof(log), "%s/dump.log", work_dir);
	criu_log_tail(log, tail, sizeof(tail));
	if (WIFEXITED(ws))
		snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(ws));
	else if (WIFSIGNALED(ws))
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(ws));
	else
		snprintf(how, sizeof(how), "wait status %d", ws);
	return ferr_set(err, FX_FAIL, "CRIU's lazy dump failed (%s)%s%s; full log: %s", how,
			*tail ? ": " : "", tail, log);
}
