/* ferry snapshot init, create and restore: the subcommands that make a
 * store, take a tenant into it and bring a tenant back from it (here or, with
 * restore --to, on another host's agent). The option tables and the
 * dispatch are in cmd/snapshot.c; list/show/verify in cmd/snapshot_view.c;
 * rm/gc/prune/schedule in cmd/snapshot_keep.c (docs/snapshots.md). */
#include <stdio.h>
#include <unistd.h>

#include "cmd/snapshot.h"
#include "criu/locate.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/util.h"
#include "snapshot/snap.h"
#include "transport/snapxfer.h"

int cmd_snap_init(struct snap_args *a, const struct cmd_spec *spec)
{
	struct repo_init_opts o = {
	    .dir = a->store, .key_file = a->key_file, .page_chunk = a->page_chunk_kib * 1024};
	ferr_t err = {0};

	if (a->page_chunk_kib % 4)
		return opts_usage_error(spec, "--page-chunk must be a multiple of 4");
	o.new_key = access(a->key_file, F_OK) != 0;
	if (fs_mkdir_p(a->store, 0700, &err) < 0 || repo_init(&o, &err) < 0)
		return cmd_report("snapshot init", &err);
	if (a->json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
		jw_str(&w, "store", a->store);
		jw_str(&w, "key_file", a->key_file);
		jw_bool(&w, "new_key", o.new_key);
		jw_obj_end(&w);
		jw_finish(&w);
	} else {
		printf("created snapshot store %s with %s key %s%s\n", a->store,
		       o.new_key ? "the new" : "the", a->key_file,
		       o.new_key ? " (keep a copy elsewhere)" : "");
	}
	return FX_OK;
}

static void create_report(const struct snap_create_result *r, const struct snap_args *a)
{
	char b1[32], b2[32];

	if (!a->json) {
		printf("snapshot %s of %s: frozen %.1f ms, %s in %u chunks, added %s in %u new "
		       "chunks (dump %.1f ms, store %.1f ms, total %.1f ms)\n",
		       r->id, r->tenant, r->frozen_ms, fmt_bytes(r->st.size, b1, sizeof(b1)),
		       r->st.chunks, fmt_bytes(r->st.added, b2, sizeof(b2)), r->st.added_ch,
		       r->dump_ms, r->store_ms, r->total_ms);
		if (r->fs_entries)
			printf("  files: %u entries, %u unchanged; %.1f ms while frozen, %.1f ms "
			       "while running\n",
			       r->fs_entries, r->fs_reused, r->fs_frozen_ms, r->fs_pre_ms);
		printf("  memory: %llu pages streamed from CRIU, %llu chunks named by the parent; "
		       "%.1f ms to store after the dump\n",
		       (unsigned long long)r->stream.pages, (unsigned long long)r->stream.known,
		       r->stream.drain_ms);
		return;
	}
	struct jw w;
	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "id", r->id);
	jw_str(&w, "tenant", r->tenant);
	jw_str(&w, "parent", r->parent[0] ? r->parent : NULL);
	jw_uint(&w, "size", r->st.size);
	jw_uint(&w, "chunks", r->st.chunks);
	jw_uint(&w, "added", r->st.added);
	jw_uint(&w, "added_chunks", r->st.added_ch);
	jw_double(&w, "freeze_ms", r->freeze_ms);
	jw_double(&w, "frozen_ms", r->frozen_ms);
	jw_double(&w, "dump_ms", r->dump_ms);
	jw_double(&w, "store_ms", r->store_ms);
	jw_double(&w, "total_ms", r->total_ms);
	jw_uint(&w, "fs_entries", r->fs_entries);
	jw_uint(&w, "fs_reused", r->fs_reused);
	jw_double(&w, "fs_frozen_ms", r->fs_frozen_ms);
	jw_double(&w, "fs_pre_ms", r->fs_pre_ms);
	jw_obj_begin(&w, "stream"); /* the memory: CRIU's page stream */
	jw_uint(&w, "pages", r->stream.pages);
	jw_uint(&w, "images", r->stream.images);
	jw_uint(&w, "known_chunks", r->stream.known);
	jw_uint(&w, "header_bytes", r->stream.hdr_len);
	jw_double(&w, "prefault_ms", r->stream.prefault_ms);
	jw_double(&w, "drain_ms", r->stream.drain_ms);
	jw_double(&w, "held_mib", r->stream.held_mib);
	jw_obj_end(&w);
	jw_obj_end(&w);
	jw_finish(&w);
}

