/* ferry snapshot: the encrypted, deduplicated snapshot store
 * (docs/snapshots.md). This file holds what every subcommand shares: one
 * option table per subcommand, the command specs (--help), the defaults of
 * --store and --key-file, opening a store, and the dispatch. The subcommands
 * themselves: cmd/snapshot_take.c (init, create, restore),
 * cmd/snapshot_view.c (list, show, verify), cmd/snapshot_keep.c (rm, gc,
 * prune, schedule). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "lib/util.h"
#include "snapshot/repo.h"
#include "snapshot/retention.h"

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

int snap_open_manifests(struct repo *r, const struct snap_args *a, bool exclusive, const char *cmd,
			ferr_t *err)
{
	if (repo_open(r, a->store, a->key_file, err) < 0 ||
	    repo_lock_manifests(r, exclusive, err) < 0) {
		repo_close(r);
		return cmd_report(cmd, err);
	}
	return 0;
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
		return cmd_snap_init(&a, &specs[S_INIT]);
	case S_CREATE:
		return cmd_snap_create(&a, arg, g);
	case S_LIST:
		return cmd_snap_list(&a, arg);
	case S_SHOW:
		return cmd_snap_show(&a, arg);
	case S_VERIFY:
		return cmd_snap_verify(&a, arg, &specs[S_VERIFY]);
	case S_RESTORE:
		return cmd_snap_restore(&a, arg, g, &specs[S_RESTORE]);
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
