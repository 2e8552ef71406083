/* Process trees of tenants (kind_tree.h). */
#include "tenant/kind_tree.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/util.h"
#include "tenant/registry.h"

bool ktree_alive(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	bool alive;

	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	/* a zombie is not alive: field 3 of /proc/PID/stat is the state */
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	alive = true;
	if (fgets(buf, sizeof(buf), f)) {
		char *p = strrchr(buf, ')');
		if (p && (p[2] == 'Z' || p[2] == 'X'))
			alive = false;
	}
	fclose(f);
	return alive;
}

struct tree {
	pid_t *pid;
	uint64_t *start; /* tells a process of the tree from a later one at its pid */
	size_t n, cap;
};

static bool tree_has(const struct tree *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->pid[i] == pid)
			return true;
	return false;
}

static void tree_add(struct tree *t, pid_t pid)
{
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		pid_t *np = realloc(t->pid, nc * sizeof(*np));
		if (!np)
			return;
		t->pid = np;
		uint64_t *ns = realloc(t->start, nc * sizeof(*ns));
		if (!ns)
			return;
		t->start = ns;
		t->cap = nc;
	}
	t->start[t->n] = 0;
	proc_start_time(pid, &t->start[t->n], NULL);
	t->pid[t->n++] = pid;
}

/* Add pid and its descendants (children of all its threads) not yet in t. */
static void collect(struct tree *t, pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *de;

	if (tree_has(t, pid))
		return;
	tree_add(t, pid);
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char cpath[128];
		FILE *f;
		int child;
		if (de->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", pid, de->d_name);
		f = fopen(cpath, "r");
		if (!f)
			continue;
		while (fscanf(f, "%d", &child) == 1)
			collect(t, child);
		fclose(f);
	}
	closedir(d);
}

static void tree_free(struct tree *t)
{
	free(t->pid);
	free(t->start);
}

int ktree_signal(pid_t pid, int sig, ferr_t *err)
{
	struct tree t = {0};
	int r = 0;

	collect(&t, pid);
	for (size_t i = 0; i < t.n; i++)
		if (kill(t.pid[i], sig) < 0 && errno != ESRCH && r == 0)
			r = ferr_sys(err, FX_FAIL, "signal %d to pid %d", sig, t.pid[i]);
	tree_free(&t);
	return r;
}

/* Stop the tree until no new process shows up: a process that forks
 * between two looks is caught by the next. */
static void stop_all(struct tree *t, pid_t pid)
{
	for (int round = 0; round < 8; round++) {
		size_t before = t->n;
		for (size_t i = 0; i < t->n; i++)
			kill(t->pid[i], SIGSTOP);
		for (size_t i = 0; i < before; i++)
			collect(t, t->pid[i]);
		if (round > 0 && t->n == before)
			return;
		collect(t, pid);
	}
}

/* The first process of t still alive, or 0. */
static pid_t tree_alive(const struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (tenant_pid_alive(t->pid[i], t->start[i]))
			return t->pid[i];
	return 0;
}

int ktree_kill(pid_t pid, int sig, int timeout_ms, ferr_t *err)
{
	struct tree t = {0};
	struct timespec ts = {0, 10 * 1000 * 1000};
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;
	pid_t left;

	if (!ktree_alive(pid))
		return 0;
	collect(&t, pid);
	if (sig == SIGKILL)
		stop_all(&t, pid);
	for (size_t i = 0; i < t.n; i++)
		if (kill(t.pid[i], sig) < 0 && errno != ESRCH) {
			int r = ferr_sys(err, FX_FAIL, "signal %d to pid %d", sig, t.pid[i]);
			tree_free(&t);
			return r;
		}
	while ((left = tree_alive(&t)) && now_ns() < deadline) {
		waitpid(pid, NULL, WNOHANG); /* reap it if it is our child */
		nanosleep(&ts, NULL);
	}
	tree_free(&t);
	if (left)
		return ferr_set(err, FX_FAIL,
				"process %d of the tree of %d is still alive %d ms after signal %d",
				(int)left, (int)pid, timeout_ms, sig);
	return 0;
}
