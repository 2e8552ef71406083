/* Helpers shared by the CRIU-based tenant drivers. */
#define LOG_PREFIX "driver"
#include "tenant/driver.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/log.h"
#include "proto/manifest.h"

const struct tenant_driver *driver_find(enum tenant_kind kind)
{
	switch (kind) {
	case TK_CONTAINER:
		return &driver_container;
	case TK_PROCTREE:
		return &driver_proctree;
	default:
		return NULL;
	}
}

bool driver_pid_alive(pid_t pid)
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

/* Append pid's children (all threads) to *list, recursively. */
static void collect_tree(pid_t pid, pid_t **list, size_t *n, size_t *cap)
{
	char path[64];
	DIR *d;
	struct dirent *de;

	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		pid_t *nl = realloc(*list, nc * sizeof(pid_t));
		if (!nl)
			return;
		*list = nl;
		*cap = nc;
	}
	(*list)[(*n)++] = pid;
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
			collect_tree(child, list, n, cap);
		fclose(f);
	}
	closedir(d);
}

int driver_signal_tree(pid_t pid, int sig, ferr_t *err)
{
	pid_t *list = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	collect_tree(pid, &list, &n, &cap);
	for (size_t i = 0; i < n; i++)
		if (kill(list[i], sig) < 0 && errno != ESRCH && r == 0)
			r = ferr_sys(err, FX_FAIL, "signal %d to pid %d", sig, list[i]);
	free(list);
	return r;
}

int driver_kill_tree(pid_t pid, ferr_t *err)
{
	pid_t *list = NULL;
	size_t n = 0, cap = 0;
	struct timespec ts = {0, 10 * 1000 * 1000};

	if (!driver_pid_alive(pid))
		return 0;
	/* stop first so that nobody forks while we collect */
	kill(pid, SIGSTOP);
	collect_tree(pid, &list, &n, &cap);
	for (size_t i = 0; i < n; i++)
		kill(list[i], SIGSTOP);
	for (size_t i = 0; i < n; i++)
		kill(list[i], SIGKILL);
	free(list);
	for (int i = 0; i < 500 && driver_pid_alive(pid); i++) {
		waitpid(pid, NULL, WNOHANG); /* reap it if it is our child */
		nanosleep(&ts, NULL);
	}
	if (driver_pid_alive(pid))
		return ferr_set(err, FX_FAIL, "pid %d does not die after SIGKILL", pid);
	return 0;
}

static void criu_common(const struct driver_env *env, const char *images_dir, const char *log_file,
			bool tcp_established, criu_notify_fn notify, void *notify_arg,
			struct criu_common_opts *c)
{
	memset(c, 0, sizeof(*c));
	c->criu_path = env->criu_path;
	c->images_dir = images_dir;
	c->work_dir = env->work_dir;
	c->log_file = log_file;
	c->log_level = env->log_level;
	c->file_locks = true;
	/* iptables is not a dependency: lock through nftables (HOST-NOTES) */
	c->nftables_lock = true;
	c->tcp_established = tcp_established;
	c->notify = notify;
	c->notify_arg = notify_arg;
}

void driver_criu_dump_opts(const struct driver_env *env, const struct tenant_rec *rec,
			   const struct driver_dump_opts *o, struct criu_dump_opts *d)
{
	memset(d, 0, sizeof(*d));
	criu_common(env, o->images_dir, o->pre_dump ? "pre-dump.log" : "dump.log",
		    o->tcp_established, o->notify, o->notify_arg, &d->c);
	d->pid = rec->init_pid;
	d->leave_running = o->leave_running;
	d->pre_dump = o->pre_dump;
	d->ps = o->ps;
	d->parent_img = o->parent_img;
	d->track_mem = o->track_mem;
	d->lazy_pages = o->lazy_pages;
}

void driver_criu_restore_opts(const struct driver_env *env, const struct driver_restore_opts *o,
			      struct criu_restore_opts *r)
{
	memset(r, 0, sizeof(*r));
	criu_common(env, o->images_dir, "restore.log", o->tcp_established, o->notify, o->notify_arg,
		    &r->c);
	/* detached: the restored tree outlives ferry */
	r->rst_sibling = true;
	r->lazy_pages = o->lazy_pages;
	r->ps = o->ps;
	r->swrk = o->swrk;
}

int driver_resume_from_images(const struct tenant_driver *d, const struct driver_env *env,
			      struct tenant_rec *rec, ferr_t *err)
{
	struct driver_restore_opts ro = {0};
	manifest_t *m = NULL;
	pid_t pid;

	if (driver_pid_alive(rec->init_pid))
		return 0;
	if (!rec->last_dump[0])
		return ferr_set(err, FX_CONFLICT, "tenant %s is not running and has no dump",
				rec->name);
	if (manifest_read(rec->last_dump, &m, err) < 0)
		return ferr_wrap(err, "resuming tenant %s", rec->name);
	ro.images_dir = rec->last_dump;
	ro.rootfs = rec->rootfs[0] ? rec->rootfs : NULL;
	ro.net = &rec->net;
	ro.tcp_established = m->has_tcp_established && m->tcp_established;
	manifest_free(m);
	ro.ps.fd = -1;
	if (d->restore(env, &ro, &pid, err) < 0)
		return ferr_wrap(err, "resuming tenant %s from %s", rec->name, rec->last_dump);
	rec->init_pid = pid;
	rec->state = TS_RUNNING;
	proc_start_time(pid, &rec->init_start, NULL);
	return 0;
}
