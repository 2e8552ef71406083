/* Process-tree tenants (kind.h): a tree ferry did not start becomes a tenant
 * when it is named by pid (`ferry dump --pid PID`). It lives in the host's
 * namespaces, its session, terminal and stdio belong to whoever started it
 * (for CRIU: shell_job, external UNIX sockets; stdio on files is reopened by
 * path, pipes from outside come back without their outside peer). It comes
 * back at its old pids, which must be free. Killing it ends every process of
 * the tree: nothing else (no PID namespace) takes the descendants along. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/util.h"
#include "tenant/kind.h"
#include "tenant/kind_tree.h"

/* argv of a process from /proc/PID/cmdline. */
static int read_cmdline(pid_t pid, struct tenant_rec *rec, ferr_t *err)
{
	char path[64], *buf = NULL, *argv[64];
	size_t len = 0;
	int argc = 0, r;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	if (fs_read_all(path, &buf, &len, 1 << 16, NULL) < 0)
		return 0; /* a kernel thread or gone: no argv */
	for (size_t i = 0; i < len && argc < (int)ARRAY_SIZE(argv) - 1; i += strlen(buf + i) + 1)
		argv[argc++] = buf + i;
	argv[argc] = NULL;
	r = tenant_rec_set_argv(rec, argc, argv, err);
	free(buf);
	return r;
}

/* Adopt the running tree of o->pid. */
static int pt_start(const struct tenant_start *o, struct tenant_rec *rec, ferr_t *err)
{
	if (o->pid <= 1 || o->pid == getpid())
		return ferr_set(err, FX_USAGE, "refusing to dump pid %d", o->pid);
	if (!ktree_alive(o->pid))
		return ferr_set(err, FX_NOTFOUND, "no running process with pid %d", o->pid);
	rec->kind = TK_PROCTREE;
	rec->state = TS_RUNNING;
	rec->init_pid = o->pid;
	proc_start_time(o->pid, &rec->init_start, NULL);
	rec->created = rec->updated = wall_time();
	return read_cmdline(o->pid, rec, err);
}

static int pt_kill(const struct tenant_rec *rec, int sig, int timeout_ms, ferr_t *err)
{
	if (!tenant_pid_alive(rec->init_pid, rec->init_start))
		return 0;
	return ktree_kill(rec->init_pid, sig, timeout_ms, err);
}

/* In the host's network: nothing of its own to plumb. */
static int pt_net(const struct tenant_net *n, ferr_t *err)
{
	(void)n;
	(void)err;
	return 0;
}

/* Its pids must be free, which only the load itself can tell. */
static int pt_precheck(const struct tenant_rec *rec, const char *host, ferr_t *err)
{
	(void)rec;
	(void)host;
	(void)err;
	return 0;
}

static int pt_prepare_load(const struct tenant_rec *rec, ferr_t *err)
{
	(void)rec;
	(void)err;
	return 0;
}

static int pt_registered(const char *state_dir, const struct tenant_rec *rec, ferr_t *err)
{
	(void)state_dir;
	(void)rec;
	(void)err;
	return 0;
}

static void pt_target(const struct tenant_rec *rec, struct ckpt_target *t)
{
	t->pid = rec->init_pid;
	t->host_session = true;
}

static void pt_describe(const struct tenant_rec *rec, manifest_t *m)
{
	(void)rec;
	(void)m;
}

const struct tenant_kind_ops kind_proctree = {
    .kind = TK_PROCTREE,
    .name = "proctree",
    .ckpt = &ckpt_criu,
    .start = pt_start,
    .kill = pt_kill,
    .plumb = pt_net,
    .cut = pt_net,
    .unplumb = pt_net,
    .precheck = pt_precheck,
    .prepare_load = pt_prepare_load,
    .registered = pt_registered,
    .target = pt_target,
    .describe = pt_describe,
};
