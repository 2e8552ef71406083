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
#include "tenant/cgroup.h"
#include "tenant/kind.h"
#include "lib/json.h"
#include "tenant/net.h"
#include "tenant/registry.h"
#include "tenant/rootfs.h"
#include "tenant/image.h"
#include "lib/fsutil.h"
#include <sys/stat.h>
#include "tenant/userns.h"
#include "lib/util.h"

static int parse_size(const char *arg, void *field, ferr_t *err)
{
	int64_t v = cgroup_parse_size(arg);

	if (v < (4LL << 20))
		return ferr_set(err, FX_USAGE,
				"--memory %s: a size of at least 4M (bytes, or with K, M, G, T)",
				arg);
	*(int64_t *)field = v;
	return 0;
}

static int parse_cpus(const char *arg, void *field, ferr_t *err)
{
	char *end;
	double v = strtod(arg, &end);

	if (end == arg || *end || !(v >= 0.01 && v <= 1024))
		return ferr_set(err, FX_USAGE, "--cpus %s: a number of CPUs, 0.01..1024 (e.g. 0.5)",
				arg);
	*(int64_t *)field = (int64_t)(v * 1000 + 0.5);
	return 0;
}

struct run_opts {
	const char *name;
	const char *rootfs;
	const char *image;
	const char *net;
	bool host_only;
	bool userns;
	bool isolate;
	bool privileged;
	int64_t mem_max;
	int64_t cpu_milli;
	int pids_max;
	int io_weight;
	bool json;
	bool vm;
	const char *kernel, *initrd, *append, *disk;
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
    {.name = "vm",
     .type = OPT_FLAG,
     .off = offsetof(struct run_opts, vm),
     .help = "start a VM tenant: QEMU (KVM where a probe guest boots under it, TCG "
	     "otherwise: see `ferry check`) booting --kernel or --disk; its serial console "
	     "goes to the tenant's console.log (`ferry logs`)"},
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
    {.name = "userns",
     .type = OPT_FLAG,
     .off = offsetof(struct run_opts, userns),
     .help = "a user namespace and a cgroup only, without the default's capability "
	     "bounding set, seccomp filter and masked /proc (every tenant gets a user "
	     "namespace unless --privileged: its root is an unprivileged host ID range "
	     "allocated per tenant, 65536 IDs from 100000 on; the rootfs's owners are "
	     "shifted into that range once, docs/isolation.md)"},
    {.name = "isolate",
     .type = OPT_FLAG,
     .off = offsetof(struct run_opts, isolate),
     .help = "the full isolation of docs/isolation.md, which is the default: a user "
	     "namespace, a cgroup with limits (defaults --memory 1G --pids 1024), the OCI "
	     "default capabilities, no_new_privs, a seccomp filter, masked and read-only "
	     "/proc and /sys"},
    {.name = "privileged",
     .type = OPT_FLAG,
     .off = offsetof(struct run_opts, privileged),
     .help = "opt out of the default isolation: namespaces only, the tenant's root is "
	     "the host's root with every capability (a cgroup only with --memory, --cpus, "
	     "--pids or --io-weight; FERRY_ISOLATE=0 in the environment makes this the "
	     "default)"},
    {.name = "memory",
     .type = OPT_FN,
     .off = offsetof(struct run_opts, mem_max),
     .arg = "SIZE",
     .parse = parse_size,
     .help = "memory limit of the tenant's cgroup (swap included where accounted), e.g. "
	     "512M; the kernel's OOM killer acts inside the tenant only. A VM (--vm): its "
	     "memory (default 128M)"},
    {.name = "cpus",
     .type = OPT_FN,
     .off = offsetof(struct run_opts, cpu_milli),
     .arg = "N",
     .parse = parse_cpus,
     .help = "CPU time limit in CPUs (CFS quota), e.g. 0.5 (default: no limit). A VM: "
	     "its virtual CPUs, a whole number (default 1)"},
    {.name = "pids",
     .type = OPT_INT,
     .off = offsetof(struct run_opts, pids_max),
     .arg = "N",
     .min = 8,
     .max = 4194304,
     .help = "most tasks (processes and threads) the tenant may have (pids.max)"},
    {.name = "io-weight",
     .type = OPT_INT,
     .off = offsetof(struct run_opts, io_weight),
     .arg = "W",
     .min = 10,
     .max = 1000,
     .help = "block I/O weight (exit 7 where the host's I/O scheduler has no weights, as "
	     "with v1 blkio without CFQ/BFQ)"},
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
	jw_obj_begin(&w, "isolation");
	cmd_iso_json(&w, &r->iso);
	jw_obj_end(&w);
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
		      char paths[4][PATH_MAX], char mem[32], ferr_t *err)
{
	if (!o->vm) {
		if (o->kernel || o->initrd || o->append || o->disk)
			return ferr_set(
			    err, FX_USAGE,
			    "--kernel, --initrd, --append and --disk are for VMs (--vm)");
		if (!o->rootfs == !o->image || o->argc < 1)
			return ferr_set(
			    err, FX_USAGE,
			    "a container needs either --rootfs DIR or --image, and -- CMD");
		if (o->image)
			return 0; /* its root: the overlay, made once the name is locked */
		if (!realpath(o->rootfs, paths[0]))
			return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL,
					"rootfs %s (tenant %s)", o->rootfs, o->name);
		so->rootfs = paths[0];
		return 0;
	}
	if (o->rootfs || o->image || o->argc > 0)
		return ferr_set(err, FX_USAGE, "a VM takes no --rootfs, no --image and no command");
	if (o->userns || o->isolate || o->privileged || o->pids_max || o->io_weight)
		return ferr_set(err, FX_USAGE,
				"--userns, --isolate, --privileged, --pids and --io-weight are for "
				"containers (a VM is isolated by QEMU)");
	if (o->cpu_milli % 1000)
		return ferr_set(err, FX_USAGE, "--cpus of a VM: a whole number of virtual CPUs");
	snprintf(mem, 32, "%lldM", (long long)(o->mem_max ? o->mem_max >> 20 : 128));
	if (!o->kernel == !o->disk)
		return ferr_set(err, FX_USAGE, "a VM boots either --kernel FILE or --disk IMAGE");
	if ((o->initrd || o->append) && !o->kernel)
		return ferr_set(err, FX_USAGE, "--initrd and --append go with --kernel");
	*vm = (struct vm_spec){
	    .memory = mem, .cpus = (int)(o->cpu_milli / 1000), .append = o->append};
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

