/* Migration reports (migrate_report.h). */
#include "cmd/migrate_report.h"

#include <stdio.h>
#include <unistd.h>

#include "lib/util.h"

static void round_json(struct jw *w, const char *key, unsigned n, const struct mig_round *m)
{
	jw_obj_begin(w, key);
	if (n)
		jw_uint(w, "round", n);
	jw_double(w, "ms", m->ms);
	if (n) {
		jw_double(w, "frozen_ms", m->frozen_ms);
		jw_uint(w, "pages", m->pages);
	}
	jw_uint(w, "raw_bytes", m->raw);
	jw_uint(w, "payload_bytes", m->payload);
	jw_obj_end(w);
}

/* Pre-copy: each pre-dump round, the final dump's pages, why the rounds
 * stopped. */
/* An image tenant's files (docs/rootfs.md). */
static void rootfs_json(struct jw *w, const struct migrate_result *r)
{
	jw_obj_begin(w, "rootfs");
	jw_bool(w, "image_sent", r->fs_image_sent);
	jw_uint(w, "raw_bytes", r->fs_raw);
	jw_uint(w, "wire_bytes", r->fs_wire);
	jw_double(w, "copy_ms", r->fs_first_ms);
	jw_uint(w, "delta_raw_bytes", r->fs_delta_raw);
	jw_uint(w, "delta_wire_bytes", r->fs_delta_wire);
	jw_uint(w, "delta_entries", r->fs_delta_entries);
	jw_uint(w, "deleted", r->fs_deleted);
	jw_double(w, "delta_ms", r->fs_delta_ms);
	jw_obj_end(w);
}

static void precopy_json(struct jw *w, const struct migrate_result *r)
{
	jw_obj_begin(w, "precopy");
	jw_str(w, "stop_reason", r->precopy_stop[0] ? r->precopy_stop : NULL);
	jw_arr_begin(w, "rounds");
	for (unsigned i = 0; i < r->n_rounds && i < MIG_ROUNDS_MAX; i++)
		round_json(w, NULL, i + 1, &r->rounds[i]);
	jw_arr_end(w);
	round_json(w, "final", 0, &r->final_round);
	jw_obj_end(w);
}

void migrate_report_json(struct jw *w, const char *key, const struct migrate_result *r, int rc,
			 const ferr_t *err)
{
	jw_obj_begin(w, key);
	jw_str(w, "tenant", r->tenant);
	jw_bool(w, "ok", rc == 0);
	jw_str(w, "migration_id", r->migration_id);
	jw_str(w, "destination", r->dest);
	jw_str(w, "mode", mig_mode_str(r->mode));
	jw_bool(w, "moved", r->moved);
	jw_bool(w, "on_source", !r->moved && r->on_source);
	if (r->moved)
		jw_int(w, "dest_pid", r->dest_pid);
	jw_double(w, "downtime_ms", r->downtime_ms);
	jw_double(w, "total_ms", r->total_ms);
	if (r->moved) {
		jw_int(w, "replayed_segments", r->replayed);
		jw_uint(w, "replay_lost_segments", r->replay_lost);
		jw_uint(w, "held_segments", r->held);
	}
	if (r->mode == MIG_POST_COPY)
		jw_double(w, "pages_done_ms", r->pages_done_ms);
	jw_obj_begin(w, "stages_ms");
	jw_double(w, "freeze", r->freeze_ms);
	jw_double(w, "dump", r->dump_ms);
	jw_double(w, "transfer", r->transfer_ms);
	jw_double(w, "restore", r->restore_ms);
	jw_double(w, "handover", r->handover_ms);
	jw_double(w, "resume", r->resume_ms);
	jw_double(w, "network", r->net_ms);
	jw_double(w, "cleanup", r->cleanup_ms);
	jw_obj_end(w);
	jw_uint(w, "pages_raw_bytes", r->pages_raw);
	jw_uint(w, "pages_payload_bytes", r->pages_payload);
	jw_uint(w, "files_raw_bytes", r->files_raw);
	jw_uint(w, "raw_bytes", r->pages_raw + r->files_raw);
	jw_uint(w, "wire_bytes", r->wire_bytes);
	if (r->mode == MIG_PRE_COPY)
		precopy_json(w, r);
	if (r->backend.has) {
		jw_obj_begin(w, "backend");
		jw_double(w, "downtime_ms", r->backend.downtime_ms);
		jw_double(w, "total_ms", r->backend.total_ms);
		jw_uint(w, "transferred_bytes", r->backend.transferred);
		jw_uint(w, "passes", r->backend.passes);
		jw_uint(w, "dirty_pages_rate", r->backend.dirty_rate);
		if (r->mode == MIG_POST_COPY)
			jw_uint(w, "postcopy_requests", r->backend.postcopy_requests);
		jw_obj_end(w);
	}
	if (r->fs_carried)
		rootfs_json(w, r);
	if (r->moved && r->id_remap.to) {
		jw_obj_begin(w, "id_range_remapped");
		jw_uint(w, "from", r->id_remap.from);
		jw_uint(w, "to", r->id_remap.to);
		jw_uint(w, "count", r->id_remap.count);
		jw_obj_end(w);
	}
	if (rc) {
		jw_int(w, "code", err->code);
		jw_str(w, "error", err->msg);
	}
	jw_obj_end(w);
}

