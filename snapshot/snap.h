/* Snapshots of running tenants into the snapshot store (repo.h): take one
 * (the tenant runs on, frozen only while the backend saves it) and roll a
 * tenant back to one (the snapshot is read and checked completely before
 * the running incarnation is stopped). docs/snapshots.md. */
#ifndef FERRY_SNAP_H
#define FERRY_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/err.h"
#include "snapshot/pagestream.h"
#include "snapshot/repo.h"
#include "snapshot/retention.h"

struct snap_create_opts {
	const char *state_dir;
	const char *criu_path;
	const char *store;
	const char *key_file;
	const char *name; /* the tenant */
	const char *const *tags;
	size_t n_tags;
	int log_level;
};

struct snap_create_result {
	char id[REPO_ID_LEN + 1];
	char parent[REPO_ID_LEN + 1];
	char tenant[64];
	double freeze_ms, frozen_ms, dump_ms, store_ms, total_ms;
	/* the tenant's files: the pass while it ran, the frozen one */
	double fs_pre_ms, fs_frozen_ms;
	unsigned fs_entries, fs_reused;
	struct repo_stats st;
	struct pstream_stats stream; /* the memory's page stream */
};

int snap_create(const struct snap_create_opts *o, struct snap_create_result *r, ferr_t *err);

struct snap_restore_opts {
	const char *state_dir;
	const char *criu_path;
	const char *store;
	const char *key_file;
	const char *id;	  /* a snapshot id or a unique prefix */
	const char *name; /* NULL: the snapshot's tenant (rolled back in place) */
	int log_level;
};

struct snap_restore_result {
	char id[REPO_ID_LEN + 1];
	char name[64];
	pid_t pid;
	bool replaced; /* a running incarnation was stopped */
	double verify_ms, stop_ms, restore_ms, total_ms;
	uint32_t id_from, id_to; /* ID range re-mapped (restore.h; 0: not) */
};

int snap_restore(const struct snap_restore_opts *o, struct snap_restore_result *r, ferr_t *err);

/* Every manifest of the store (of tenant, when not NULL), oldest first:
 * *out malloc'd (free each with snapm_free, then the array). Unreadable
 * manifests are skipped and counted in *bad (may be NULL). */
int snap_list(struct repo *r, const char *tenant, snapm_t ***out, size_t *n, size_t *bad,
	      ferr_t *err);
void snap_list_free(snapm_t **v, size_t n);

/* Apply a retention policy to the snapshots of tenant (the caller holds the
 * store's exclusive lock): fn is told of each, newest first, kept or not
 * and why; without dry_run the others are removed. Returns how many were
 * (or would be) removed. */
typedef void (*snap_prune_fn)(const snapm_t *m, bool keep, unsigned reasons, void *arg);
int snap_prune(struct repo *r, const char *tenant, const struct keep_policy *p, bool dry_run,
	       snap_prune_fn fn, void *arg, ferr_t *err);

#endif
