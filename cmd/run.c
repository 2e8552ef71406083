/* ferry run: start a container tenant and register it. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "tenant/kind.h"
#include "lib/json.h"
#include "tenant/net.h"
#include "tenant/registry.h"
#include "tenant/rootfs.h"
#include "tenant/image.h"
#include "lib/fsutil.h"
#include <sys/stat.h>
#include "lib/util.h"

struct run_opts {
	const char *name;
	const char *rootfs;
	const char *image;
	const char *net;
	bool host_only;
	bool json;
	int argc;
	char **argv;
};

static const struct opt run_opts[] = {
    {.name = "rootfs",
     .type = OPT_STR,
     .off = offsetof(struct run_opts, rootfs),
     .arg = "DIR",
     .help = "root file system of the tenant (a directory it writes to; or --image)"},
    {.name = "image",
     .type = OPT_STR,
     .off = offsetof(struct run_opts, image),
     .arg = "PATH|ID",
     .help = "root file system from an image: a directory or tar archive (imported into "
	     "the image store once, see 'ferry image') or an image id; the tenant writes to "
	     "its own overlay layer in its state directory (docs/rootfs.md)"},
    {.name = "net",
     .type = OPT_STR,
     .off = offsetof(struct run_opts, net),
     .arg = "ADDR/PREFIX",
     .help = "give the tenant eth0 with this IPv4 address (veth pair, host side fy-NAME "
	     "with proxy ARP and a /32 route); ADDR must lie in the subnet of a host "
	     "interface (the clients' L2 segment) so that it can move (exit 7 if not)"},
    {.name = "host-only",
     .type = OPT_FLAG,
     .off = offsetof(struct run_opts, host_only),
     .help = "accept an ADDR outside every host subnet: the tenant is reached from this "
	     "host only and cannot be migrated"},
    OPTS_JSON(struct run_opts, json),
    {0},
};

static const struct cmd_spec run_spec = {
    .name = "run",
    .args = "NAME",
    .tail = "-- CMD [ARG...]",
    .min_args = 2,
    .max_args = -1,
    .about = "Start a container tenant: CMD runs as PID 1 of its own PID, mount, UTS, IPC and\n"
	     "network namespaces, with DIR as its root (own /proc and /dev), hostname NAME.\n"
	     "Its output goes to DIR/.ferry/console.log (linked from the tenant's state dir).\n",
    .opts = run_opts,
};

static void print_result(const struct tenant_rec *r, const char *tenant_dir, bool json)
{
	if (!json) {
		printf("%s running, pid %d%s%s\n", r->name, (int)r->init_pid,
		       r->net.addr[0] ? ", address " : "", r->net.addr);
		return;
	}
	struct jw w;
	char console[PATH_MAX + 16];

	snprintf(console, sizeof(console), "%s/console.log", tenant_dir);
	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "name", r->name);
	jw_str(&w, "kind", tenant_kind_str(r->kind));
	jw_str(&w, "state", tenant_state_str(r->state));
	jw_int(&w, "pid", r->init_pid);
	jw_str(&w, "rootfs", r->rootfs);
	jw_str(&w, "address", r->net.addr[0] ? r->net.addr : NULL);
	jw_str(&w, "host_if", r->net.host_if[0] ? r->net.host_if : NULL);
	jw_str(&w, "console", console);
	jw_obj_end(&w);
	jw_finish(&w);
}

/* The name must be free: no record, or a record of a tenant that is gone. */
static int check_free(const char *state_dir, const char *name, ferr_t *err)
{
	struct tenant_rec old;

	if (registry_load(state_dir, name, &old, err) < 0)
		return err->code == FX_NOTFOUND ? (ferr_clear(err), 0) : -1;
	int r = registry_refresh(state_dir, &old, err);
	if (r == 0 && old.state != TS_GONE)
		r = ferr_set(err, FX_CONFLICT,
			     "tenant '%s' already exists (state %s, pid %d): pick another name, "
			     "or 'ferry kill %s' and 'ferry rm %s' first",
			     name, tenant_state_str(old.state), (int)old.init_pid, name, name);
	tenant_rec_free(&old);
	return r;
}

