/* ferry snapshot: the encrypted, deduplicated snapshot store
 * (docs/snapshots.md). One option table per subcommand. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "criu/locate.h"
#include "lib/fsutil.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/util.h"
#include "snapshot/repo.h"
#include "snapshot/retention.h"
#include "snapshot/snap.h"
#include "transport/snapxfer.h"

#include "cmd/snapshot.h"

static int parse_tag(const char *arg, void *field, ferr_t *err)
{
	struct tags *t = field;

	if (t->n == MAX_TAGS)
		return ferr_set(err, FX_USAGE, "at most %d tags", MAX_TAGS);
	if (!*arg || strlen(arg) > 64)
		return ferr_set(err, FX_USAGE, "a tag is 1..64 characters");
	t->v[t->n++] = arg;
	return 0;
}

static int parse_dur(const char *arg, void *field, ferr_t *err)
{
	return parse_duration(arg, field, err);
}

#define O_STORE                                                                                    \
	{.name = "store",                                                                          \
	 .type = OPT_STR,                                                                          \
	 .off = offsetof(struct snap_args, store),                                                 \
	 .arg = "DIR",                                                                             \
	 .help = "the snapshot store (default STATE/snapshots)"},                                  \
	{                                                                                          \
		.name = "key-file", .type = OPT_STR, .off = offsetof(struct snap_args, key_file),  \
		.arg = "FILE", .help = "the store's key, mode 0600 (default STATE/snapshot.key)"   \
	}
#define O_JSON OPTS_JSON(struct snap_args, json)
#define O_KEEP(N, F, H)                                                                            \
	{                                                                                          \
		.name = N, .type = OPT_INT, .off = offsetof(struct snap_args, keep.F), .arg = "N", \
		.min = -1, .max = 1000000, .help = H                                               \
	}

static const struct opt init_opts[] = {
    O_STORE,
    {.name = "page-chunk",
     .type = OPT_UINT,
     .off = offsetof(struct snap_args, page_chunk_kib),
     .arg = "KIB",
     .min = 4,
     .max = 1024,
     .flags = OPT_SHOW_DEFAULT,
     .help = "memory per page chunk, a multiple of 4 (one dirtied page costs one such chunk; "
	     "smaller: less growth, more files)"},
    O_JSON,
    {0}};
static const struct opt create_opts[] = {O_STORE,
					 {.name = "tag",
					  .type = OPT_FN,
					  .off = offsetof(struct snap_args, tags),
					  .arg = "T",
					  .parse = parse_tag,
					  .help = "a tag for the snapshot (repeatable)"},
					 O_JSON,
					 {0}};
static const struct opt list_opts[] = {O_STORE, O_JSON, {0}};
static const struct opt verify_opts[] = {
    O_STORE,
    {.name = "all",
     .type = OPT_FLAG,
     .off = offsetof(struct snap_args, all),
     .help = "every snapshot of the store"},
    {.name = "read-data",
     .type = OPT_FLAG,
     .off = offsetof(struct snap_args, read_data),
     .help = "decrypt and authenticate every chunk and check its name (else: every chunk "
	     "present)"},
    O_JSON,
    {0}};
static const struct opt restore_opts[] = {
    O_STORE,
    {.name = "name",
     .type = OPT_STR,
     .off = offsetof(struct snap_args, name),
     .arg = "NEW",
     .help = "restore as a new tenant NEW instead of rolling back the snapshot's own"},
    {.name = "to",
     .type = OPT_FN,
     .off = offsetof(struct snap_args, to),
     .arg = "HOST:PORT",
     .parse = opt_hostport,
     .help = "restore on that host's agent (`ferry serve`): only the chunks its store "
	     "(STATE/snapshots, same key) lacks are sent"},
    {.name = "tls",
     .type = OPT_STR,
     .off = offsetof(struct snap_args, tls_dir),
     .arg = "DIR",
     .help = "with --to: the TLS directory (CA and this host's identity, `ferry cert`)"},
    {.name = "tls-name",
     .type = OPT_STR,
     .off = offsetof(struct snap_args, tls_name),
     .arg = "NAME",
     .help = "with --to: this host's name in the TLS directory"},
    {.name = "peer",
     .type = OPT_STR,
     .off = offsetof(struct snap_args, peer),
     .arg = "NAME",
     .help = "with --to: the name in the peer's certificate (default: the HOST of --to)"},
    O_JSON,
    {0}};
static const struct opt prune_opts[] = {
    O_STORE,
    O_KEEP("keep-last", last, "keep the N newest snapshots (-1: all)"),
    O_KEEP("keep-hourly", hourly, "keep the newest snapshot of each of the last N hours"),
    O_KEEP("keep-daily", daily, "keep the newest snapshot of each of the last N days"),
    O_KEEP("keep-weekly", weekly, "keep the newest snapshot of each of the last N weeks"),
    O_KEEP("keep-monthly", monthly, "keep the newest snapshot of each of the last N months"),
    O_KEEP("keep-yearly", yearly, "keep the newest snapshot of each of the last N years"),
    {.name = "keep-within",
     .type = OPT_FN,
     .off = offsetof(struct snap_args, keep.within),
     .arg = "DURATION",
     .parse = parse_dur,
     .help = "keep every snapshot less than DURATION (30s, 10m, 6h, 1d, 2w, 1y) older "
	     "than the newest"},
    {.name = "dry-run",
     .type = OPT_FLAG,
     .off = offsetof(struct snap_args, dry_run),
     .help = "only show what would be kept and removed"},
    O_JSON,
    {0}};

static const struct opt schedule_opts[] = {
    O_STORE,
    {.name = "every",
     .type = OPT_FN,
     .off = offsetof(struct snap_args, every),
     .arg = "DURATION",
     .parse = parse_dur,
     .help = "take a snapshot this often (30s, 10m, 6h, 1d)"},
    O_KEEP("keep-last", last, "after each run, prune: keep the N newest"),
    O_KEEP("keep-hourly", hourly, "... the newest of each of the last N hours"),
    O_KEEP("keep-daily", daily, "... the newest of each of the last N days"),
    O_KEEP("keep-weekly", weekly, "... the newest of each of the last N weeks"),
    O_KEEP("keep-monthly", monthly, "... the newest of each of the last N months"),
    O_KEEP("keep-yearly", yearly, "... the newest of each of the last N years"),
    {.name = "keep-within",
     .type = OPT_FN,
     .off = offsetof(struct snap_args, keep.within),
     .arg = "DURATION",
     .parse = parse_dur,
     .help = "... every snapshot less than DURATION older than the newest"},
    {.name = "list",
     .type = OPT_FLAG,
     .off = offsetof(struct snap_args, list),
     .help = "show every schedule: last result, last frozen time, next run"},
    {.name = "off",
     .type = OPT_FLAG,
     .off = offsetof(struct snap_args, off),
     .help = "remove NAME's schedule"},
    O_JSON,
    {0}};

static const struct cmd_spec specs[] = {
    {.name = "snapshot init",
     .about = "Create a snapshot store and, unless --key-file names an existing one, its key\n"
	      "(written 0600; keep a copy elsewhere: without it no snapshot can be read).\n",
     .opts = init_opts},
    {.name = "snapshot create",
     .args = "NAME",
     .min_args = 1,
     .max_args = 1,
     .about = "Snapshot a running tenant into the store: it is frozen only while CRIU saves\n"
	      "it and runs on. Its files (an image tenant's own layer and its image, a\n"
	      "--rootfs tenant's tree) are stored while it runs and what changed again\n"
	      "while it is frozen, so memory and files are of one instant. Its memory\n"
	      "streams from CRIU's page server into ferry and is cut on page-aligned\n"
	      "boundaries (nothing of it is written to disk first; a VM's state and\n"
	      "CRIU's small other images pass through STORE/tmp); each chunk is\n"
	      "compressed, encrypted and stored once, mostly after the tenant resumed;\n"
	      "the manifest is written last.\n",
     .opts = create_opts},
    {.name = "snapshot list",
     .args = "[NAME]",
     .max_args = 1,
     .about = "The store's snapshots, oldest first (of tenant NAME only when given).\n",
     .opts = list_opts},
    {.name = "snapshot show",
     .args = "ID",
     .min_args = 1,
     .max_args = 1,
     .about = "One snapshot's manifest: tenant, time, tags, parent, host, timings, files.\n",
     .opts = list_opts},
    {.name = "snapshot verify",
     .args = "[ID]",
     .max_args = 1,
     .about = "Check a snapshot (or --all): every chunk is there; with --read-data every\n"
	      "chunk decrypts, authenticates and matches its name. Names each broken\n"
	      "snapshot and file; exit code 5 when one is.\n",
     .opts = verify_opts},
    {.name = "snapshot restore",
     .args = "ID",
     .min_args = 1,
     .max_args = 1,
     .about = "Roll a tenant back to a snapshot, memory and files: every chunk is read and\n"
	      "checked first; only then is its running incarnation stopped and the snapshot\n"
	      "restored in its place (or as a new tenant with --name). With --to, the snapshot is "
	      "copied\n"
	      "to that host's store first (only the chunks it lacks) and restored there;\n"
	      "the tenant here is left alone.\n",
     .opts = restore_opts},
    {.name = "snapshot rm",
     .args = "ID",
     .min_args = 1,
     .max_args = 1,
     .about = "Remove a snapshot (its chunks go with the next gc or prune).\n",
     .opts = list_opts},
    {.name = "snapshot prune",
     .args = "NAME",
     .min_args = 1,
     .max_args = 1,
     .about = "Remove the snapshots of tenant NAME that no policy keeps (restic's rules:\n"
	      "policies ORed; shows what each kept snapshot is kept for), then collect the\n"
	      "chunks no snapshot names any more.\n",
     .opts = prune_opts},
    {.name = "snapshot schedule",
     .args = "[NAME]",
     .max_args = 1,
     .about = "Snapshot tenant NAME every DURATION, run by this host's agent (`ferry serve`;\n"
	      "the schedule is kept in STATE/schedules and survives a restart of the agent).\n"
	      "After each run the --keep-* policy, if any, prunes its snapshots. A failed\n"
	      "run is logged and the next comes a period later. --list shows them all.\n",
     .opts = schedule_opts},
    {.name = "snapshot gc",
     .about = "Remove chunks no snapshot names and leftovers of interrupted snapshots.\n",
     .opts = list_opts},
};

enum { S_INIT, S_CREATE, S_LIST, S_SHOW, S_VERIFY, S_RESTORE, S_RM, S_PRUNE, S_SCHED, S_GC };

static void defaults(struct snap_args *a, const struct global_opts *g)
{
	if (!a->store) {
		snprintf(a->store_buf, sizeof(a->store_buf), "%s/snapshots", g->state_dir);
		a->store = a->store_buf;
	}
	if (!a->key_file) {
		snprintf(a->key_buf, sizeof(a->key_buf), "%s/snapshot.key", g->state_dir);
		a->key_file = a->key_buf;
	}
}

const char *snap_fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

int snap_open_store(struct repo *r, const struct snap_args *a, bool exclusive, const char *cmd,
		    ferr_t *err)
{
	if (repo_open(r, a->store, a->key_file, err) < 0 || repo_lock(r, exclusive, err) < 0) {
		repo_close(r);
		return cmd_report(cmd, err);
	}
	return 0;
}

static int do_init(struct snap_args *a)
{
	struct repo_init_opts o = {
	    .dir = a->store, .key_file = a->key_file, .page_chunk = a->page_chunk_kib * 1024};
	ferr_t err = {0};

	if (a->page_chunk_kib % 4)
		return opts_usage_error(&specs[S_INIT], "--page-chunk must be a multiple of 4");
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

static int do_create(struct snap_args *a, const char *name, const struct global_opts *g)
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

static int do_list(struct snap_args *a, const char *tenant)
{
	struct repo r;
	snapm_t **v;
	size_t n, bad;
	ferr_t err = {0};
	int rc;

	if ((rc = snap_open_store(&r, a, false, "snapshot list", &err)))
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

static int do_show(struct snap_args *a, const char *prefix)
{
	char id[REPO_ID_LEN + 1];
	struct repo r;
	snapm_t *m;
	ferr_t err = {0};
	int rc;

	if ((rc = snap_open_store(&r, a, false, "snapshot show", &err)))
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

static int do_verify(struct snap_args *a, const char *prefix)
{
	struct vstate v = {.a = a};
	struct repo r;
	struct jw w;
	ferr_t err = {0};
	int rc, checked = 0;

	if (!a->all == !prefix)
		return opts_usage_error(&specs[S_VERIFY], "give a snapshot ID or --all");
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

static int restore_to(struct snap_args *a, const char *id)
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
		return opts_usage_error(&specs[S_RESTORE], "--to needs --tls DIR and --tls-name");
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

static int do_restore(struct snap_args *a, const char *id, const struct global_opts *g)
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
		return restore_to(a, id);
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

static const char *const sub_names[] = {"init",	   "create", "list",  "show",	  "verify",
					"restore", "rm",     "prune", "schedule", "gc"};

static void snapshot_usage(FILE *f)
{
	fprintf(f, "usage: ferry snapshot SUBCOMMAND [ARGS...]\n\n"
		   "Encrypted, deduplicated snapshots of running tenants (docs/snapshots.md).\n\n"
		   "  init      create a store and its key\n"
		   "  create    snapshot a running tenant (it runs on)\n"
		   "  list      the store's snapshots\n"
		   "  show      one snapshot's manifest\n"
		   "  verify    check snapshots' chunks\n"
		   "  restore   roll a tenant back to a snapshot\n"
		   "  rm        remove a snapshot\n"
		   "  prune     remove snapshots by retention policy, then gc\n"
		   "  schedule  periodic snapshots, run by `ferry serve`\n"
		   "  gc        remove unreferenced chunks\n\n"
		   "Run 'ferry snapshot SUBCOMMAND --help' for its options.\n");
}

int cmd_snapshot(int argc, char **argv, const struct global_opts *g)
{
	struct snap_args a = {.page_chunk_kib = 4};
	int sub = -1, pos, rc;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		snapshot_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? FX_USAGE : FX_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(sub_names); i++)
		if (!strcmp(argv[1], sub_names[i]))
			sub = (int)i;
	if (sub < 0) {
		fprintf(stderr, "ferry snapshot: unknown subcommand '%s'\n", argv[1]);
		snapshot_usage(stderr);
		return FX_USAGE;
	}
	if ((rc = opts_parse(&specs[sub], &a, argc - 1, argv + 1, &pos)) != OPTS_RUN)
		return rc;
	defaults(&a, g);
	const char *arg = pos < argc - 1 ? argv[1 + pos] : NULL;
	switch (sub) {
	case S_INIT:
		return do_init(&a);
	case S_CREATE:
		return do_create(&a, arg, g);
	case S_LIST:
		return do_list(&a, arg);
	case S_SHOW:
		return do_show(&a, arg);
	case S_VERIFY:
		return do_verify(&a, arg);
	case S_RESTORE:
		return do_restore(&a, arg, g);
	case S_RM:
		return cmd_snap_rm(&a, arg);
	case S_PRUNE:
		return cmd_snap_prune(&a, arg, &specs[S_PRUNE]);
	case S_SCHED:
		return cmd_snap_schedule(&a, arg, g, &specs[S_SCHED]);
	default:
		return cmd_snap_gc(&a);
	}
}
