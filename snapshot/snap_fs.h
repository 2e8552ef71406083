/* The tenant's files in a snapshot (docs/snapshots.md): an image tenant's
 * own overlay layer ("layer"), a --rootfs tenant's whole tree ("tree").
 *
 * Create: a first pass stores the files while the tenant runs (unchanged
 * ones since the parent snapshot are not read); the frozen pass, run at the
 * backend's hold point (CKPT_EV_SAVED, the tenant still frozen with its
 * memory saved), stores what changed since that first pass. So memory and
 * files are of one instant, and the frozen pass costs what changed.
 *
 * Restore: the files are written next to where they go and checked before
 * anything is stopped; once the running incarnation is stopped they take
 * the place of its files. */
#ifndef FERRY_SNAP_FS_H
#define FERRY_SNAP_FS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "snapshot/repo.h"
#include "snapshot/repo_tree.h"
#include "tenant/ckpt.h"

struct snapfs {
	struct repo *repo;
	snapm_t *m;	     /* the snapshot's manifest: the frozen pass adds to it */
	char root[PATH_MAX]; /* "" : the tenant has no files of its own to keep */
	snapm_t *pre;	     /* the first pass */
	int64_t pre_start_ns;
	struct repo_stats pre_st, st, img_st; /* img: the image (layer tenants) */
	struct repo_tree_stats pre_ts, ts;
	double pre_ms, frozen_ms;
	bool done; /* the frozen pass ran */
};

/* Find the tenant's files (state_dir's record of name), note them in m and
 * run the first pass (parent: the tenant's previous snapshot, or NULL). */
int snapfs_begin(struct snapfs *fs, struct repo *r, snapm_t *m, const char *state_dir,
		 const char *name, const snapm_t *parent, ferr_t *err);
/* The dump's event function (arg: the struct snapfs). */
int snapfs_on_event(enum ckpt_event ev, pid_t pid, void *arg, ferr_t *err);
/* After the dump: timings and counts into m, the bytes added into st. */
int snapfs_finish(struct snapfs *fs, struct repo_stats *st, ferr_t *err);
void snapfs_free(struct snapfs *fs);

struct snapfs_restore {
	bool layer, tree;
	char stage[PATH_MAX];  /* the files, written and checked */
	char dest[PATH_MAX];   /* where they go */
	char rootfs[PATH_MAX]; /* tree: the restore's root (restore_opts.rootfs) */
};

/* Before anything is stopped: write m's files for tenant name into a
 * stage; nothing (0) when m has none. */
int snapfs_restore_prepare(struct snapfs_restore *fr, struct repo *r, const snapm_t *m,
			   const char *state_dir, const char *name, ferr_t *err);
/* Once name's running incarnation is stopped: the stage takes the place of
 * its files. */
int snapfs_restore_commit(struct snapfs_restore *fr, const char *state_dir, const char *name,
			  ferr_t *err);
void snapfs_restore_cleanup(struct snapfs_restore *fr);

#endif
