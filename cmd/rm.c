/* ferry rm: remove the record of a tenant that does not run. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "tenant/kind.h"
#include "tenant/registry.h"

static int do_rm(const struct global_opts *g, const char *name, bool force, ferr_t *err)
{
	struct tenant_rec rec;
	int lock, r = -1;

	if ((lock = registry_lock(g->state_dir, name, err)) < 0)
		return -1;
	if (registry_load(g->state_dir, name, &rec, err) < 0)
		goto out_unlock;
	if (registry_refresh(g->state_dir, &rec, err) < 0)
		goto out;
	if (rec.state == TS_RUNNING || rec.state == TS_FROZEN) {
		if (!force) {
			ferr_set(
			    err, FX_CONFLICT,
			    "tenant '%s' is %s (pid %d): 'ferry kill %s' first, or use --force",
			    name, tenant_state_str(rec.state), (int)rec.init_pid, name);
			goto out;
		}
		if (tenant_kill(g->state_dir, &rec, SIGKILL, 10000, err) < 0)
			goto out;
	}
	/* what the kind still holds here (a tenant that ended by itself) */
	tenant_released(kind_find(rec.kind), &rec);
	r = registry_remove(g->state_dir, name, err);
out:
	tenant_rec_free(&rec);
out_unlock:
	close(lock);
	return r;
}

struct rm_args {
	bool force;
};

static const struct opt rm_opts[] = {
    {.name = "force",
     .short_name = 'f',
     .type = OPT_FLAG,
     .off = offsetof(struct rm_args, force),
     .help = "kill a running or frozen tenant first"},
    {0},
};

static const struct cmd_spec rm_spec = {
    .name = "rm",
    .args = "NAME",
    .min_args = 1,
    .max_args = 1,
    .about = "Remove a tenant's record and state directory (its rootfs and dumps stay).\n"
	     "A running or frozen tenant is refused unless --force, which kills it first.\n",
    .opts = rm_opts,
};

int cmd_rm(int argc, char **argv, const struct global_opts *g)
{
	struct rm_args a = {0};
	ferr_t err = {0};
	int pos, rc;

	if ((rc = opts_parse(&rm_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	if (do_rm(g, argv[pos], a.force, &err) < 0)
		return cmd_report("rm", &err);
	return 0;
}
