/* Stage 1: dump a tenant into an image set. */
#define LOG_PREFIX "dump"
#include "snapshot/dump.h"
#include "snapshot/rootfs_set.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tenant/kind.h"
#include "lib/fsutil.h"
#include "tenant/hostinfo.h"
#include "tenant/uidcheck.h"
#include "lib/log.h"
#include "proto/manifest.h"
#include "lib/util.h"
#include "lib/version.h"

int dump_prepare_dir(const char *dir, ferr_t *err)
{
	struct dirent *de;
	char path[PATH_MAX];
	DIR *d = opendir(dir);
	bool empty = true;

	if (!d) {
		if (errno != ENOENT)
			return ferr_sys(err, FX_FAIL, "image directory %s", dir);
		return fs_mkdir_p(dir, 0700, err);
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = false;
			break;
		}
	}
	closedir(d);
	if (empty)
		return 0;
	if (xsnprintf_path(path, sizeof(path), dir, MANIFEST_NAME) == 0 && access(path, F_OK) == 0)
		return ferr_set(err, FX_CONFLICT,
				"%s already holds an image set (%s): dump into a new, empty "
				"directory",
				dir, MANIFEST_NAME);
	return ferr_set(err, FX_CONFLICT, "image directory %s is not empty: use an empty one", dir);
}

/* Remove what a failed dump left in dir (which was empty before). */
static void clear_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (xsnprintf_path(path, sizeof(path), dir, de->d_name) == 0)
			fs_rm_rf(path, NULL);
	}
	closedir(d);
}

/* The record of a tree ferry did not start: registered as kind proctree. */
static int proctree_record(const struct dump_opts *o, struct tenant_rec *rec, ferr_t *err)
{
	const struct tenant_kind_ops *kind = kind_by_name("proctree");
	struct tenant_start so = {.pid = o->pid};
	char name[64];
	int r;

	if (o->name)
		snprintf(name, sizeof(name), "%s", o->name);
	else
		snprintf(name, sizeof(name), "pid-%d", o->pid);
	if (!tenant_name_valid(name))
		return ferr_set(err, FX_USAGE, "invalid tenant name '%s'", name);
	r = registry_load(o->state_dir, name, rec, err);
	if (r == 0) {
		registry_refresh(o->state_dir, rec, NULL);
		if ((rec->state == TS_RUNNING || rec->state == TS_FROZEN) &&
		    rec->init_pid != o->pid) {
			pid_t other = rec->init_pid;
			tenant_rec_free(rec);
			return ferr_set(err, FX_CONFLICT,
					"the name %s belongs to a running tenant (pid %d): choose "
					"another with --name",
					name, other);
		}
		tenant_rec_free(rec);
	} else if (err->code != FX_NOTFOUND) {
		return -1;
	}
	ferr_clear(err);
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	so.name = rec->name;
	return kind->start(&so, rec, err);
}

static int load_tenant(const struct dump_opts *o, struct tenant_rec *rec, ferr_t *err)
{
	if (registry_load(o->state_dir, o->name, rec, err) < 0) {
		if (err->code == FX_NOTFOUND)
			return ferr_set(err, FX_NOTFOUND,
					"no tenant named %s (see `ferry ps`; a process tree "
					"not started by ferry: --pid PID)",
					o->name);
		return -1;
	}
	if (registry_refresh(o->state_dir, rec, err) < 0) {
		tenant_rec_free(rec);
		return -1;
	}
	/* We hold the tenant's lock, so no dump is in progress: "frozen" with a
	 * live init is what an interrupted ferry left (CRIU lets the tree go
	 * when it ends). */
	if (rec->state == TS_FROZEN) {
		pr_warn("tenant %s: stale frozen state from an interrupted dump", rec->name);
		rec->state = TS_RUNNING;
	}
	if (rec->state != TS_RUNNING) {
		enum tenant_state s = rec->state;
		tenant_rec_free(rec);
		return ferr_set(err, FX_CONFLICT, "tenant %s is not running (state %s)", o->name,
				tenant_state_str(s));
	}
	return 0;
}

static void set_source(manifest_t *m, const struct hostinfo *h)
{
	Ferry__SourceHost *s = calloc(1, sizeof(*s));

	if (!s)
		return;
	ferry__source_host__init(s);
	manifest_set_str(&s->hostname, h->hostname);
	manifest_set_str(&s->kernel, h->kernel);
	manifest_set_str(&s->criu_version, h->criu_version);
	manifest_set_str(&s->cpu_model, h->cpu_model);
	manifest_set_str(&s->ferry_version, FERRY_VERSION);
	m->source = s;
}

