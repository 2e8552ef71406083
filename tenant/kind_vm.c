/* VM tenants (kind.h): a QEMU machine started by `ferry run --vm`, saved
 * and loaded by the QEMU checkpoint backend (ckpt_qemu.c). Its record's
 * argv is its machine: qemu-system-x86_64 with the machine type ("pc"
 * resolved to the versioned type, so that it migrates), CPU model qemu64
 * (the same on KVM and TCG), memory, CPUs, serial port, a virtio NIC when
 * it has a network, the kernel or the disk it boots. Its pid is QEMU's.
 * With --net, QEMU's tap device (fy-NAME) gets the container's model on
 * the host: a /32 route and proxy ARP (tenant/net.c); the guest sets its
 * own address (with --kernel ferry appends ip=ADDR::::NAME:eth0:off). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/util.h"
#include "tenant/ckpt_qemu.h"
#include "tenant/kind.h"
#include "tenant/kind_tree.h"
#include "tenant/net.h"
#include "tenant/vmprobe.h"

#define VM_ARGS 40

static bool has_net(const struct tenant_net *n)
{
	return n && n->addr[0] && n->host_if[0];
}

struct cfg {
	char *v[VM_ARGS];
	int n;
	char s[8][PATH_MAX + 64];
	int ns;
};

static void put(struct cfg *c, const char *a)
{
	if (c->n < VM_ARGS - 1)
		c->v[c->n++] = (char *)a;
}

static char *fmt(struct cfg *c, const char *f, const char *a, const char *b)
{
	char *s = c->s[c->ns < 7 ? c->ns++ : 7];
	snprintf(s, sizeof(c->s[0]), f, a, b);
	return s;
}

/* qcow2 by its magic, raw otherwise. */
static const char *disk_format(const char *path)
{
	FILE *f = fopen(path, "rb");
	char m[4] = {0};

	if (f) {
		if (fread(m, 1, 4, f) != 4)
			m[0] = 0;
		fclose(f);
	}
	return memcmp(m, "QFI\xfb", 4) ? "raw" : "qcow2";
}

/* A stable MAC of the tenant's name (locally administered). */
static void mac_of(const char *name, char out[18])
{
	uint32_t h = 2166136261u;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	snprintf(out, 18, "52:54:%02x:%02x:%02x:%02x", h >> 24, (h >> 16) & 255, (h >> 8) & 255,
		 h & 255);
}

static int build_cfg(const struct tenant_start *o, const struct tenant_net *net, struct cfg *c,
		     ferr_t *err)
{
	const struct vm_spec *vm = o->vm;
	char qemu[PATH_MAX], mach[64], cpus[16], mac[18];

	if (vm_qemu_locate(qemu, sizeof(qemu), err) < 0 ||
	    qemu_machine(qemu, mach, sizeof(mach), err) < 0)
		return -1;
	snprintf(cpus, sizeof(cpus), "%d", vm->cpus > 0 ? vm->cpus : 1);
	put(c, "qemu-system-x86_64");
	put(c, "-machine");
	put(c, fmt(c, "%s%s", mach, ""));
	put(c, "-cpu");
	put(c, "qemu64");
	put(c, "-m");
	put(c, vm->memory ? vm->memory : "128M");
	put(c, "-smp");
	put(c, fmt(c, "%s%s", cpus, ""));
	put(c, "-nodefaults");
	put(c, "-no-user-config");
	put(c, "-serial");
	put(c, "chardev:ser0");
	if (has_net(net)) {
		mac_of(o->name, mac);
		put(c, "-device");
		put(c, fmt(c, "virtio-net-pci,netdev=n0,mac=%s%s", mac, ""));
	}
	if (vm->disk) {
		put(c, "-drive");
		put(c, fmt(c, "file=%s,format=%s,if=ide,index=0,media=disk", vm->disk,
			   disk_format(vm->disk)));
		return 0;
	}
	put(c, "-kernel");
	put(c, vm->kernel);
	if (vm->initrd) {
		put(c, "-initrd");
		put(c, vm->initrd);
	}
	char ip[128] = "";
	if (has_net(net))
		snprintf(ip, sizeof(ip), "%sip=%.*s::::%s:eth0:off", vm->append ? " " : "",
			 (int)strcspn(net->addr, "/"), net->addr, o->name);
	if (vm->append || ip[0]) {
		put(c, "-append");
		put(c, fmt(c, "%s%s", vm->append ? vm->append : "", ip));
	}
	return 0;
}

