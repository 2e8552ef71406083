/* Starting and reaping CRIU processes (spawn.h). */
#define LOG_PREFIX "criu"
#include "criu/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

extern char **environ;

void criu_argv_init(struct criu_argv *a, const char *criu_path)
{
	memset(a, 0, sizeof(*a));
	a->v[a->n++] = criu_path;
}

static void argv_push(struct criu_argv *a, const char *s)
{
	if (a->n >= CRIU_ARGV_MAX) {
		a->overflow = true;
		return;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

void criu_argv_add(struct criu_argv *a, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, a);
	while ((s = va_arg(ap, const char *)))
		argv_push(a, s);
	va_end(ap);
}

void criu_argv_addf(struct criu_argv *a, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (a->n_num >= CRIU_ARGV_NUM) {
		a->overflow = true;
		return;
	}
	char *buf = a->num[a->n_num++];
	va_start(ap, fmt);
	w = vsnprintf(buf, sizeof(a->num[0]), fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= sizeof(a->num[0]))
		a->overflow = true;
	argv_push(a, buf);
}

bool criu_private_run(void)
{
	return unshare(CLONE_NEWNS) == 0 &&
	       mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	       mount("ferry-criu-run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755") ==
		   0;
}

/* /run/NAME holding the data, in the private /run. */
static void seed_run(const struct criu_spawn_opts *o)
{
	char path[256] = "/run/";
	size_t done = 0, dl = strlen(path), nl = strlen(o->run_file);
	int fd;

	if (dl + nl >= sizeof(path))
		return;
	memcpy(path + dl, o->run_file, nl + 1);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	while (done < o->run_len) {
		ssize_t n = write(fd, (const char *)o->run_data + done, o->run_len - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
}

static void child_stdio(const struct criu_spawn_opts *o)
{
	int fd;

	if (o->stdio == CRIU_STDIO_INHERIT)
		return;
	fd = open("/dev/null", O_RDWR);
	if (o->stdio == CRIU_STDIO_FD) {
		if (fd < 0 || dup2(fd, 0) < 0 || dup2(o->out_fd, 1) < 0 || dup2(o->out_fd, 2) < 0)
			_exit(127);
	} else if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (fd > 2)
		close(fd);
}

/* The child between fork and exec: async-signal-safe calls only. */
static void child(const struct criu_spawn_opts *o, char *const *envp)
{
	child_stdio(o);
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 1024; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	for (size_t i = 0; i < o->n_keep; i++)
		if (o->keep[i] >= 0)
			fcntl(o->keep[i], F_SETFD, 0);
	if (o->sigpipe_default)
		signal(SIGPIPE, SIG_DFL);
	if (o->own_pgrp)
		setpgid(0, 0);
	if (o->private_run && criu_private_run() && o->run_file && o->run_len)
		seed_run(o);
	if (o->cwd && chdir(o->cwd) < 0)
		_exit(127);
	execve(o->argv->v[0], (char *const *)o->argv->v, envp);
	_exit(127);
}

/* ferry's environment with env's NAME=VALUE set (replacing the same
 * names); caller frees the array (not the strings). */
static char **make_env(const char *const *env)
{
	size_t n = 0, m = 0, k = 0;
	char **out;

	while (environ && environ[n])
		n++;
	while (env[m])
		m++;
	out = calloc(n + m + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;
		for (size_t j = 0; j < m && !replaced; j++) {
			size_t len = strcspn(env[j], "=");
			replaced = !strncmp(environ[i], env[j], len) && environ[i][len] == '=';
		}
		if (!replaced)
			out[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		out[k++] = (char *)env[j];
	return out;
}

pid_t criu_spawn(const struct criu_spawn_opts *o, ferr_t *err)
{
	char **envp = environ;
	pid_t pid;

	if (o->argv->overflow || !o->argv->v[0])
		return ferr_set(err, FX_FAIL, "CRIU command line too long");
	if (o->env && !(envp = make_env(o->env)))
		return ferr_set(err, FX_FAIL, "out of memory");
	pid = fork();
	if (pid == 0)
		child(o, envp);
	if (envp != environ)
		free(envp);
	if (pid < 0)
		return ferr_sys(err, FX_FAIL, "fork for CRIU (%s)",
				o->argv->n > 1 ? o->argv->v[1] : "");
	pr_debug("started %s %s as pid %d", o->argv->v[0], o->argv->n > 1 ? o->argv->v[1] : "",
		 pid);
	return pid;
}

int criu_reap(pid_t pid, int timeout_ms, bool kill_first)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	uint64_t deadline = now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000;
	int st = -1;

	if (pid <= 0)
		return -1;
	if (kill_first)
		kill(pid, SIGKILL);
	if (timeout_ms < 0) {
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		return st;
	}
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return st;
		if (now_ns() >= deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			return st;
		}
		nanosleep(&ts, NULL);
	}
}
