/* ferry snapshot list, show and verify: the subcommands that read a store
 * and change nothing (text and --json views of manifests, and the chunk
 * checks of verify). The option tables and the dispatch are in
 * cmd/snapshot.c (docs/snapshots.md). */
#include <stdio.h>
#include <stdlib.h>

#include "cmd/snapshot.h"
#include "lib/json.h"
#include "lib/util.h"
#include "snapshot/snap.h"

static void json_manifest(struct jw *w, const snapm_t *m, bool files)
{
	jw_obj_begin(w, NULL);
	jw_str(w, "id", m->id);
	jw_str(w, "tenant", m->tenant);
	jw_str(w, "kind", m->kind);
	jw_int(w, "time", m->time);
	jw_str(w, "parent", m->parent);
	jw_str(w, "host", m->host);
	jw_arr_begin(w, "tags");
	for (size_t i = 0; i < m->n_tags; i++)
		jw_str(w, NULL, m->tags[i]);
	jw_arr_end(w);
	jw_uint(w, "size", m->size);
	jw_uint(w, "added", m->added);
	jw_uint(w, "chunks", m->chunks);
	jw_uint(w, "added_chunks", m->added_chunks);
	if (m->timings) {
		jw_double(w, "freeze_ms", m->timings->freeze_ms);
		jw_double(w, "frozen_ms", m->timings->frozen_ms);
		jw_double(w, "dump_ms", m->timings->dump_ms);
		jw_double(w, "store_ms", m->timings->store_ms);
		jw_double(w, "total_ms", m->timings->total_ms);
		jw_double(w, "fs_frozen_ms", m->timings->fs_frozen_ms);
		jw_double(w, "fs_pre_ms", m->timings->fs_pre_ms);
	}
	jw_str(w, "rootfs_kind", m->rootfs_kind);
	jw_str(w, "image", m->image_id);
	jw_str(w, "rootfs", m->rootfs);
	jw_uint(w, "fs_entries", m->fs_entries);
	if (files) {
		jw_arr_begin(w, "files");
		for (size_t i = 0; i < m->n_files; i++) {
			const FerrySnap__File *f = m->files[i];
			jw_obj_begin(w, NULL);
			jw_str(w, "path", f->path);
			jw_uint(w, "size", f->size);
			jw_str(w, "part",
			       f->part == FERRY_SNAP__FILE_PART__PART_ROOTFS  ? "rootfs"
			       : f->part == FERRY_SNAP__FILE_PART__PART_IMAGE ? "image"
									      : "images");
			jw_uint(w, "chunks", f->n_chunks);
			jw_bool(w, "pages", f->pages);
			jw_obj_end(w);
		}
		jw_arr_end(w);
	}
	jw_obj_end(w);
}

static void text_row(const snapm_t *m)
{
	char t[32], b1[32], b2[32], tags[256] = "";
	size_t off = 0;

	for (size_t i = 0; i < m->n_tags && off < sizeof(tags); i++)
		off += (size_t)snprintf(tags + off, sizeof(tags) - off, "%s%s", i ? "," : "",
					m->tags[i]);
	printf("%-16s  %-20s  %-16s  %10s  %10s  %9.1f  %s\n", m->id,
	       snap_fmt_time(m->time, t, sizeof(t)), m->tenant, fmt_bytes(m->size, b1, sizeof(b1)),
	       fmt_bytes(m->added, b2, sizeof(b2)), m->timings ? m->timings->frozen_ms : 0, tags);
}

