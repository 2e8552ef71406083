/* Stage 3: restore a tenant from a verified image set. */
#define LOG_PREFIX "restore"
#include "snapshot/restore.h"
#include "snapshot/rootfs_set.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tenant/isolate.h"
#include "tenant/kind.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "proto/manifest.h"
#include "tenant/net.h"
#include "tenant/registry.h"
#include "lib/util.h"

static int read_verified(const char *dir, bool files_verified, manifest_t **m, ferr_t *err)
{
	if (manifest_read(dir, m, err) < 0)
		return ferr_wrap(err, "image set %s", dir);
	if (!files_verified && manifest_verify_files(dir, *m, err) < 0) {
		manifest_free(*m);
		*m = NULL;
		return ferr_wrap(err, "image set %s (nothing was started)", dir);
	}
	return 0;
}

int restore_verify(const char *dir, ferr_t *err)
{
	manifest_t *m = NULL;

	if (read_verified(dir, false, &m, err) < 0)
		return -1;
	manifest_free(m);
	return 0;
}

/* The registry may hold the name already: fine when it is dumped or gone,
 * a conflict when it runs. *old gets the previous record (if any). */
static int check_name_free(const struct restore_opts *o, const char *name, struct tenant_rec *old,
			   bool *had_old, ferr_t *err)
{
	*had_old = false;
	if (registry_load(o->state_dir, name, old, err) < 0) {
		if (err->code != FX_NOTFOUND)
			return -1;
		ferr_clear(err);
		return 0;
	}
	*had_old = true;
	registry_refresh(o->state_dir, old, NULL);
	if (old->state == TS_RUNNING || old->state == TS_FROZEN)
		return ferr_set(err, FX_CONFLICT,
				"tenant %s is already %s (pid %d): nothing was started; restore "
				"under another name with --name",
				name, tenant_state_str(old->state), old->init_pid);
	return 0;
}

/* The record the restored tenant gets (everything but its pid). */
static int build_record(const struct restore_opts *o, const manifest_t *m, const char *name,
			const struct tenant_rec *old, bool had_old, struct tenant_rec *rec,
			ferr_t *err)
{
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	if (kind_from_manifest(m->kind, &rec->kind, err) < 0)
		return -1;
	if (o->rootfs && *o->rootfs)
		snprintf(rec->rootfs, sizeof(rec->rootfs), "%s", o->rootfs);
	else if (m->rootfs)
		snprintf(rec->rootfs, sizeof(rec->rootfs), "%s", m->rootfs);
	iso_from_pb(m->iso, &rec->iso);
	if (m->net && m->net->addr && m->net->addr[0]) {
		snprintf(rec->net.addr, sizeof(rec->net.addr), "%s", m->net->addr);
		snprintf(rec->net.tenant_if, sizeof(rec->net.tenant_if), "%s",
			 m->net->tenant_if && *m->net->tenant_if ? m->net->tenant_if : "eth0");
		if (o->host_if && *o->host_if)
			snprintf(rec->net.host_if, sizeof(rec->net.host_if), "%s", o->host_if);
		else if (had_old && old->net.host_if[0])
			snprintf(rec->net.host_if, sizeof(rec->net.host_if), "%s",
				 old->net.host_if);
		else if (!strcmp(name, m->tenant_name) && m->net->host_if && *m->net->host_if)
			snprintf(rec->net.host_if, sizeof(rec->net.host_if), "%s", m->net->host_if);
		else
			net_host_ifname(name, rec->net.host_if);
	}
	rec->created = m->has_tenant_created && m->tenant_created > 0 ? m->tenant_created
		       : had_old				      ? old->created
								      : wall_time();
	rec->updated = wall_time();
	if (m->n_argv == 0)
		return 0;
	return tenant_rec_set_argv(rec, (int)m->n_argv, m->argv, err);
}

/* The load's events: at its hold point the host side of the tenant's
 * network is plumbed (before it runs), then with register_held the record
 * is written (restore.h), then the caller's hook decides. */
struct load {
	const struct restore_opts *o;
	const struct tenant_kind_ops *kind;
	struct tenant_rec *rec;
	bool plumbed;
	bool saved;
};

static int load_event(enum ckpt_event ev, pid_t pid, void *arg, ferr_t *err)
{
	struct load *l = arg;

	if (ev == CKPT_EV_LOADED && !l->plumbed) {
		if (l->kind->plumb(&l->rec->net, err) < 0)
			return ferr_wrap(err, "host side of the tenant's network");
		l->plumbed = true;
	}
	if (ev == CKPT_EV_LOADED && l->o->register_held && pid > 0 && !l->saved) {
		l->rec->init_pid = pid;
		l->rec->state = TS_FROZEN;
		proc_start_time(pid, &l->rec->init_start, NULL);
		if (registry_save(l->o->state_dir, l->rec, err) < 0)
			return ferr_wrap(err, "registering restored tenant %s", l->rec->name);
		l->saved = true;
	}
	if (l->o->on_event)
		return l->o->on_event(ev, pid, l->o->event_arg, err);
	return 0;
}

/* The backend loads the tenant; its network is plumbed by now. */
static int load(struct load *l, const manifest_t *m, const char *work, const char *dir,
		struct ckpt_load_result *res, ferr_t *err)
{
	const struct restore_opts *o = l->o;
	struct ckpt_env env = {.tool = o->criu_path, .work_dir = work, .log_level = o->log_level};
	struct ckpt_target t = {0};
	struct ckpt_load_opts lo = {.dir = dir,
				    .lazy = o->lazy,
				    .page_fd = o->lazy ? o->page_fd : -1,
				    .tcp_established = m->has_tcp_established && m->tcp_established,
				    .prepared = o->prepared,
				    .on_event = load_event,
				    .arg = l};

