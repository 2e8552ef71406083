/* Container tenants (kind.h): started by `ferry run` (own PID, mount, UTS,
 * IPC and network namespaces, pivot_root'ed into a rootfs, init a session
 * leader inside, stdio on the container's own /dev/null), saved and loaded
 * by CRIU (ckpt_criu.c) into their root file system with their veth pair.
 * The host side of the veth is plumbed at the load's hold point (tree
 * loaded, not yet running, network still locked) and removed once the
 * tenant left this host (docs/tenants.md). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"
#include "tenant/cgroup.h"
#include "tenant/container.h"
#include "tenant/image.h"
#include "tenant/isolate.h"
#include "tenant/kind.h"
#include "tenant/net.h"
#include "tenant/rootfs.h"
#include "tenant/userns.h"

static bool has_net(const struct tenant_net *n)
{
	return n && n->addr[0] && n->host_if[0];
}

static int ctr_start(const struct tenant_start *o, struct tenant_rec *rec, ferr_t *err)
{
	struct container_info ci;

	rec->kind = TK_CONTAINER;
	rec->state = TS_RUNNING;
	snprintf(rec->rootfs, sizeof(rec->rootfs), "%s", o->rootfs);
	if (o->net) {
		snprintf(rec->net.addr, sizeof(rec->net.addr), "%s", o->net);
		net_host_ifname(o->name, rec->net.host_if);
		snprintf(rec->net.tenant_if, sizeof(rec->net.tenant_if), "eth0");
	}
	if (o->iso)
		rec->iso = *o->iso;
	if (tenant_rec_set_argv(rec, o->argc, o->argv, err) < 0)
		return -1;
	/* fail early, before a container is started only to be killed */
	if (o->net && (net_check_config(rec->net.host_if, o->net, err) < 0 ||
		       (!o->host_only && net_check_movable(o->net, err) < 0))) {
		if (err->code == FX_HOST) /* what else to do */
			snprintf(err->msg + strlen(err->msg), sizeof(err->msg) - strlen(err->msg),
				 "; or run it with --host-only (reached from this host only)");
		return -1;
	}
	struct container_opts co = {
	    .name = o->name,
	    .rootfs = o->rootfs,
	    .argv = o->argv,
	    .net_addr = o->net,
	    .host_if = rec->net.host_if,
	    .tenant_if = rec->net.tenant_if,
	    .id_base = rec->iso.id_base,
	    .id_count = rec->iso.id_count,
	    .harden = rec->iso.hardened,
	};
	/* what tells hosts sharing the tree from hosts that only have a
	 * directory of that name (a migration's destination checks it) */
	char id[33];
	if (!o->image) /* not fatal: a migration makes it when missing */
		rootfs_identity(o->rootfs, true, id, NULL);
	struct tenant_cg cg;
	bool with_cg = tenant_has_cgroup(&rec->iso);
	if (with_cg &&
	    (cgroup_locate(o->name, &cg, err) < 0 || cgroup_setup(&cg, &rec->iso, err) < 0))
		return ferr_wrap(err, "tenant %s", o->name);
	co.cg = with_cg ? &cg : NULL;
	if (container_start(&co, &ci, err) < 0) {
		if (with_cg)
			cgroup_remove(&cg);
		return -1;
	}
	rec->init_pid = ci.pid;
	rec->init_start = ci.start;
	rec->created = rec->updated = wall_time();
	return 0;
}

/* The init of a PID namespace takes every task of it along; their cgroup
 * empties once the last is reaped: a short wait for that (ctr_released). */
static int ctr_kill(const struct tenant_rec *rec, int sig, int timeout_ms, ferr_t *err)
{
	struct tenant_cg cg;

	if (container_stop(rec->init_pid, rec->init_start, sig, timeout_ms, err) < 0)
		return -1;
	if (tenant_has_cgroup(&rec->iso) && cgroup_locate(rec->name, &cg, NULL) == 0)
		for (int i = 0; i < 50 && (cgroup_remove(&cg), access(cg.h[0].dir, F_OK) == 0); i++)
			usleep(10000);
	/* an image tenant's overlay goes with it (its upper layer stays) */
	return rec->image[0] ? rootfs_umount(rec->rootfs, err) : 0;
}

/* Its cgroup, at once (a dump or a move must not wait here): one still
 * busy stays, empty and with no limit in use, and is reused when the
 * tenant comes back. */
static void ctr_released(const struct tenant_rec *rec)
{
	struct tenant_cg cg;

	if (tenant_has_cgroup(&rec->iso) && cgroup_locate(rec->name, &cg, NULL) == 0)
		cgroup_remove(&cg);
}

static int ctr_plumb(const struct tenant_net *n, ferr_t *err)
{
	return has_net(n) ? net_host_plumb(n->host_if, n->addr, err) : 0;
}

