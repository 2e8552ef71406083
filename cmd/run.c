/* ferry run: start a container tenant (or with --vm a VM tenant) and
 * register it. */
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
#include "lib/util.h"

struct run_opts {
	const char *name;
	const char *rootfs;
	const char *net;
	bool host_only;
	bool json;
	bool vm;
	const char *memory;
	int cpus;
	const char *kernel, *initrd, *append, *disk;
	int argc;
	char **argv;
};

static const struct opt run_opts[] = {
    {.name = "rootfs",
     .type = OPT_STR,
     .off = offsetof(struct run_opts, rootfs),
     .arg = "DIR",
     .help = "root file system of the tenant (a container: required)"},
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
    {.name = "vm",
     .type = OPT_FLAG,
     .off = offsetof(struct run_opts, vm),
     .help = "start a VM tenant: QEMU (KVM where a probe guest boots under it, TCG "
	     "otherwise: see `ferry check`) booting --kernel or --disk; its serial console "
	     "goes to the tenant's console.log (`ferry logs`)"},
    {.name = "memory",
     .type = OPT_STR,
     .off = offsetof(struct run_opts, memory),
     .arg = "SIZE",
     .help = "VM: memory, as QEMU's -m (64M, 1G; default 128M)"},
    {.name = "cpus",
     .type = OPT_INT,
     .off = offsetof(struct run_opts, cpus),
     .arg = "N",
     .min = 1,
     .max = 64,
     .help = "VM: virtual CPUs (default 1)"},
    {.name = "kernel",
     .type = OPT_STR,
     .off = offsetof(struct run_opts, kernel),
     .arg = "FILE",
     .help = "VM: boot this kernel"},
    {.name = "initrd",
     .type = OPT_STR,
     .off = offsetof(struct run_opts, initrd),
     .arg = "FILE",
     .help = "VM: with --kernel, this initial RAM disk"},
    {.name = "append",
     .type = OPT_STR,
     .off = offsetof(struct run_opts, append),
     .arg = "CMDLINE",
     .help = "VM: with --kernel, its command line"},
    {.name = "disk",
     .type = OPT_STR,
     .off = offsetof(struct run_opts, disk),
     .arg = "IMAGE",
     .help = "VM: boot this disk image (raw or qcow2; it must be at the same path on a "
	     "host the VM moves to)"},
    OPTS_JSON(struct run_opts, json),
    {0},
};

static const struct cmd_spec run_spec = {
    .name = "run",
    .args = "NAME",
    .tail = "-- CMD [ARG...]   (a VM: --vm, no CMD)",
    .min_args = 1,
    .max_args = -1,
    .about = "Start a container tenant: CMD runs as PID 1 of its own PID, mount, UTS, IPC and\n"
	     "network namespaces, with DIR as its root (own /proc and /dev), hostname NAME.\n"
	     "Its output goes to DIR/.ferry/console.log (linked from the tenant's state dir).\n"
	     "With --vm: a QEMU virtual machine booting --kernel FILE [--initrd FILE]\n"
	     "[--append CMDLINE] or --disk IMAGE, with --memory and --cpus.\n",
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
	jw_str(&w, "rootfs", r->rootfs[0] ? r->rootfs : NULL);
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

/* Absolute path of a file the VM needs (FX_NOTFOUND if missing). */
static int vm_path(const char *in, char *out, const char *what, ferr_t *err)
{
	if (in && !realpath(in, out))
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "%s %s", what, in);
	return 0;
}

/* What kind, from the options: a container's rootfs and command, or a VM. */
static int check_kind(const struct run_opts *o, struct tenant_start *so, struct vm_spec *vm,
		      char paths[4][PATH_MAX], ferr_t *err)
{
	if (!o->vm) {
		if (o->memory || o->cpus || o->kernel || o->initrd || o->append || o->disk)
			return ferr_set(err, FX_USAGE,
					"--memory, --cpus, --kernel, --initrd, --append and "
					"--disk are for VMs (--vm)");
		if (!o->rootfs || o->argc < 1)
			return ferr_set(err, FX_USAGE, "a container needs --rootfs DIR and -- CMD");
		if (!realpath(o->rootfs, paths[0]))
			return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL,
					"rootfs %s (tenant %s)", o->rootfs, o->name);
		so->rootfs = paths[0];
		return 0;
	}
	if (o->rootfs || o->argc > 0)
		return ferr_set(err, FX_USAGE, "a VM takes no --rootfs and no command");
	if (!o->kernel == !o->disk)
		return ferr_set(err, FX_USAGE, "a VM boots either --kernel FILE or --disk IMAGE");
	if ((o->initrd || o->append) && !o->kernel)
		return ferr_set(err, FX_USAGE, "--initrd and --append go with --kernel");
	*vm = (struct vm_spec){.memory = o->memory, .cpus = o->cpus, .append = o->append};
	if (vm_path(o->kernel, paths[1], "kernel", err) < 0 ||
	    vm_path(o->initrd, paths[2], "initrd", err) < 0 ||
	    vm_path(o->disk, paths[3], "disk", err) < 0)
		return -1;
	vm->kernel = o->kernel ? paths[1] : NULL;
	vm->initrd = o->initrd ? paths[2] : NULL;
	vm->disk = o->disk ? paths[3] : NULL;
	so->vm = vm;
	return 0;
}

static int run(const struct global_opts *g, const struct run_opts *o, ferr_t *err)
{
	const struct tenant_kind_ops *kind = kind_by_name(o->vm ? "vm" : "container");
	char paths[4][PATH_MAX], dir[PATH_MAX];
	struct tenant_rec rec = {0};
	struct vm_spec vm;
	int lock, r = -1;
	struct tenant_start so = {.name = o->name,
				  .net = o->net,
				  .host_only = o->host_only,
				  .argc = o->argc,
				  .argv = o->argv,
				  .dir = dir};

	if (!tenant_name_valid(o->name))
		return registry_tenant_dir(g->state_dir, o->name, dir, sizeof(dir), err);
	if (check_kind(o, &so, &vm, paths, err) < 0)
		return -1;
	if (registry_tenant_dir(g->state_dir, o->name, dir, sizeof(dir), err) < 0)
		return -1;
	if ((lock = registry_lock(g->state_dir, o->name, err)) < 0)
		return -1;
	if (check_free(g->state_dir, o->name, err) < 0)
		goto out;
	snprintf(rec.name, sizeof(rec.name), "%s", o->name);
	if (kind->start(&so, &rec, err) < 0)
		goto out;
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