static int vm_start(const struct tenant_start *o, struct tenant_rec *rec, ferr_t *err)
{
	struct cfg c = {.n = 0};

	if (!o->vm || !o->dir || (!o->vm->kernel == !o->vm->disk))
		return ferr_set(err, FX_USAGE, "a VM boots either --kernel FILE or --disk IMAGE");
	rec->kind = TK_VM;
	rec->state = TS_RUNNING;
	if (o->net) {
		snprintf(rec->net.addr, sizeof(rec->net.addr), "%s", o->net);
		net_host_ifname(o->name, rec->net.host_if);
		snprintf(rec->net.tenant_if, sizeof(rec->net.tenant_if), "eth0");
		if (net_check_config(rec->net.host_if, o->net, err) < 0 ||
		    (!o->host_only && net_check_movable(o->net, err) < 0))
			return -1;
	}
	if (fs_mkdir_p(o->dir, 0700, err) < 0 || build_cfg(o, &rec->net, &c, err) < 0 ||
	    tenant_rec_set_argv(rec, c.n, c.v, err) < 0)
		return -1;
	if (qemu_launch(o->dir, o->name, rec->argc, rec->argv, &rec->net, NULL, &rec->init_pid,
			NULL, err) < 0)
		return -1;
	proc_start_time(rec->init_pid, &rec->init_start, NULL);
	rec->created = rec->updated = wall_time();
	if (has_net(&rec->net) && net_host_plumb(rec->net.host_if, rec->net.addr, err) < 0) {
		qemu_end(NULL, rec->init_pid, 0);
		return ferr_wrap(err, "VM %s's tap device", o->name);
	}
	return 0;
}

/* QEMU ends on SIGTERM as on `quit`; SIGKILL otherwise. */
static int vm_kill(const struct tenant_rec *rec, int sig, int timeout_ms, ferr_t *err)
{
	if (!tenant_pid_alive(rec->init_pid, rec->init_start))
		return 0;
	return ktree_kill(rec->init_pid, sig, timeout_ms, err);
}

static int vm_plumb(const struct tenant_net *n, ferr_t *err)
{
	return has_net(n) ? net_host_plumb(n->host_if, n->addr, err) : 0;
}

static int vm_cut(const struct tenant_net *n, ferr_t *err)
{
	return has_net(n) ? net_host_cut(n->host_if, n->addr, err) : 0;
}

/* The tap goes with QEMU; its route and proxy ARP with it. */
static int vm_unplumb(const struct tenant_net *n, ferr_t *err)
{
	return has_net(n) ? net_host_unplumb(n->host_if, n->addr, err) : 0;
}

/* A tap device of that name: made by a QEMU that holds it open (a QEMU's
 * tap goes with it). The registry refused a running tenant of this name
 * already, so it is the incoming QEMU a migration's destination started
 * ahead for this VM (ckpt_qemu_in.c), whose address the destination
 * checked at MIGRATE_BEGIN. */
static bool tap_held(const char *ifname)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "/sys/class/net/%s/tun_flags", ifname);
	return ifname[0] && !strchr(ifname, '/') && access(p, F_OK) == 0;
}

/* QEMU runs (the accelerator probed now, not while the source is frozen)
 * and every file the machine names (kernel, initrd, disk) is there. */
