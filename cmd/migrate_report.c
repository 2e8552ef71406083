/* Migration reports (migrate_report.h). */
#include "migrate_report.h"

#include <stdio.h>
#include <unistd.h>

#include "util.h"

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
	printf("  %s raw, %s on the wire\n", fmt_bytes(r->pages_raw + r->files_raw, b1, sizeof(b1)),
	       fmt_bytes(r->wire_bytes, b2, sizeof(b2)));
}

void migrate_progress_tty(const char *stage, const struct migrate_result *r, void *arg)
{
	(void)arg;
	if (!isatty(2))
		return;
	fprintf(stderr, "ferry migrate: %s: %s\n", r->tenant, stage);
}