int cmd_snap_create(struct snap_args *a, const char *name, const struct global_opts *g)
{
	struct snap_create_opts o = {.state_dir = g->state_dir,
				     .store = a->store,
				     .key_file = a->key_file,
				     .name = name,
				     .tags = a->tags.v,
				     .n_tags = a->tags.n};
	struct snap_create_result r;
	char criu[4096];
	ferr_t err = {0};

	if (criu_locate(g->criu, criu, sizeof(criu), NULL, &err) < 0)
		return cmd_report("snapshot create", &err);
	o.criu_path = criu;
	if (snap_create(&o, &r, &err) < 0)
		return cmd_report("snapshot create", &err);
	create_report(&r, a);
	return FX_OK;
}

static int restore_to(struct snap_args *a, const char *id, const struct cmd_spec *spec)
{
	struct snap_push_opts o = {.store = a->store,
				   .key_file = a->key_file,
				   .id = id,
				   .tls_dir = a->tls_dir,
				   .my_name = a->tls_name,
				   .peer = a->peer,
				   .restore = true,
				   .as_name = a->name,
				   .timeout_ms = 60000};
	struct snap_push_result r;
	char host[256];
	ferr_t err = {0};

	if (!a->tls_dir || !a->tls_name)
		return opts_usage_error(spec, "--to needs --tls DIR and --tls-name");
	if (parse_hostport(a->to, host, sizeof(host), &o.port, &err) < 0)
		return cmd_report("snapshot restore", &err);
	o.host = host;
	if (snap_push(&o, &r, &err) < 0)
		return cmd_report("snapshot restore", &err);
	if (!a->json) {
		printf("restored snapshot %s on %s as %s, pid %d there%s: sent %u of %u chunks "
		       "(%llu bytes), restore %.1f ms, total %.1f ms\n",
		       r.id, a->to, r.name, r.pid, r.replaced ? ", replacing its incarnation" : "",
		       r.sent, r.chunks, (unsigned long long)r.sent_bytes, r.restore_ms,
		       r.total_ms);
		return FX_OK;
	}
	struct jw w;
	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "id", r.id);
	jw_str(&w, "to", a->to);
	jw_str(&w, "tenant", r.name);
	jw_int(&w, "pid", r.pid);
	jw_bool(&w, "replaced", r.replaced);
	jw_uint(&w, "chunks", r.chunks);
	jw_uint(&w, "sent", r.sent);
	jw_uint(&w, "sent_bytes", r.sent_bytes);
	jw_double(&w, "restore_ms", r.restore_ms);
	jw_double(&w, "total_ms", r.total_ms);
	jw_obj_end(&w);
	jw_finish(&w);
	return FX_OK;
}

int cmd_snap_restore(struct snap_args *a, const char *id, const struct global_opts *g,
		     const struct cmd_spec *spec)
{
	struct snap_restore_opts o = {.state_dir = g->state_dir,
				      .store = a->store,
				      .key_file = a->key_file,
				      .id = id,
				      .name = a->name};
	struct snap_restore_result r;
	char criu[4096];
	ferr_t err = {0};

	if (a->to)
		return restore_to(a, id, spec);
	if (criu_locate(g->criu, criu, sizeof(criu), NULL, &err) < 0)
		return cmd_report("snapshot restore", &err);
	o.criu_path = criu;
	if (snap_restore(&o, &r, &err) < 0)
		return cmd_report("snapshot restore", &err);
	if (!a->json) {
		printf("restored snapshot %s as %s, pid %d%s (checks %.1f ms, stop %.1f ms, "
		       "restore %.1f ms, total %.1f ms)\n",
		       r.id, r.name, r.pid, r.replaced ? ", replacing its running incarnation" : "",
		       r.verify_ms, r.stop_ms, r.restore_ms, r.total_ms);
		if (r.id_to)
			printf("id range re-mapped from %u-%u to %u-%u (its range is another "
			       "tenant's on this host)\n",
			       r.id_from, r.id_from + 65535, r.id_to, r.id_to + 65535);
		return FX_OK;
	}
	struct jw w;
	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "id", r.id);
	jw_str(&w, "tenant", r.name);
	jw_int(&w, "pid", r.pid);
	jw_bool(&w, "replaced", r.replaced);
	jw_double(&w, "verify_ms", r.verify_ms);
	jw_double(&w, "stop_ms", r.stop_ms);
	jw_double(&w, "restore_ms", r.restore_ms);
	jw_double(&w, "total_ms", r.total_ms);
	if (r.id_to) {
		jw_obj_begin(&w, "id_remap");
		jw_uint(&w, "from", r.id_from);
		jw_uint(&w, "to", r.id_to);
		jw_obj_end(&w);
	}
	jw_obj_end(&w);
	jw_finish(&w);
	return FX_OK;
}
