/* Taking and rolling back snapshots (snap.h). */
#define LOG_PREFIX "snap"
#include "snapshot/snap.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/version.h"
#include "snapshot/dump.h"
#include "snapshot/pagestream.h"
#include "snapshot/restore.h"
#include "snapshot/snap_fs.h"
#include "tenant/kind.h"
#include "tenant/registry.h"

static int by_time(const void *a, const void *b)
{
	const snapm_t *x = *(snapm_t *const *)a, *y = *(snapm_t *const *)b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->time_ns != y->time_ns) /* two in one second: creation order */
		return x->time_ns < y->time_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

void snap_list_free(snapm_t **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snapm_free(v[i]);
	free(v);
}

int snap_list(struct repo *r, const char *tenant, snapm_t ***out, size_t *n, size_t *bad,
	      ferr_t *err)
{
	char **ids;
	size_t nid, k = 0;
	snapm_t **v;

	if (bad)
		*bad = 0;
	if (repo_list_ids(r, &ids, &nid, err) < 0)
		return -1;
	v = calloc(nid ? nid : 1, sizeof(*v));
	for (size_t i = 0; i < nid; i++) {
		ferr_t e = {0};
		snapm_t *m;
		if (v && repo_read_manifest(r, ids[i], &m, &e) == 0) {
			if (!tenant || !strcmp(m->tenant, tenant))
				v[k++] = m;
			else
				snapm_free(m);
		} else if (v) {
			pr_warn("%s", e.msg);
			if (bad)
				(*bad)++;
		}
		free(ids[i]);
	}
	free(ids);
	if (!v)
		return ferr_set(err, FX_FAIL, "out of memory");
	qsort(v, k, sizeof(*v), by_time);
	*out = v;
	*n = k;
	return 0;
}

static int set_meta(struct repo *repo, snapm_t *m, const struct snap_create_opts *o,
		    const struct dump_result *d, struct snap_create_result *r, ferr_t *err)
{
	char host[256] = "";
	snapm_t **v;
	size_t n;

	m->time = wall_time();
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	m->has_time_ns = true;
	m->time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	gethostname(host, sizeof(host) - 1);
	m->host = strdup(host);
	m->ferry_version = strdup(FERRY_VERSION);
	if (o->n_tags && !(m->tags = calloc(o->n_tags, sizeof(char *))))
		return ferr_set(err, FX_FAIL, "out of memory");
	for (size_t i = 0; i < o->n_tags; i++)
		if ((m->tags[m->n_tags] = strdup(o->tags[i])))
			m->n_tags++;
	if (snap_list(repo, d->name, &v, &n, NULL, err) < 0)
		return -1;
	if (n) {
		m->parent = strdup(v[n - 1]->id);
		snprintf(r->parent, sizeof(r->parent), "%s", v[n - 1]->id);
	}
	snap_list_free(v, n);
	m->timings->has_freeze_ms = m->timings->has_frozen_ms = 1;
	m->timings->has_mem_dump_ms = m->timings->has_mem_write_ms = m->timings->has_dump_ms = 1;
	m->timings->freeze_ms = d->freeze_ms;
	m->timings->frozen_ms = d->frozen_ms;
	m->timings->mem_dump_ms = d->mem_dump_ms;
	m->timings->mem_write_ms = d->mem_write_ms;
	m->timings->dump_ms = d->total_ms;
	return (!m->host || !m->ferry_version) ? ferr_set(err, FX_FAIL, "out of memory") : 0;
}

/* How much memory the page stream may hold, and fault in before the dump:
 * the parent's memory and a margin (all of it, so that the freeze never
 * waits for the store), within half of what the host has available. */
static void stream_sizes(const snapm_t *parent, struct pstream_opts *so)
{
	uint64_t hint = pstream_parent_pages(parent), avail = 0;
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &avail) == 1)
			break;
	if (f)
		fclose(f);
	avail = avail ? avail * 1024 / 2 : 1ULL << 30;
	so->mem_limit = hint ? hint + hint / 4 + (64ULL << 20) : avail / 2;
	if (so->mem_limit < (256ULL << 20))
		so->mem_limit = 256ULL << 20;
	if (so->mem_limit > avail)
		so->mem_limit = avail;
	so->prefault = hint + (16ULL << 20) < so->mem_limit ? hint + (16ULL << 20) : so->mem_limit;
	if (!hint)
		so->prefault = 0;
}