	l->kind->target(l->rec, &t);
	if (l->kind->ckpt->load(&env, &t, &lo, res, err) < 0)
		return -1;
	/* a backend that skipped the hold point: plumb now */
	if (!l->plumbed && l->kind->plumb(&l->rec->net, err) < 0) {
		struct tenant_rec dead = *l->rec;
		dead.init_pid = res->pid;
		dead.init_start = 0;
		l->kind->kill(&dead, SIGKILL, 5000, NULL);
		return ferr_wrap(err, "restored tenant's network");
	}
	return 0;
}

static int run_restore(const struct restore_opts *o, const manifest_t *m, struct tenant_rec *rec,
		       struct restore_result *r, struct iso_remap *rm, bool *early, ferr_t *err)
{
	struct load l = {.o = o, .rec = rec};
	struct ckpt_load_result res;
	char work[PATH_MAX];
	pid_t pid;

	l.kind = kind_find(rec->kind);
	if (!l.kind)
		return ferr_set(err, FX_HOST, "no restore driver for a %s tenant on this host",
				tenant_kind_str(rec->kind));
	/* a range another tenant holds here: a free one (isolate.h) */
	if (l.kind->precheck(rec, "this host", err) < 0 ||
	    iso_remap_restore(o->state_dir, rec, r->dir, o->lazy, rm, err) < 0)
		return ferr_wrap(err, "restore of tenant %s (nothing was started)", rec->name);
	r->id_from = rm->to ? rm->from : 0;
	r->id_to = rm->to;
	if (registry_tenant_dir(o->state_dir, rec->name, work, sizeof(work), err) < 0 ||
	    fs_mkdir_p(work, 0700, err) < 0 || l.kind->prepare_load(rec, err) < 0)
		return -1;
	if (o->register_held)
		snprintf(rec->last_dump, sizeof(rec->last_dump), "%s", r->dir);
	uint64_t t0 = now_ns();
	int rr = load(&l, m, work, rm->dir[0] ? rm->dir : r->dir, &res, err);
	*early = l.saved;
	if (rr < 0) {
		tenant_released(l.kind, rec); /* e.g. the cgroup made for it */
		return ferr_wrap(err, "restore of tenant %s failed (nothing is running)",
				 rec->name);
	}
	r->criu_ms = ms_since(t0);
	r->criu_restore_ms = res.load_ms;
	pid = res.pid;
	rec->init_pid = pid;
	rec->state = TS_RUNNING;
	proc_start_time(pid, &rec->init_start, NULL);
	snprintf(rec->last_dump, sizeof(rec->last_dump), "%s", r->dir);
	ferr_t rerr = {0};
	if (l.kind->registered(o->state_dir, rec, &rerr) < 0)
		pr_warn("tenant %s: %s", rec->name, rerr.msg);
	if (registry_save(o->state_dir, rec, err) < 0) {
		l.kind->kill(rec, SIGKILL, 5000, NULL);
		l.kind->unplumb(&rec->net, NULL);
		tenant_released(l.kind, rec);
		return ferr_wrap(err, "tenant %s was restored but not registered (killed it)",
				 rec->name);
	}
	r->pid = pid;
	return 0;
}

int restore_tenant(const struct restore_opts *o, struct restore_result *r, ferr_t *err)
{
	struct tenant_rec rec = {0}, old = {0};
	manifest_t *m = NULL;
	bool had_old = false;
	uint64_t t0 = now_ns();
	int lock = -1, ret = -1;

	memset(r, 0, sizeof(*r));
	if (!realpath(o->images_dir, r->dir))
		return ferr_sys(err, FX_NOTFOUND, "image set %s", o->images_dir);
	if (read_verified(r->dir, o->files_verified, &m, err) < 0)
		return -1;
	r->verify_ms = ms_since(t0);
	snprintf(r->set_id, sizeof(r->set_id), "%s", m->set_id);
	r->size = manifest_total_size(m);
	const char *name = o->name ? o->name : m->tenant_name;
	if (!tenant_name_valid(name)) {
		ferr_set(err, o->name ? FX_USAGE : FX_INTEGRITY, "invalid tenant name '%s'", name);
		goto out;
	}
	snprintf(r->name, sizeof(r->name), "%s", name);
	if (registry_init(o->state_dir, err) < 0)
		goto out;
	lock = registry_lock(o->state_dir, name, err);
	if (lock < 0)
		goto out;
	if (check_name_free(o, name, &old, &had_old, err) < 0)
		goto out;
	if (build_record(o, m, name, &old, had_old, &rec, err) < 0)
		goto out;
	if (rootfs_set_unpack(o->state_dir, m, r->dir, &rec, err) < 0) {
		if (rec.image[0] && !had_old)
			rootfs_set_discard(o->state_dir, name);
		goto out;
	}
	r->kind = rec.kind;
	pr_info("restoring %s %s from %s", tenant_kind_str(rec.kind), name, r->dir);
	bool early = false;
	struct iso_remap rm = {0};
	ret = run_restore(o, m, &rec, r, &rm, &early, err);
	iso_remap_end(o->state_dir, &rm, ret == 0);
	if (ret < 0 && rec.image[0] && !had_old)
		rootfs_set_discard(o->state_dir, name);
	if (ret < 0 && early) {
		/* registered at post-restore, then the restore failed */
		if (had_old)
			registry_save(o->state_dir, &old, NULL);
		else
			registry_remove(o->state_dir, name, NULL);
	}
	r->total_ms = ms_since(t0);
out:
	if (lock >= 0)
		close(lock);
	if (had_old)
		tenant_rec_free(&old);
	tenant_rec_free(&rec);
	manifest_free(m);
	return ret;
}