int cmd_snap_list(struct snap_args *a, const char *tenant)
{
	struct repo r;
	snapm_t **v;
	size_t n, bad;
	ferr_t err = {0};
	int rc;

	if ((rc = snap_open_manifests(&r, a, false, "snapshot list", &err)))
		return rc;
	rc = snap_list(&r, tenant, &v, &n, &bad, &err);
	repo_close(&r);
	if (rc < 0)
		return cmd_report("snapshot list", &err);
	if (a->json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
		jw_arr_begin(&w, "snapshots");
		for (size_t i = 0; i < n; i++)
			json_manifest(&w, v[i], false);
		jw_arr_end(&w);
		jw_uint(&w, "unreadable", bad);
		jw_obj_end(&w);
		jw_finish(&w);
	} else {
		printf("%-16s  %-20s  %-16s  %10s  %10s  %9s  %s\n", "ID", "TIME", "TENANT", "SIZE",
		       "ADDED", "FROZEN_MS", "TAGS");
		for (size_t i = 0; i < n; i++)
			text_row(v[i]);
		if (bad)
			printf("%zu unreadable manifest(s): see `ferry snapshot verify --all`\n",
			       bad);
	}
	snap_list_free(v, n);
	return FX_OK;
}

static void show_text(const snapm_t *m)
{
	char t[32], b[32];

	printf("snapshot %s\n  tenant  %s (%s)\n  time    %s\n  host    %s\n  parent  %s\n", m->id,
	       m->tenant, m->kind, snap_fmt_time(m->time, t, sizeof(t)), m->host ? m->host : "",
	       m->parent ? m->parent : "(none)");
	printf("  tags   ");
	for (size_t i = 0; i < m->n_tags; i++)
		printf(" %s", m->tags[i]);
	printf("\n  size    %s in %zu files, %u chunk references", fmt_bytes(m->size, b, sizeof(b)),
	       m->n_files, m->chunks);
	printf(", added %s in %u new chunks\n", fmt_bytes(m->added, b, sizeof(b)), m->added_chunks);
	if (m->timings)
		printf("  timings frozen %.1f ms (freeze %.1f, memory dump %.1f, memory write "
		       "%.1f), dump %.1f ms, store %.1f ms, total %.1f ms\n",
		       m->timings->frozen_ms, m->timings->freeze_ms, m->timings->mem_dump_ms,
		       m->timings->mem_write_ms, m->timings->dump_ms, m->timings->store_ms,
		       m->timings->total_ms);
	if (m->rootfs_kind)
		printf("  rootfs  %s %s: %u entries (%u unchanged), frozen pass %.1f ms, pass "
		       "while running %.1f ms\n",
		       m->rootfs_kind,
		       m->image_id ? m->image_id
		       : m->rootfs ? m->rootfs
				   : "",
		       m->fs_entries, m->fs_reused, m->timings ? m->timings->fs_frozen_ms : 0,
		       m->timings ? m->timings->fs_pre_ms : 0);
	printf("  files:%s\n",
	       m->rootfs_kind ? " (the backend's; `ferry inspect` shows the tenant's)" : "");
	for (size_t i = 0; i < m->n_files; i++)
		if (m->files[i]->part == FERRY_SNAP__FILE_PART__PART_IMAGES)
			printf("    %-32s %12llu bytes %6zu chunks%s\n", m->files[i]->path,
			       (unsigned long long)m->files[i]->size, m->files[i]->n_chunks,
			       m->files[i]->pages ? " (pages)" : "");
}

int cmd_snap_show(struct snap_args *a, const char *prefix)
{
	char id[REPO_ID_LEN + 1];
	struct repo r;
	snapm_t *m;
	ferr_t err = {0};
	int rc;

	if ((rc = snap_open_manifests(&r, a, false, "snapshot show", &err)))
		return rc;
	rc = repo_resolve(&r, prefix, id, &err) < 0 ? -1 : repo_read_manifest(&r, id, &m, &err);
	repo_close(&r);
	if (rc < 0)
		return cmd_report("snapshot show", &err);
	if (a->json) {
		struct jw w;
		jw_init(&w, stdout);
		json_manifest(&w, m, true);
		jw_finish(&w);
	} else {
		show_text(m);
	}
	snapm_free(m);
	return FX_OK;
}

struct vstate {
	struct snap_args *a;
	struct jw *w;
	int broken_files, broken_snaps;
};

