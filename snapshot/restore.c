/* Stage 3: restore a tenant from a verified image set. */
#define LOG_PREFIX "restore"
#include "snapshot/restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tenant/container.h"
#include "criu/stats.h"
#include "tenant/driver.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "proto/manifest.h"
#include "tenant/net.h"
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

static int tenant_kind_of(const manifest_t *m, enum tenant_kind *k, ferr_t *err)
{
	if (tenant_kind_from_pb(m->kind, k) < 0)
		return ferr_set(err, FX_INTEGRITY, "the manifest names an unknown tenant kind %d",
				(int)m->kind);
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
static int build_record(const manifest_t *m, const char *name, const struct tenant_rec *old,
			bool had_old, struct tenant_rec *rec, ferr_t *err)
{
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	if (tenant_kind_of(m, &rec->kind, err) < 0)
		return -1;
	if (m->rootfs)
		snprintf(rec->rootfs, sizeof(rec->rootfs), "%s", m->rootfs);
	if (m->net && m->net->addr && m->net->addr[0]) {
		snprintf(rec->net.addr, sizeof(rec->net.addr), "%s", m->net->addr);
		snprintf(rec->net.tenant_if, sizeof(rec->net.tenant_if), "%s",
			 m->net->tenant_if && *m->net->tenant_if ? m->net->tenant_if : "eth0");
		if (had_old && old->net.host_if[0])
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

/* register_held: the record is written at post-restore (restore.h). */
struct held {
	const struct restore_opts *o;
	struct tenant_rec *rec;
	bool saved;
};

static int held_notify(const char *script, pid_t pid, void *arg, ferr_t *err)
{
	struct held *h = arg;

	if (!strcmp(script, "post-restore") && pid > 0 && !h->saved) {
		h->rec->init_pid = pid;
		h->rec->state = TS_FROZEN;
		proc_start_time(pid, &h->rec->init_start, NULL);
		if (registry_save(h->o->state_dir, h->rec, err) < 0)
			return ferr_wrap(err, "registering restored tenant %s", h->rec->name);
		h->saved = true;
	}
	if (h->o->notify)
		return h->o->notify(script, pid, h->o->notify_arg, err);
	return 0;
}

static int run_restore(const struct restore_opts *o, const manifest_t *m, struct tenant_rec *rec,
		       struct restore_result *r, bool *early, ferr_t *err)
{
	struct held held = {.o = o, .rec = rec};
	const struct tenant_driver *drv = driver_find(rec->kind);
	struct driver_restore_opts ro = {0};
	struct stat st;
	char work[PATH_MAX];
	pid_t pid;

	if (!drv)
		return ferr_set(err, FX_HOST, "no restore driver for a %s tenant on this host",
				tenant_kind_str(rec->kind));
	if (rec->kind == TK_CONTAINER && (stat(rec->rootfs, &st) < 0 || !S_ISDIR(st.st_mode)))
		return ferr_set(err, FX_NOTFOUND,
				"root file system %s of tenant %s is missing on this host: "
				"nothing was started",
				rec->rootfs[0] ? rec->rootfs : "(none)", rec->name);
	if (registry_tenant_dir(o->state_dir, rec->name, work, sizeof(work), err) < 0 ||
	    fs_mkdir_p(work, 0700, err) < 0)
		return -1;
	struct driver_env env = {
	    .criu_path = o->criu_path, .work_dir = work, .log_level = o->log_level};
	ro.images_dir = r->dir;
	ro.rootfs = rec->rootfs[0] ? rec->rootfs : NULL;
	ro.net = &rec->net;
	ro.tcp_established = m->has_tcp_established && m->tcp_established;
	ro.ps.fd = -1;
	ro.lazy_pages = o->lazy_pages;
	ro.swrk = o->swrk;
	ro.notify = o->notify;
	ro.notify_arg = o->notify_arg;
	if (o->register_held) {
		snprintf(rec->last_dump, sizeof(rec->last_dump), "%s", r->dir);
		ro.notify = held_notify;
		ro.notify_arg = &held;
	}
	char stale[PATH_MAX];
	if (xsnprintf_path(stale, sizeof(stale), work, "stats-restore") == 0)
		unlink(stale); /* never report an older restore's timings */
	uint64_t t0 = now_ns();
	int rr = drv->restore(&env, &ro, &pid, err);
	*early = held.saved;
	if (rr < 0)
		return ferr_wrap(err, "restore of tenant %s failed (nothing is running)",
				 rec->name);
	r->criu_ms = ms_since(t0);
	struct criu_stats cst;
	if (criu_stats_read(work, "stats-restore", &cst, NULL) == 0 && cst.has_restore)
		r->criu_restore_ms = cst.restore_ms;
	rec->init_pid = pid;
	rec->state = TS_RUNNING;
	proc_start_time(pid, &rec->init_start, NULL);
	snprintf(rec->last_dump, sizeof(rec->last_dump), "%s", r->dir);
	if (rec->kind == TK_CONTAINER &&
	    container_link_console(o->state_dir, rec->name, rec->rootfs, NULL) < 0)
		pr_warn("tenant %s: no console log link in the state directory", rec->name);
	if (registry_save(o->state_dir, rec, err) < 0) {
		drv->kill(&env, rec, NULL);
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
	if (build_record(m, name, &old, had_old, &rec, err) < 0)
		goto out;
	r->kind = rec.kind;
	pr_info("restoring %s %s from %s", tenant_kind_str(rec.kind), name, r->dir);
	bool early = false;
	ret = run_restore(o, m, &rec, r, &early, err);
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
