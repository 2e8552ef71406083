/* ferry snapshot's subcommands, split by responsibility: cmd/snapshot.c
 * (the option tables, --help specs, defaults and the dispatch),
 * cmd/snapshot_take.c (init, create, restore: what makes a store, takes a
 * tenant in and brings one back), cmd/snapshot_view.c (list, show, verify:
 * reading a store) and cmd/snapshot_keep.c (what keeps the store in shape:
 * rm, gc, prune, schedules). Private to cmd/. */
#ifndef FERRY_CMD_SNAPSHOT_H
#define FERRY_CMD_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "snapshot/repo.h"
#include "snapshot/retention.h"

#define MAX_TAGS 16

struct tags {
	const char *v[MAX_TAGS];
	size_t n;
};

struct snap_args {
	const char *store, *key_file;
	bool json, all, read_data, dry_run, list, off;
	int64_t every;
	struct tags tags;
	const char *name;
	const char *to, *tls_dir, *tls_name, *peer;
	struct keep_policy keep;
	unsigned page_chunk_kib;
	char store_buf[4200], key_buf[4200];
};

/* t as an ISO 8601 UTC time in buf. */
const char *snap_fmt_time(int64_t t, char *buf, size_t len);
/* Open and lock the store of a; on failure reports it as command cmd and
 * returns the exit code. */
int snap_open_store(struct repo *r, const struct snap_args *a, bool exclusive, const char *cmd,
		    ferr_t *err);
/* The same for a command that reads or removes manifests only (list, show,
 * rm): the packs' indexes are not read (repo_lock_manifests). */
int snap_open_manifests(struct repo *r, const struct snap_args *a, bool exclusive, const char *cmd,
			ferr_t *err);

int cmd_snap_init(struct snap_args *a, const struct cmd_spec *spec);
int cmd_snap_create(struct snap_args *a, const char *name, const struct global_opts *g);
int cmd_snap_restore(struct snap_args *a, const char *id, const struct global_opts *g,
		     const struct cmd_spec *spec);
int cmd_snap_list(struct snap_args *a, const char *tenant);
int cmd_snap_show(struct snap_args *a, const char *prefix);
int cmd_snap_verify(struct snap_args *a, const char *prefix, const struct cmd_spec *spec);
int cmd_snap_rm(struct snap_args *a, const char *prefix);
int cmd_snap_gc(struct snap_args *a);
int cmd_snap_prune(struct snap_args *a, const char *tenant, const struct cmd_spec *spec);
int cmd_snap_schedule(struct snap_args *a, const char *name, const struct global_opts *g,
		      const struct cmd_spec *spec);

#endif