static void bad_file(const snapm_t *m, const char *path, const char *why, void *arg)
{
	struct vstate *v = arg;

	if (v->w) {
		jw_obj_begin(v->w, NULL);
		jw_str(v->w, "snapshot", m ? m->id : NULL);
		jw_str(v->w, "tenant", m ? m->tenant : NULL);
		jw_str(v->w, "file", path);
		jw_str(v->w, "error", why);
		jw_obj_end(v->w);
	} else {
		printf("BROKEN snapshot %s (tenant %s) file %s: %s\n", m ? m->id : "?",
		       m ? m->tenant : "?", path, why);
	}
	v->broken_files++;
}

static int verify_one(struct repo *r, const char *id, struct idset *done, struct vstate *v,
		      int *checked, ferr_t *err)
{
	snapm_t *m;
	int n;

	if (repo_read_manifest(r, id, &m, err) < 0) {
		if (err->code == FX_FAIL)
			return -1;
		if (v->w) {
			jw_obj_begin(v->w, NULL);
			jw_str(v->w, "snapshot", id);
			jw_str(v->w, "file", NULL);
			jw_str(v->w, "error", err->msg);
			jw_obj_end(v->w);
		} else {
			printf("BROKEN snapshot %s: %s\n", id, err->msg);
		}
		ferr_clear(err);
		v->broken_snaps++;
		return 0;
	}
	n = repo_verify(r, m, v->a->read_data, done, bad_file, v, err);
	if (n > 0)
		v->broken_snaps++;
	else if (n == 0 && !v->w)
		printf("snapshot %s (tenant %s): %zu files, %u chunks ok\n", m->id, m->tenant,
		       m->n_files, m->chunks);
	(*checked)++;
	snapm_free(m);
	return n < 0 ? -1 : 0;
}

static int verify_all(struct repo *r, struct snap_args *a, const char *prefix, struct vstate *v,
		      int *checked, ferr_t *err)
{
	struct idset *done = idset_new();
	char **ids = NULL, one[REPO_ID_LEN + 1];
	size_t n = 0;
	int rc = 0;

	if (!done)
		return ferr_set(err, FX_FAIL, "out of memory");
	if (a->all) {
		rc = repo_list_ids(r, &ids, &n, err);
	} else if ((rc = repo_resolve(r, prefix, one, err)) == 0) {
		rc = verify_one(r, one, done, v, checked, err);
	}
	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			rc = verify_one(r, ids[i], done, v, checked, err);
		free(ids[i]);
	}
	free(ids);
	idset_free(done);
	return rc;
}

int cmd_snap_verify(struct snap_args *a, const char *prefix, const struct cmd_spec *spec)
{
	struct vstate v = {.a = a};
	struct repo r;
	struct jw w;
	ferr_t err = {0};
	int rc, checked = 0;

	if (!a->all == !prefix)
		return opts_usage_error(spec, "give a snapshot ID or --all");
	if ((rc = snap_open_store(&r, a, false, "snapshot verify", &err)))
		return rc;
	if (a->json) {
		v.w = &w;
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
		jw_arr_begin(&w, "broken");
	}
	rc = verify_all(&r, a, prefix, &v, &checked, &err);
	repo_close(&r);
	if (a->json) {
		jw_arr_end(&w);
		jw_int(&w, "snapshots", checked);
		jw_int(&w, "broken_snapshots", v.broken_snaps);
		jw_int(&w, "broken_files", v.broken_files);
		jw_bool(&w, "read_data", a->read_data);
		jw_obj_end(&w);
		jw_finish(&w);
	}
	if (rc < 0)
		return cmd_report("snapshot verify", &err);
	if (v.broken_snaps) {
		fprintf(stderr, "ferry snapshot verify: %d broken snapshot(s), %d broken file(s)\n",
			v.broken_snaps, v.broken_files);
		return FX_INTEGRITY;
	}
	return FX_OK;
}
