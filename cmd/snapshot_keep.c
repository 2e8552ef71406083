/* ferry snapshot rm, gc, prune and schedule: what keeps a snapshot store in
 * shape (docs/snapshots.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/snapshot.h"
#include "agent/schedule.h"
#include "lib/json.h"
#include "lib/util.h"
#include "snapshot/snap.h"

int cmd_snap_rm(struct snap_args *a, const char *prefix)
{
	char id[REPO_ID_LEN + 1];
	struct repo r;
	ferr_t err = {0};
	int rc;

	if ((rc = snap_open_manifests(&r, a, true, "snapshot rm", &err)))
		return rc;
	rc = repo_resolve(&r, prefix, id, &err) < 0 ? -1 : repo_remove(&r, id, &err);
	repo_close(&r);
	if (rc < 0)
		return cmd_report("snapshot rm", &err);
	if (!a->json)
		printf("removed snapshot %s (its chunks go with the next gc)\n", id);
	else
		printf("{\"removed\":\"%s\"}\n", id);
	return FX_OK;
}

static int gc_report(struct repo *r, struct snap_args *a, struct jw *w, ferr_t *err)
{
	struct repo_gc_stats st;
	char b[32];

	if (repo_gc(r, &st, err) < 0)
		return -1;
	if (w) {
		jw_uint(w, "chunks_kept", st.chunks);
		jw_uint(w, "chunks_removed", st.removed);
		jw_uint(w, "bytes_removed", st.removed_bytes);
		jw_uint(w, "tmp_removed", st.tmp_removed);
	} else if (!a->json) {
		printf("gc: %llu chunks kept, %llu removed (%s), %llu leftovers in tmp/ removed\n",
		       (unsigned long long)st.chunks, (unsigned long long)st.removed,
		       fmt_bytes(st.removed_bytes, b, sizeof(b)),
		       (unsigned long long)st.tmp_removed);
	}
	return 0;
}

int cmd_snap_gc(struct snap_args *a)
{
	struct repo r;
	struct jw w;
	ferr_t err = {0};
	int rc;

	if ((rc = snap_open_store(&r, a, true, "snapshot gc", &err)))
		return rc;
	if (a->json) {
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
	}
	rc = gc_report(&r, a, a->json ? &w : NULL, &err);
	repo_close(&r);
	if (a->json) {
		jw_obj_end(&w);
		jw_finish(&w);
	}
	return rc < 0 ? cmd_report("snapshot gc", &err) : FX_OK;
}

struct prune_out {
	struct jw *w;
};

static void prune_row(const snapm_t *m, bool keep, unsigned reasons, void *arg)
{
	struct prune_out *o = arg;
	char t[32], why[128];

	retention_reasons(reasons, why, sizeof(why));
	if (o->w) {
		jw_obj_begin(o->w, NULL);
		jw_str(o->w, "id", m->id);
		jw_int(o->w, "time", m->time);
		jw_bool(o->w, "keep", keep);
		jw_str(o->w, "reasons", why);
		jw_obj_end(o->w);
	} else {
		printf("%-6s %s  %s  %s\n", keep ? "keep" : "remove", m->id,
		       snap_fmt_time(m->time, t, sizeof(t)), why);
	}
}

int cmd_snap_prune(struct snap_args *a, const char *tenant, const struct cmd_spec *spec)
{
	struct repo r;
	struct jw w, *wp = NULL;
	ferr_t err = {0};
	int rc;

	if (retention_empty(&a->keep))
		return opts_usage_error(spec, "no --keep-* policy given: nothing would be kept");
	if ((rc = snap_open_store(&r, a, true, "snapshot prune", &err)))
		return rc;
	if (a->json) {
		wp = &w;
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
		jw_bool(&w, "dry_run", a->dry_run);
	}
	struct prune_out po = {wp};
	if (wp)
		jw_arr_begin(wp, "snapshots");
	rc = snap_prune(&r, tenant, &a->keep, a->dry_run, prune_row, &po, &err);
	if (wp)
		jw_arr_end(wp);
	if (rc >= 0 && !a->dry_run)
		rc = gc_report(&r, a, wp, &err);
	repo_close(&r);
	if (wp) {
		jw_obj_end(&w);
		jw_finish(&w);
	}
	return rc < 0 ? cmd_report("snapshot prune", &err) : FX_OK;
}

static void sched_json(struct jw *w, const struct sched_entry *e)
{
	jw_obj_begin(w, NULL);
	jw_str(w, "tenant", e->tenant);
	jw_int(w, "every", e->every);
	jw_str(w, "store", e->store);
	jw_int(w, "last_run", e->last_run);
	jw_bool(w, "last_ok", e->last_ok);
	jw_str(w, "last_result", e->last_result);
	jw_str(w, "last_id", e->last_id);
	jw_double(w, "last_frozen_ms", e->last_frozen_ms);
	jw_int(w, "next_run", e->next_run);
	jw_int(w, "runs", e->runs);
	jw_int(w, "failures", e->failures);
	jw_obj_end(w);
}

static int sched_show(struct snap_args *a, const struct global_opts *g)
{
	struct sched_entry *v;
	size_t n;
	ferr_t err = {0};
	char t1[32], t2[32];

	if (sched_list(g->state_dir, &v, &n, &err) < 0)
		return cmd_report("snapshot schedule", &err);
	if (a->json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
		jw_arr_begin(&w, "schedules");
		for (size_t i = 0; i < n; i++)
			sched_json(&w, &v[i]);
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_finish(&w);
	} else {
		printf("%-16s %8s  %-20s  %9s  %-20s  %s\n", "TENANT", "EVERY_S", "LAST_RUN",
		       "FROZEN_MS", "NEXT_RUN", "LAST_RESULT");
		for (size_t i = 0; i < n; i++)
			printf("%-16s %8lld  %-20s  %9.1f  %-20s  %s\n", v[i].tenant,
			       (long long)v[i].every,
			       v[i].last_run ? snap_fmt_time(v[i].last_run, t1, sizeof(t1))
					     : "never",
			       v[i].last_frozen_ms, snap_fmt_time(v[i].next_run, t2, sizeof(t2)),
			       v[i].last_result[0] ? v[i].last_result : "-");
	}
	free(v);
	return FX_OK;
}

int cmd_snap_schedule(struct snap_args *a, const char *name, const struct global_opts *g,
		      const struct cmd_spec *spec)
{
	struct sched_entry e = {0};
	ferr_t err = {0};

	if (a->list)
		return sched_show(a, g);
	if (!name)
		return opts_usage_error(spec, "give a tenant NAME or --list");
	if (a->off) {
		if (sched_remove(g->state_dir, name, &err) < 0)
			return cmd_report("snapshot schedule", &err);
		printf("schedule of %s removed\n", name);
		return FX_OK;
	}
	if (a->every <= 0)
		return opts_usage_error(spec, "--every DURATION is needed");
	if (!tenant_name_valid(name))
		return opts_usage_error(spec, "invalid tenant name '%s'", name);
	snprintf(e.tenant, sizeof(e.tenant), "%s", name);
	/* the agent runs elsewhere: absolute paths */
	if (!realpath(a->store, e.store) || !realpath(a->key_file, e.key_file)) {
		ferr_sys(&err, FX_NOTFOUND, "store %s or key %s", a->store, a->key_file);
		return cmd_report("snapshot schedule", &err);
	}
	e.every = a->every;
	e.keep = a->keep;
	e.next_run = wall_time();
	if (sched_save(g->state_dir, &e, &err) < 0)
		return cmd_report("snapshot schedule", &err);
	printf("%s: a snapshot every %llds into %s, run by `ferry serve` (first now)\n", name,
	       (long long)e.every, e.store);
	return FX_OK;
}
