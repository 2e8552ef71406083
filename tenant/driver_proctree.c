/* Process-tree driver: a tree ferry did not start (`ferry dump --pid PID`).
 * It lives in the host's namespaces and its session, terminal and stdio
 * belong to whoever started it:
 *   shell_job    the tree may be in a session / process group led from
 *                outside (a shell) or hold a terminal;
 *   ext_unix_sk  a UNIX socket connected to a peer outside the tree (e.g.
 *                stdio on a logging socket) is dumped as external;
 *   file_locks   locks held by the tree are saved.
 * Stdio on files is reopened by path on restore, pipes from outside come back
 * as pipes without the outside peer. The tree is restored at its old PIDs,
 * which must be free (dumping kills the original). */
#define LOG_PREFIX "proctree"
#include <string.h>

#include "tenant/driver.h"

static void proctree_common(struct criu_common_opts *c)
{
	c->shell_job = true;
	c->ext_unix_sk = true;
}

static int proctree_dump(const struct driver_env *env, const struct tenant_rec *rec,
			 const struct driver_dump_opts *o, struct criu_dump_result *res,
			 ferr_t *err)
{
	struct criu_dump_opts d;

	driver_criu_dump_opts(env, rec, o, &d);
	proctree_common(&d.c);
	if (criu_dump(&d, res, err) < 0)
		return ferr_wrap(err, "process tree %s", rec->name);
	return 0;
}

static int proctree_restore(const struct driver_env *env, const struct driver_restore_opts *o,
			    pid_t *pid, ferr_t *err)
{
	struct criu_restore_opts r;

	driver_criu_restore_opts(env, o, &r);
	proctree_common(&r.c);
	if (criu_restore(&r, pid, err) < 0) {
		if (err && strstr(err->msg, "Can't fork for") && strstr(err->msg, "File exists"))
			ferr_wrap(err,
				  "a pid of the tree is in use on this host (a process tree "
				  "comes back at its old pids: restore it where they are free, "
				  "e.g. in a fresh PID namespace)");
		return -1;
	}
	return 0;
}

static int proctree_resume(const struct driver_env *env, struct tenant_rec *rec, ferr_t *err)
{
	return driver_resume_from_images(&driver_proctree, env, rec, err);
}

static int proctree_kill(const struct driver_env *env, const struct tenant_rec *rec, ferr_t *err)
{
	(void)env;
	if (driver_kill_tree(rec->init_pid, err) < 0)
		return ferr_wrap(err, "killing process tree %s", rec->name);
	return 0;
}

const struct tenant_driver driver_proctree = {
    .kind = TK_PROCTREE,
    .name = "proctree",
    .dump = proctree_dump,
    .restore = proctree_restore,
    .resume = proctree_resume,
    .kill = proctree_kill,
};