static void set_timings(manifest_t *m, const struct dump_result *r)
{
	Ferry__Timings *t = calloc(1, sizeof(*t));

	if (!t)
		return;
	ferry__timings__init(t);
	t->has_freeze_ms = t->has_frozen_ms = t->has_mem_dump_ms = t->has_mem_write_ms = true;
	t->freeze_ms = r->freeze_ms;
	t->frozen_ms = r->frozen_ms;
	t->mem_dump_ms = r->mem_dump_ms;
	t->mem_write_ms = r->mem_write_ms;
	t->has_total_ms = true;
	t->total_ms = r->total_ms;
	m->timings = t;
}

manifest_t *dump_manifest_new(const struct tenant_rec *rec, bool tcp)
{
	const struct tenant_kind_ops *kind = kind_find(rec->kind);
	manifest_t *m;

	if (!kind)
		return NULL;
	m = manifest_new(rec->name, tenant_kind_to_pb(rec->kind));
	if (!m)
		return NULL;
	kind->describe(rec, m);
	if (rec->argc > 0) {
		m->argv = calloc((size_t)rec->argc, sizeof(char *));
		for (int i = 0; m->argv && i < rec->argc; i++)
			m->argv[m->n_argv++] = strdup(rec->argv[i]);
	}
	m->has_created = true;
	m->created = wall_time();
	if (rec->created > 0) { /* ps shows the tenant's age, not the last move's */
		m->has_tenant_created = true;
		m->tenant_created = rec->created;
	}
	m->has_init_pid = true;
	m->init_pid = rec->init_pid;
	m->has_tcp_established = true;
	m->tcp_established = tcp;
	manifest_set_str(&m->image_format, kind->ckpt->name);
	return m;
}

/* Images are on disk: the backend's figures, then the manifest. */
static int write_manifest(const struct dump_opts *o, const struct tenant_kind_ops *kind,
			  const struct tenant_rec *rec, const struct hostinfo *h, const char *work,
			  const struct ckpt_save_result *res, struct dump_result *r, uint64_t t0,
			  ferr_t *err)
{
	ferr_t fx = {0};
	manifest_t *m;
	int ret = -1;

	if (!res->has_stats)
		pr_warn("no statistics from the %s backend in %s: timings left at 0",
			kind->ckpt->name, work);
	r->freeze_ms = res->freeze_ms;
	r->frozen_ms = res->frozen_ms;
	r->mem_dump_ms = res->mem_dump_ms;
	r->mem_write_ms = res->mem_write_ms;
	m = dump_manifest_new(rec, o->tcp_established);
	if (!m)
		return ferr_set(err, FX_FAIL, "out of memory");
	set_source(m, h);
	/* Not fatal: the tree is gone, a snapshot as the backend wrote it
	 * beats none. */
	if (kind->ckpt->fixup(r->dir, &fx) < 0)
		pr_warn("tenant %s: %s (images kept as the %s backend wrote them)", rec->name,
			fx.msg, kind->ckpt->name);
	if (o->with_rootfs && rootfs_set_pack(o->state_dir, rec, r->dir, o->with_image, m, err) < 0)
		goto out;
	if (manifest_add_dir(m, r->dir, NULL, err) < 0)
		goto out;
	r->total_ms = ms_since(t0);
	set_timings(m, r);
	if (manifest_write(r->dir, m, err) < 0)
		goto out;
	snprintf(r->set_id, sizeof(r->set_id), "%s", m->set_id);
	r->n_files = m->n_files;
	r->size = manifest_total_size(m);
	r->total_ms = ms_since(t0);
	ret = 0;
out:
	manifest_free(m);
	return ret;
}

/* The dump failed: put the record back in a consistent state and say
 * whether the tenant is still there. */
static void dump_failed(const struct dump_opts *o, struct tenant_rec *rec, ferr_t *err)
{
	/* an init killed during the dump can still show for a moment */
	bool alive = tenant_still_alive(rec->init_pid, rec->init_start, 1000);

	clear_dir(o->images_dir);
	rec->state = alive ? TS_RUNNING : TS_GONE;
	rec->updated = wall_time();
	registry_save(o->state_dir, rec, NULL);
	if (!alive)
		ferr_wrap(err, "tenant %s exited during the dump (now marked gone)", rec->name);
	else
		ferr_wrap(err, "dump of tenant %s failed (it is still running)", rec->name);
}

/* The backend saves the tenant into r->dir; then its host network goes
 * unless it runs on. */
