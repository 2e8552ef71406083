/* A tenant's file tree in the snapshot store (docs/snapshots.md): every
 * entry of a directory tree (regular files cut by content-defined
 * chunking, directories, symbolic links, device nodes such as overlay
 * whiteouts, FIFOs, hard links, xattrs, owners, modes, times) as files of
 * part PART_ROOTFS of a manifest, and back.
 *
 * Unchanged files cost nothing: an earlier capture of the same tree (the
 * parent snapshot, or a pass made while the tenant ran) is a cache; a
 * regular file whose inode, size, mtime and ctime (ns) match its entry
 * there takes that entry's chunk list without being read. An entry whose
 * ctime is not older than the cache's own capture (trust_before_ns) is read
 * again: a change in the same clock tick would not show in its times. */
#ifndef FERRY_REPO_TREE_H
#define FERRY_REPO_TREE_H

#include <stdint.h>

#include "snapshot/repo.h"

struct repo_tree_opts {
	FerrySnap__FilePart part; /* PART_ROOTFS or PART_IMAGE */
	const snapm_t *cache;	  /* NULL: read everything */
	int64_t trust_before_ns;  /* CLOCK_REALTIME ns; see above */
};

struct repo_tree_stats {
	uint32_t entries, reused;
	uint64_t read_bytes; /* file data read (not reused) */
};

/* Add every entry under root (not root itself; never crossing into another
 * file system) to m as o->part. */
int repo_add_tree(struct repo *r, snapm_t *m, const char *root, const struct repo_tree_opts *o,
		  struct repo_stats *st, struct repo_tree_stats *ts, ferr_t *err);

/* Write m's entries of part into dir (exists, empty): every chunk and
 * every file's SHA-256 checked; holes of all-zero chunks stay holes. */
int repo_extract_tree(struct repo *r, const snapm_t *m, FerrySnap__FilePart part, const char *dir,
		      ferr_t *err);
/* Whether m has entries of part. */
bool repo_has_part(const snapm_t *m, FerrySnap__FilePart part);

/* Entries of m (PART_ROOTFS) that are new, changed or gone against old
 * (NULL: all new): fn(kind '+', '~' or '-', path). */
typedef void (*repo_tree_diff_fn)(char kind, const FerrySnap__File *f, void *arg);
int repo_tree_diff(const snapm_t *old, const snapm_t *m, repo_tree_diff_fn fn, void *arg,
		   ferr_t *err);

#endif
