/* Container driver: tenants started by `ferry run` (own PID, mount, UTS, IPC
 * and network namespaces, pivot_root'ed into a rootfs, init is a session
 * leader inside, stdio on the container's own /dev/null).
 *
 * CRIU options (see docs/dump-restore.md):
 *   dump:    pid = init, network_lock NFTABLES (no iptables on the host),
 *            tcp_established on request, file_locks;
 *   restore: root = rootfs, veth pair tenant_if -> host_if, rst_sibling
 *            (detached), the same lock and TCP options; on the "post-restore"
 *            notification (tree restored, not yet running, network still
 *            locked) the host side of the veth is plumbed. */
#define LOG_PREFIX "container"
#include <stdio.h>
#include <string.h>

#include "tenant/container.h"
#include "tenant/driver.h"
#include "lib/log.h"
#include "tenant/net.h"

static int ctr_dump(const struct driver_env *env, const struct tenant_rec *rec,
		    const struct driver_dump_opts *o, struct criu_dump_result *res, ferr_t *err)
{
	struct criu_dump_opts d;

	driver_criu_dump_opts(env, rec, o, &d);
	if (criu_dump(&d, res, err) < 0)
		return ferr_wrap(err, "container %s", rec->name);
	/* The tenant's network namespace, and with it the veth pair, goes away
	 * asynchronously; remove the host side now so that a restore on this
	 * host right away can create it again. */
	if (!o->leave_running && !o->pre_dump && rec->net.host_if[0])
		net_host_unplumb(rec->net.host_if, rec->net.addr[0] ? rec->net.addr : NULL, NULL);
	return 0;
}

struct restore_hook {
	const struct driver_restore_opts *o;
	bool plumbed;
};

static bool has_net(const struct tenant_net *n)
{
	return n && n->addr[0] && n->host_if[0];
}

static int ctr_notify(const char *script, pid_t pid, void *arg, ferr_t *err)
{
	struct restore_hook *h = arg;

	if (!strcmp(script, "post-restore") && has_net(h->o->net) && !h->plumbed) {
		if (net_host_plumb(h->o->net->host_if, h->o->net->addr, err) < 0)
			return ferr_wrap(err, "host side of the tenant's network");
		h->plumbed = true;
	}
	if (h->o->notify)
		return h->o->notify(script, pid, h->o->notify_arg, err);
	return 0;
}

static int ctr_restore(const struct driver_env *env, const struct driver_restore_opts *o,
		       pid_t *pid, ferr_t *err)
{
	struct criu_restore_opts r;
	struct restore_hook hook = {.o = o};
	struct criu_veth veth;

	if (!o->rootfs || !*o->rootfs)
		return ferr_set(err, FX_INTEGRITY, "the image set names no root file system");
	/* CRIU reopens the init's stdio (the console log) by path */
	if (container_prepare_restore(o->rootfs, err) < 0)
		return -1;
	/* the address and the host interface must be free before anything starts */
	if (has_net(o->net) && net_check_config(o->net->host_if, o->net->addr, err) < 0)
		return -1;
	driver_criu_restore_opts(env, o, &r);
	/* ctr_notify plumbs the host side, then calls the caller's o->notify */
	r.c.notify = ctr_notify;
	r.c.notify_arg = &hook;
	r.root = o->rootfs;
	/* post-copy: the tenant is down while CRIU starts (criu_kdat.h) */
	r.kdat_ns = o->lazy_pages;
	if (has_net(o->net)) {
		veth.if_in = o->net->tenant_if[0] ? o->net->tenant_if : "eth0";
		veth.if_out = o->net->host_if;
		r.veths = &veth;
		r.n_veths = 1;
	}
	if (criu_restore(&r, pid, err) < 0)
		return -1;
	/* CRIU versions that skip the notification: plumb now. */
	if (has_net(o->net) && !hook.plumbed &&
	    net_host_plumb(o->net->host_if, o->net->addr, err) < 0) {
		driver_kill_tree(*pid, NULL);
		return ferr_wrap(err, "restored tenant's network");
	}
	return 0;
}

static int ctr_resume(const struct driver_env *env, struct tenant_rec *rec, ferr_t *err)
{
	return driver_resume_from_images(&driver_container, env, rec, err);
}

static int ctr_kill(const struct driver_env *env, const struct tenant_rec *rec, ferr_t *err)
{
	(void)env;
	/* the init of a PID namespace takes every task of it along */
	if (driver_kill_tree(rec->init_pid, err) < 0)
		return ferr_wrap(err, "killing container %s", rec->name);
	if (rec->net.host_if[0] &&
	    net_host_unplumb(rec->net.host_if, rec->net.addr[0] ? rec->net.addr : NULL, err) < 0)
		return ferr_wrap(err, "container %s", rec->name);
	return 0;
}

const struct tenant_driver driver_container = {
    .kind = TK_CONTAINER,
    .name = "container",
    .dump = ctr_dump,
    .restore = ctr_restore,
    .resume = ctr_resume,
    .kill = ctr_kill,
};
