/* ferry rm: remove the record of a tenant that does not run. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "tenant/kind.h"
#include "tenant/registry.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ferry rm NAME [--force]\n\n"
		   "Remove a tenant's record and state directory (its rootfs and dumps stay).\n"
		   "A running or frozen tenant is refused unless --force, which kills it first.\n");
}

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
	r = registry_remove(g->state_dir, name, err);
out:
	tenant_rec_free(&rec);
out_unlock:
	close(lock);
	return r;
}

int cmd_rm(int argc, char **argv, const struct global_opts *g)
{
	static const struct option opts[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool force = false;
	ferr_t err = {0};
	int c;

	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return FX_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return FX_USAGE;
	}
	if (do_rm(g, argv[optind], force, &err) < 0)
		return cmd_report("rm", &err);
	return 0;
}