/* CRIU's page stream is CRIU's: other backends (QEMU) stage their state. */
static bool streams_pages(const char *state_dir, const char *name)
{
	struct tenant_rec rec = {0};
	const struct tenant_kind_ops *kind;
	bool criu;

	if (registry_load(state_dir, name, &rec, NULL) < 0)
		return false;
	kind = kind_find(rec.kind);
	criu = kind && kind->ckpt && !strcmp(kind->ckpt->name, "criu");
	tenant_rec_free(&rec);
	return criu;
}

/* The full store's disk: say so (CRIU's own write failed, or ours). */
static void nospace(const char *stage, ferr_t *err)
{
	struct statvfs v;

	/* the space may be free again once CRIU removed what it wrote: its log
	 * tail in err names the errno */
	if (err->code == FX_NOSPACE ||
	    (statvfs(stage, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize < (1U << 20)) ||
	    strstr(err->msg, strerror(ENOSPC))) {
		err->code = FX_NOSPACE;
		ferr_wrap(err, "the store's file system is full");
	}
}

/* The tenant's files (snap_fs.h) go while it runs and at the freeze; its
 * memory streams from CRIU's page server into the store (pagestream.h);
 * its other images are staged in STORE/tmp/stage-*, then chunked. */
static int dump_into(struct repo *repo, const struct snap_create_opts *o, const char *stage,
		     struct snapfs *fs, const snapm_t *parent, snapm_t *m, struct dump_result *dr,
		     struct snap_create_result *r, ferr_t *err)
{
	struct dump_opts d = {.state_dir = o->state_dir,
			      .criu_path = o->criu_path,
			      .name = o->name,
			      .images_dir = stage,
			      .leave_running = true,
			      .tcp_established = true,
			      .log_level = o->log_level,
			      .on_event = snapfs_on_event,
			      .event_arg = fs};
	struct pstream_opts so = {.repo = repo, .parent = parent, .stage = stage};
	struct pstream *ps = NULL;
	ferr_t se = {0};
	int rc;

	d.stream = streams_pages(o->state_dir, o->name);
	stream_sizes(parent, &so);
	if (d.stream && pstream_start(&so, &ps, &d.stream_fd, err) < 0)
		return ferr_wrap(err, "snapshot of %s", o->name);
	rc = dump_tenant(&d, dr, err);
	if (d.stream && pstream_end(ps, rc < 0, m, &r->st, &r->stream, &se) < 0 && se.code) {
		if (rc == 0)
			pr_warn("tenant %s: dumped, but its memory was not stored", o->name);
		*err = se;
		rc = -1;
	}
	if (rc == 0)
		return 0;
	nospace(stage, err);
	return ferr_wrap(err, "snapshot of %s", o->name);
}

/* The tenant's previous snapshot (NULL: none): *v and *n to free. */
static const snapm_t *parent_of(struct repo *repo, const char *name, snapm_t ***v, size_t *n,
				ferr_t *err)
{
	if (snap_list(repo, name, v, n, NULL, err) < 0)
		return NULL;
	return *n ? (*v)[*n - 1] : NULL;
}

static int store_images(struct repo *repo, snapm_t *m, const struct snap_create_opts *o,
			struct snap_create_result *r, const char *stage, uint64_t t0, ferr_t *err)
{
	uint64_t t1 = now_ns();

	if (repo_add_dir(repo, m, stage, FERRY_SNAP__FILE_PART__PART_IMAGES, &r->st, err) < 0)
		return ferr_wrap(err, "snapshot of %s: storing its images", o->name);
	r->store_ms = ms_since(t1) + r->stream.drain_ms;
	m->has_size = m->has_added = m->has_added_chunks = m->has_chunks = 1;
	m->size = r->st.size;
	m->added = r->st.added;
	m->added_chunks = r->st.added_ch;
	m->chunks = r->st.chunks;
	m->timings->has_store_ms = m->timings->has_total_ms = 1;
	m->timings->store_ms = r->store_ms;
	m->timings->total_ms = ms_since(t0);
	if (repo_write_manifest(repo, m, err) < 0)
		return ferr_wrap(err, "snapshot of %s: its manifest", o->name);
	return 0;
}

static int create_locked(struct repo *repo, const struct snap_create_opts *o,
			 struct snap_create_result *r, const char *stage, uint64_t t0, ferr_t *err)
{
	struct snapfs fs = {0};
	struct dump_result dr;
	snapm_t *m = snapm_new(o->name, "container"), **v = NULL;
	size_t nv = 0;
	const snapm_t *parent;
	int rc = -1;

	if (!m) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	parent = parent_of(repo, o->name, &v, &nv, err);
	if (err->code || snapfs_begin(&fs, repo, m, o->state_dir, o->name, parent, err) < 0 ||
	    dump_into(repo, o, stage, &fs, parent, m, &dr, r, err) < 0 ||
	    snapfs_finish(&fs, &r->st, err) < 0)
		goto out;
	free(m->kind);
	if (!(m->kind = strdup(tenant_kind_str(dr.kind)))) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	if (set_meta(repo, m, o, &dr, r, err) < 0 ||
	    store_images(repo, m, o, r, stage, t0, err) < 0)
		goto out;
	rc = 0;
	snprintf(r->id, sizeof(r->id), "%s", m->id);
	snprintf(r->tenant, sizeof(r->tenant), "%s", dr.name);
	r->freeze_ms = dr.freeze_ms;
	r->frozen_ms = dr.frozen_ms;
	r->dump_ms = dr.total_ms;
	r->fs_pre_ms = fs.pre_ms;
	r->fs_frozen_ms = fs.frozen_ms;
	r->fs_entries = fs.ts.entries;
	r->fs_reused = fs.ts.reused;
out:
	snapfs_free(&fs);
	snap_list_free(v, nv);
	snapm_free_built(m);
	return rc;
}

int snap_create(const struct snap_create_opts *o, struct snap_create_result *r, ferr_t *err)
{
	struct repo repo;
	char stage[4200];
	uint64_t t0 = now_ns();
	int rc;

	memset(r, 0, sizeof(*r));
	if (!tenant_name_valid(o->name))
		return ferr_set(err, FX_USAGE, "invalid tenant name '%s'", o->name);
	if (repo_open(&repo, o->store, o->key_file, err) < 0)
		return -1;
	if (repo_lock(&repo, false, err) < 0 ||
	    repo_tmpdir(&repo, "stage", stage, sizeof(stage), err) < 0) {
		repo_close(&repo);
		return -1;
	}
	rc = create_locked(&repo, o, r, stage, t0, err);
	fs_rm_rf(stage, NULL);
	r->total_ms = ms_since(t0);
	repo_close(&repo);
	return rc;
}

/* Stop the running incarnation of name, if any (after the checks). */
static int stop_running(const char *state_dir, const char *name, bool *stopped, ferr_t *err)
{
	struct tenant_rec rec = {0};
	int lock, rc = 0;

	*stopped = false;
	if ((lock = registry_lock(state_dir, name, err)) < 0)
		return -1;
	if (registry_load(state_dir, name, &rec, err) < 0) {
		close(lock);
		if (err->code != FX_NOTFOUND)
			return -1;
		ferr_clear(err);
		return 0;
	}
	registry_refresh(state_dir, &rec, NULL);
	if (rec.state == TS_RUNNING || rec.state == TS_FROZEN) {
		rc = tenant_kill(state_dir, &rec, SIGKILL, 10000, err);
		*stopped = rc == 0;
	}
	tenant_rec_free(&rec);
	close(lock);
	return rc;
}

/* Everything of the snapshot written and checked before anything stops. */
static int restore_read(struct repo *repo, const struct snap_restore_opts *o,
			struct snap_restore_result *r, const char *dir, struct snapfs_restore *fr,
			ferr_t *err)
{
	snapm_t *m;
	int rc;

	if (repo_resolve(repo, o->id, r->id, err) < 0 ||
	    repo_read_manifest(repo, r->id, &m, err) < 0)
		return -1;
	snprintf(r->name, sizeof(r->name), "%s", o->name ? o->name : m->tenant);
	rc = repo_extract(repo, m, FERRY_SNAP__FILE_PART__PART_IMAGES, dir, err);
	if (rc == 0)
		rc = snapfs_restore_prepare(fr, repo, m, o->state_dir, r->name, err);
	snapm_free(m);
	if (rc < 0)
		return ferr_wrap(err, "nothing was stopped or started");
	if (restore_verify(dir, err) < 0)
		return ferr_wrap(err, "snapshot %s (nothing was stopped or started)", r->id);
	return 0;
}

static int restore_locked(struct repo *repo, const struct snap_restore_opts *o,
			  struct snap_restore_result *r, const char *dir, struct snapfs_restore *fr,
			  ferr_t *err)
{
	struct restore_opts ro = {.state_dir = o->state_dir,
				  .criu_path = o->criu_path,
				  .images_dir = dir,
				  .log_level = o->log_level};
	struct restore_result rr;
	uint64_t t = now_ns();

	if (restore_read(repo, o, r, dir, fr, err) < 0)
		return -1;
	r->verify_ms = ms_since(t);
	t = now_ns();
	if (stop_running(o->state_dir, r->name, &r->replaced, err) < 0)
		return ferr_wrap(err, "stopping the running %s (nothing was restored)", r->name);
	r->stop_ms = ms_since(t);
	if (snapfs_restore_commit(fr, o->state_dir, r->name, err) < 0)
		return ferr_wrap(err, "snapshot %s: its files%s", r->id,
				 r->replaced ? " (the running incarnation was stopped)" : "");
	ro.name = r->name;
	ro.files_verified = true;
	ro.rootfs = fr->tree ? fr->rootfs : NULL;
	if (restore_tenant(&ro, &rr, err) < 0)
		return ferr_wrap(err, "snapshot %s%s", r->id,
				 r->replaced ? " (the running incarnation was stopped)" : "");
	r->pid = rr.pid;
	r->restore_ms = rr.total_ms;
	r->id_from = rr.id_from;
	r->id_to = rr.id_to;
	return 0;
}

int snap_restore(const struct snap_restore_opts *o, struct snap_restore_result *r, ferr_t *err)
{
	struct repo repo;
	char dir[4200];
	uint64_t t0 = now_ns();
	int rc;

	memset(r, 0, sizeof(*r));
	if (o->name && !tenant_name_valid(o->name))
		return ferr_set(err, FX_USAGE, "invalid tenant name '%s'", o->name);
	if (repo_open(&repo, o->store, o->key_file, err) < 0)
		return -1;
	if (repo_lock(&repo, false, err) < 0 ||
	    repo_tmpdir(&repo, "restore", dir, sizeof(dir), err) < 0) {
		repo_close(&repo);
		return -1;
	}
	struct snapfs_restore fr = {0};
	rc = restore_locked(&repo, o, r, dir, &fr, err);
	snapfs_restore_cleanup(&fr);
	fs_rm_rf(dir, NULL);
	r->total_ms = ms_since(t0);
	repo_close(&repo);
	return rc;
}

int snap_prune(struct repo *r, const char *tenant, const struct keep_policy *p, bool dry_run,
	       snap_prune_fn fn, void *arg, ferr_t *err)
{
	struct keep_item *items;
	snapm_t **v;
	size_t n;
	int rc = 0, removed = 0;

	if (retention_empty(p))
		return ferr_set(err, FX_USAGE, "no retention policy: nothing would be kept");
	if (snap_list(r, tenant, &v, &n, NULL, err) < 0)
		return -1;
	if (!(items = calloc(n ? n : 1, sizeof(*items)))) {
		snap_list_free(v, n);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		items[i].time = v[i]->time;
	rc = retention_apply(p, items, n, err);
	for (size_t i = n; rc == 0 && i-- > 0;) {
		if (fn)
			fn(v[i], items[i].keep, items[i].reasons, arg);
		if (items[i].keep)
			continue;
		removed++;
		if (!dry_run)
			rc = repo_remove(r, v[i]->id, err);
	}
	free(items);
	snap_list_free(v, n);
	return rc < 0 ? -1 : removed;
}