/* The isolation the options ask for (docs/isolation.md): by default all of
 * it; --userns alone leaves out the hardening (capabilities, seccomp, /proc);
 * --privileged leaves out everything but the limits it is given.
 * FERRY_ISOLATE=0 in the environment makes --privileged the default. */
static int run_iso(const struct global_opts *g, const struct run_opts *o, struct tenant_iso *iso,
		   ferr_t *err)
{
	bool limits = o->mem_max || o->cpu_milli || o->pids_max || o->io_weight;
	const char *def = getenv("FERRY_ISOLATE");
	bool privileged = o->privileged || (def && !strcmp(def, "0") && !o->isolate && !o->userns);

	if (o->privileged && (o->isolate || o->userns))
		return ferr_set(err, FX_USAGE,
				"--privileged goes with neither --isolate nor --userns");
	iso->mem_max = o->mem_max;
	iso->cpu_milli = o->cpu_milli;
	iso->pids_max = o->pids_max;
	iso->io_weight = o->io_weight;
	if (!privileged || limits) {
		iso->mem_max = iso->mem_max ? iso->mem_max : CG_DEF_MEMORY;
		iso->pids_max = iso->pids_max ? iso->pids_max : CG_DEF_PIDS;
	}
	iso->hardened = !privileged && (o->isolate || !o->userns);
	if (privileged)
		return 0;
	if (userns_alloc(g->state_dir, o->name, &iso->id_base, err) < 0)
		return -1;
	iso->id_count = USERNS_SIZE;
	return 0;
}

static int run(const struct global_opts *g, const struct run_opts *o, ferr_t *err)
{
	const struct tenant_kind_ops *kind = kind_by_name(o->vm ? "vm" : "container");
	char paths[4][PATH_MAX], dir[PATH_MAX], mem[32];
	struct tenant_rec rec = {0};
	struct tenant_iso iso = {0};
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
	if (check_kind(o, &so, &vm, paths, mem, err) < 0)
		return -1;
	if (o->image && resolve_image(g, o->image, rec.image, err) < 0)
		return -1;
	if (registry_tenant_dir(g->state_dir, o->name, dir, sizeof(dir), err) < 0)
		return -1;
	if ((lock = registry_lock(g->state_dir, o->name, err)) < 0)
		return -1;
	if (check_free(g->state_dir, o->name, err) < 0)
		goto out;
	if (o->image) {
		if (image_root_for(g, o->name, rec.image, paths[0], err) < 0)
			goto out;
		so.rootfs = paths[0];
		so.image = rec.image;
	}

	if (!o->vm && run_iso(g, o, &iso, err) < 0)
		goto out;
	so.iso = &iso;
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
		tenant_released(kind, &rec);
		registry_remove(g->state_dir, o->name, NULL);
		goto out;
	}
	print_result(&rec, dir, o->json);
	r = 0;
out:
	/* saved or given up: the record (if any) holds the range now */
	if (iso.id_count)
		userns_unclaim(g->state_dir, iso.id_base);
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