void migrate_report_text(const struct migrate_result *r)
{
	char b1[32], b2[32];

	printf("tenant %s migrated to %s (%s, pid %d there)\n", r->tenant, r->dest,
	       mig_mode_str(r->mode), r->dest_pid);
	printf("  downtime %.1f ms, total %.1f ms\n", r->downtime_ms, r->total_ms);
	printf("  freeze %.1f | dump+pages %.1f | images %.1f | restore %.1f | handover %.1f | "
	       "resume %.1f | network %.1f | cleanup %.1f ms\n",
	       r->freeze_ms, r->dump_ms, r->transfer_ms, r->restore_ms, r->handover_ms,
	       r->resume_ms, r->net_ms, r->cleanup_ms);
	if (r->mode == MIG_POST_COPY)
		printf("  memory followed in the background: last page %.1f ms after the resume\n",
		       r->pages_done_ms);
	if (r->mode == MIG_PRE_COPY) {
		for (unsigned i = 0; i < r->n_rounds && i < MIG_ROUNDS_MAX; i++) {
			const struct mig_round *m = &r->rounds[i];
			printf(
			    "  pre-copy round %u: %llu pages, %s relayed in %.1f ms (frozen %.1f "
			    "ms)\n",
			    i + 1, (unsigned long long)m->pages, fmt_bytes(m->raw, b1, sizeof(b1)),
			    m->ms, m->frozen_ms);
		}
		printf("  final dump: %s relayed in %.1f ms (rounds stopped: %s)\n",
		       fmt_bytes(r->final_round.raw, b1, sizeof(b1)), r->final_round.ms,
		       r->precopy_stop[0] ? r->precopy_stop : "-");
	}
	printf("  %s raw, %s on the wire\n", fmt_bytes(r->pages_raw + r->files_raw, b1, sizeof(b1)),
	       fmt_bytes(r->wire_bytes, b2, sizeof(b2)));
	if (r->fs_carried)
		printf("  files: %s%s while running (%.1f ms), %llu changed / %llu deleted entries "
		       "(%s) while frozen (%.1f ms)\n",
		       r->fs_image_sent ? "image and layer " : "layer ",
		       fmt_bytes(r->fs_raw, b1, sizeof(b1)), r->fs_first_ms,
		       (unsigned long long)r->fs_delta_entries, (unsigned long long)r->fs_deleted,
		       fmt_bytes(r->fs_delta_raw, b2, sizeof(b2)), r->fs_delta_ms);
}

void migrate_report_remap(const struct migrate_result *r)
{
	const uint32_t n = r->id_remap.count;

	if (!r->moved || !r->id_remap.to || !n)
		return;
	fprintf(stderr, "tenant %s runs under IDs %u-%u on %s (its range %u-%u there was taken)\n",
		r->tenant, r->id_remap.to, r->id_remap.to + (n - 1), r->dest, r->id_remap.from,
		r->id_remap.from + (n - 1));
}

void migrate_progress_tty(const char *stage, const struct migrate_result *r, void *arg)
{
	(void)arg;
	if (!isatty(2))
		return;
	fprintf(stderr, "ferry migrate: %s: %s\n", r->tenant, stage);
}

int migrate_opt_mode(const char *arg, void *field, ferr_t *err)
{
	return mig_mode_parse(arg, field, err);
}