static int vm_precheck(const struct tenant_rec *rec, const char *host, ferr_t *err)
{
	struct vm_probe p;

	/* a migration's destination learns the configuration with the
	 * manifest, later: QEMU's start checks it then */
	if (rec->argc > 0 && qemu_config_check(rec->argc, rec->argv, err) < 0)
		return ferr_wrap(err, "VM %s (refused on %s)", rec->name, host);
	if (vm_probe(&p, err) < 0)
		return ferr_wrap(err, "VM %s cannot run on %s", rec->name, host);
	for (int i = 1; i + 1 < rec->argc; i++) {
		const char *a = rec->argv[i], *f = rec->argv[i + 1];
		char path[PATH_MAX];
		if (!strcmp(a, "-drive") && !strncmp(f, "file=", 5))
			snprintf(path, sizeof(path), "%.*s", (int)strcspn(f + 5, ","), f + 5);
		else if (!strcmp(a, "-kernel") || !strcmp(a, "-initrd"))
			snprintf(path, sizeof(path), "%s", f);
		else
			continue;
		if (access(path, R_OK) < 0)
			return ferr_sys(err, FX_NOTFOUND, "VM %s needs %s on %s", rec->name, path,
					host);
	}
	if (has_net(&rec->net) && !tap_held(rec->net.host_if) &&
	    net_check_config(rec->net.host_if, rec->net.addr, err) < 0)
		return ferr_wrap(err, "VM %s cannot get its address on %s", rec->name, host);
	return 0;
}

static int vm_prepare_load(const struct tenant_rec *rec, ferr_t *err)
{
	(void)rec;
	(void)err;
	return 0;
}

static int vm_registered(const char *state_dir, const struct tenant_rec *rec, ferr_t *err)
{
	(void)state_dir;
	(void)rec;
	(void)err;
	return 0;
}

static void vm_target(const struct tenant_rec *rec, struct ckpt_target *t)
{
	t->pid = rec->init_pid;
	t->net = has_net(&rec->net) ? &rec->net : NULL;
	t->name = rec->name;
	t->argc = rec->argc;
	t->argv = rec->argv;
}

/* Its disk images travel with a migration (QEMU's block migration) unless
 * the storage is shared: raw images only (a qcow2's virtual size is not
 * its file's, and its format would need qemu-img on the destination). */
static int vm_volumes(const struct tenant_rec *rec, struct tenant_volume *v, ferr_t *err)
{
	int n = 0;

	for (int i = 1; i + 1 < rec->argc; i++) {
		const char *f = rec->argv[i + 1];
		struct stat st;
		if (strcmp(rec->argv[i], "-drive") || strncmp(f, "file=", 5))
			continue;
		if (!strstr(f, ",format=raw,"))
			return ferr_set(err, FX_HOST,
					"VM %s: only raw disk images can be copied, not %s",
					rec->name, f + 5);
		if (n == TENANT_VOLUMES_MAX)
			return ferr_set(err, FX_HOST, "VM %s: more than %d disks", rec->name,
					TENANT_VOLUMES_MAX);
		snprintf(v[n].path, sizeof(v[n].path), "%.*s", (int)strcspn(f + 5, ","), f + 5);
		if (stat(v[n].path, &st) < 0)
			return ferr_sys(err, FX_HOST, "VM %s's disk %s", rec->name, v[n].path);
		v[n++].bytes = (uint64_t)st.st_size;
	}
	return n;
}

static void vm_describe(const struct tenant_rec *rec, manifest_t *m)
{
	if (has_net(&rec->net))
		kind_describe_net(&rec->net, m);
}

const struct tenant_kind_ops kind_vm = {
    .kind = TK_VM,
    .name = "vm",
    .ckpt = &ckpt_qemu,
    .start = vm_start,
    .kill = vm_kill,
    .plumb = vm_plumb,
    .cut = vm_cut,
    .unplumb = vm_unplumb,
    .precheck = vm_precheck,
    .prepare_load = vm_prepare_load,
    .registered = vm_registered,
    .target = vm_target,
    .describe = vm_describe,
    .volumes = vm_volumes,
};