/* --image PATH|ID: the content id, importing PATH when it is a path. */
static int resolve_image(const struct global_opts *g, const char *ref, char *id, ferr_t *err)
{
	struct image_info in;
	struct stat st;
	bool existed;

	if (stat(ref, &st) < 0)
		return image_find(g->state_dir, ref, id, err);
	if (image_import(g->state_dir, ref, &in, &existed, err) < 0)
		return -1;
	snprintf(id, IMAGE_ID_LEN + 1, "%s", in.id);
	return 0;
}

/* Unmount a tenant's overlay and drop its own layer. */
static int clear_layer(const struct global_opts *g, const char *name, ferr_t *err)
{
	static const char *const subs[] = {"upper", "work", "root"};
	char p[PATH_MAX], dir[PATH_MAX];

	if (rootfs_root(g->state_dir, name, p, sizeof(p), err) < 0 || rootfs_umount(p, err) < 0 ||
	    registry_tenant_dir(g->state_dir, name, dir, sizeof(dir), err) < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (xsnprintf(p, sizeof(p), err, "%s/%s", dir, subs[i]) < 0 || fs_rm_rf(p, err) < 0)
			return -1;
	return 0;
}

/* A fresh overlay for a new image tenant (a gone one's layer is dropped). */
static int image_root_for(const struct global_opts *g, const char *name, const char *id, char *root,
			  ferr_t *err)
{
	if (clear_layer(g, name, err) < 0 ||
	    rootfs_root(g->state_dir, name, root, PATH_MAX, err) < 0)
		return -1;
	return rootfs_mount(g->state_dir, name, id, err);
}

static int run(const struct global_opts *g, const struct run_opts *o, ferr_t *err)
{
	const struct tenant_kind_ops *kind = kind_by_name("container");
	char rootfs[PATH_MAX], dir[PATH_MAX];
	struct tenant_rec rec = {0};
	int lock, r = -1;

	if (!tenant_name_valid(o->name))
		return registry_tenant_dir(g->state_dir, o->name, dir, sizeof(dir), err);
	if (!o->rootfs == !o->image)
		return ferr_set(err, FX_USAGE, "give the tenant either --rootfs DIR or --image");
	if (o->image && resolve_image(g, o->image, rec.image, err) < 0)
		return -1;
	if (!o->image && !realpath(o->rootfs, rootfs))
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL,
				"rootfs %s (tenant %s)", o->rootfs, o->name);
	if (registry_tenant_dir(g->state_dir, o->name, dir, sizeof(dir), err) < 0)
		return -1;
	if ((lock = registry_lock(g->state_dir, o->name, err)) < 0)
		return -1;
	if (check_free(g->state_dir, o->name, err) < 0)
		goto out;
	if (o->image && image_root_for(g, o->name, rec.image, rootfs, err) < 0)
		goto out;

	struct tenant_start so = {.name = o->name,
				  .rootfs = rootfs,
				  .image = o->image ? rec.image : NULL,
				  .net = o->net,
				  .host_only = o->host_only,
				  .argc = o->argc,
				  .argv = o->argv};
	snprintf(rec.name, sizeof(rec.name), "%s", o->name);
	if (kind->start(&so, &rec, err) < 0) {
		if (o->image)
			clear_layer(g, o->name, NULL);
		goto out;
	}
	if (registry_save(g->state_dir, &rec, err) < 0 ||
	    kind->registered(g->state_dir, &rec, err) < 0) {
		kind->kill(&rec, SIGKILL, 5000, NULL);
		kind->unplumb(&rec.net, NULL);
		registry_remove(g->state_dir, o->name, NULL);
		goto out;
	}
	print_result(&rec, dir, o->json);
	r = 0;
out:
	tenant_rec_free(&rec);
	close(lock);
	return r;
}

int cmd_run(int argc, char **argv, const struct global_opts *g)
{
	struct run_opts o = {0};
	ferr_t err = {0};
	int pos, rc;

	/* GNU getopt permutes: NAME may come before or after the options; what
	 * follows "--" is the command, untouched */
	if ((rc = opts_parse(&run_spec, &o, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	o.name = argv[pos];
	o.argc = argc - pos - 1;
	o.argv = argv + pos + 1;
	if (run(g, &o, &err) < 0)
		return cmd_report("run", &err);
	return 0;
}