static int ctr_cut(const struct tenant_net *n, ferr_t *err)
{
	return has_net(n) ? net_host_cut(n->host_if, n->addr, err) : 0;
}

/* The tenant's network namespace, and with it the veth pair, goes away
 * asynchronously: removing the host side at once lets a restore on this
 * host create it again right away. */
static int ctr_unplumb(const struct tenant_net *n, ferr_t *err)
{
	if (!n->host_if[0])
		return 0;
	return net_host_unplumb(n->host_if, n->addr[0] ? n->addr : NULL, err);
}

static int ctr_precheck(const struct tenant_rec *rec, const char *host, ferr_t *err)
{
	struct stat st;

	if (rec->image[0] && rec->rootfs[0]) {
		char sd[PATH_MAX];
		const char *name;
		if (rootfs_split(rec->rootfs, sd, sizeof(sd), &name, err) < 0)
			return -1;
		if (!image_present(sd, rec->image))
			return ferr_set(err, FX_NOTFOUND,
					"image %.12s of tenant %s is not in the image store on %s",
					rec->image, rec->name, host);
	} else if (!rec->rootfs[0] || stat(rec->rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
		return ferr_set(err, FX_NOTFOUND,
				"root file system %s of tenant %s is missing on %s",
				rec->rootfs[0] ? rec->rootfs : "(none)", rec->name, host);
	/* the address and the host interface must be free before anything starts */
	if (has_net(&rec->net) && net_check_config(rec->net.host_if, rec->net.addr, err) < 0)
		return ferr_wrap(err, "tenant %s cannot get its address on %s", rec->name, host);
	return 0;
}

/* CRIU reopens the init's stdio (the console log) by path. */
static int ctr_prepare_load(const struct tenant_rec *rec, ferr_t *err)
{
	struct tenant_cg cg;

	/* CRIU restores into the overlay: it must be there first */
	if (rec->image[0] && rootfs_mount_root(rec->rootfs, rec->image, err) < 0)
		return -1;
	/* a copy of its rootfs on this host may not be shifted yet: once */
	if (rec->iso.id_count &&
	    (userns_shift_rootfs(rec->rootfs, rec->iso.id_base, rec->iso.id_count, err) < 0 ||
	     userns_make_dev(rec->rootfs, rec->iso.id_base, err) < 0))
		return ferr_wrap(err, "tenant %s", rec->name);
	if (container_prepare_restore(rec->rootfs, err) < 0)
		return -1;
	/* its limits come with it: its cgroup here, before CRIU puts it in */
	if (tenant_has_cgroup(&rec->iso) &&
	    (cgroup_locate(rec->name, &cg, err) < 0 || cgroup_setup(&cg, &rec->iso, err) < 0))
		return ferr_wrap(err, "tenant %s", rec->name);
	return 0;
}

static int ctr_registered(const char *state_dir, const struct tenant_rec *rec, ferr_t *err)
{
	return container_link_console(state_dir, rec->name, rec->rootfs, err);
}

static void ctr_target(const struct tenant_rec *rec, struct ckpt_target *t)
{
	t->pid = rec->init_pid;
	t->root = rec->rootfs[0] ? rec->rootfs : NULL;
	t->net = &rec->net;
	t->own_mounts = true;
	t->userns_gid = rec->iso.id_count ? rec->iso.id_base : 0;
	struct tenant_cg cg;
	if (!tenant_has_cgroup(&rec->iso) || !rec->name[0] ||
	    cgroup_locate(rec->name, &cg, NULL) < 0)
		return;
	for (int i = 0; i < cg.n && i < (int)ARRAY_SIZE(t->cg_root); i++) {
		snprintf(t->cg_root[i].ctrl, sizeof(t->cg_root[i].ctrl), "%s", cg.h[i].ctrl);
		snprintf(t->cg_root[i].path, sizeof(t->cg_root[i].path), "%s", cg.h[i].rel);
		t->n_cg_root++;
	}
}

static void ctr_describe(const struct tenant_rec *rec, manifest_t *m)
{
	if (rec->rootfs[0])
		manifest_set_str(&m->rootfs, rec->rootfs);
	if (rec->image[0])
		manifest_set_str(&m->image_id, rec->image);
	m->iso = iso_to_pb(&rec->iso);
	kind_describe_net(&rec->net, m);
}

const struct tenant_kind_ops kind_container = {
    .kind = TK_CONTAINER,
    .name = "container",
    .ckpt = &ckpt_criu,
    .has_root = true,
    .start = ctr_start,
    .kill = ctr_kill,
    .plumb = ctr_plumb,
    .cut = ctr_cut,
    .unplumb = ctr_unplumb,
    .precheck = ctr_precheck,
    .released = ctr_released,
    .prepare_load = ctr_prepare_load,
    .registered = ctr_registered,
    .target = ctr_target,
    .describe = ctr_describe,
};