static int save(const struct dump_opts *o, const struct tenant_kind_ops *kind,
		const struct tenant_rec *rec, const char *work, struct ckpt_save_result *res,
		struct dump_result *r, ferr_t *err)
{
	struct ckpt_env env = {.tool = o->criu_path, .work_dir = work, .log_level = o->log_level};
	struct ckpt_target t = {0};
	struct ckpt_save_opts so = {.mode = CKPT_SAVE_FULL,
				    .dir = r->dir,
				    .stream_fd = o->stream ? o->stream_fd : -1,
				    .prev = o->prev,
				    .track = o->track,
				    .leave_running = o->leave_running,
				    .tcp_established = o->tcp_established,
				    .live = o->live,
				    .max_downtime_ms = o->max_downtime_ms,
				    .copy_volumes = o->copy_volumes,
				    .on_event = o->on_event,
				    .arg = o->event_arg};

	kind->target(rec, &t);
	pr_info("dumping %s %s (pid %d) into %s", kind->name, rec->name, rec->init_pid, r->dir);
	if (kind->ckpt->save(&env, &t, &so, res, err) < 0)
		return ferr_wrap(err, "%s %s", kind->name, rec->name);
	r->criu_ms = res->ms;
	r->backend = res->backend;
	if (!o->leave_running) {
		kind->unplumb(&rec->net, NULL);
		tenant_released(kind, rec);
	}
	return 0;
}

static int run_dump(const struct dump_opts *o, struct tenant_rec *rec, struct dump_result *r,
		    uint64_t t0, ferr_t *err)
{
	const struct tenant_kind_ops *kind = kind_get(rec->kind, rec->name, err);
	struct ckpt_save_result res;
	struct hostinfo h;
	char work[PATH_MAX];

	if (!kind)
		return -1;
	if (hostinfo_collect(o->criu_path, &h, err) < 0)
		return -1;
	if (registry_tenant_dir(o->state_dir, rec->name, work, sizeof(work), err) < 0 ||
	    fs_mkdir_p(work, 0700, err) < 0)
		return -1;
	rec->state = TS_FROZEN;
	rec->updated = wall_time();
	if (registry_save(o->state_dir, rec, err) < 0)
		return -1;
	if (save(o, kind, rec, work, &res, r, err) < 0) {
		dump_failed(o, rec, err);
		return -1;
	}
	int wr = write_manifest(o, kind, rec, &h, work, &res, r, t0, err);
	rec->state = o->leave_running ? TS_RUNNING : TS_DUMPED;
	if (!o->leave_running) {
		rec->init_pid = 0;
		rec->init_start = 0;
	}
	snprintf(rec->last_dump, sizeof(rec->last_dump), "%s", r->dir);
	rec->updated = wall_time();
	r->state = rec->state;
	if (wr < 0) {
		registry_save(o->state_dir, rec, NULL);
		return ferr_wrap(err, "tenant %s was dumped but its manifest was not written",
				 rec->name);
	}
	return registry_save(o->state_dir, rec, err);
}

int dump_tenant(const struct dump_opts *o, struct dump_result *r, ferr_t *err)
{
	struct tenant_rec rec = {0};
	uint64_t t0 = now_ns();
	int lock = -1, ret = -1;

	memset(r, 0, sizeof(*r));
	if (!o->name && o->pid <= 0)
		return ferr_set(err, FX_USAGE, "name a tenant or give --pid PID");
	if (o->name && !tenant_name_valid(o->name))
		return ferr_set(err, FX_USAGE, "invalid tenant name '%s'", o->name);
	if (registry_init(o->state_dir, err) < 0)
		return -1;
	if ((o->with_image && !o->with_rootfs) || (o->with_rootfs && o->leave_running))
		return ferr_set(err, FX_USAGE,
				o->with_image
				    ? "--with-image goes with --with-rootfs"
				    : "--with-rootfs needs the tenant stopped by the dump "
				      "(no --leave-running): its files are packed after "
				      "the freeze");
	if (dump_prepare_dir(o->images_dir, err) < 0)
		return -1;
	if (!realpath(o->images_dir, r->dir))
		return ferr_sys(err, FX_FAIL, "image directory %s", o->images_dir);

	const char *name = o->name;
	char pidname[64];
	if (o->pid > 0 && !name) {
		snprintf(pidname, sizeof(pidname), "pid-%d", o->pid);
		name = pidname;
	}
	lock = registry_lock(o->state_dir, name, err);
	if (lock < 0)
		return -1;
	if (o->pid > 0 ? proctree_record(o, &rec, err) : load_tenant(o, &rec, err))
		goto out;
	snprintf(r->name, sizeof(r->name), "%s", rec.name);
	r->kind = rec.kind;
	/* before the freeze: CRIU would fail on it after (tenant/uidcheck.h) */
	ret = uid_check_dumpable(rec.name, rec.init_pid, err) < 0 ? -1
								  : run_dump(o, &rec, r, t0, err);
	tenant_rec_free(&rec);
out:
	close(lock);
	return ret;
}
