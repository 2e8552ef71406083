/* Directory trees in and out of tar archives through libarchive: the one
 * module that imports images, packs a tenant's upper layer into a dump and
 * carries it during a migration. Every name that comes from an archive (a
 * file, a peer) is checked before anything is written: no absolute names,
 * no ".." component, no hard link out of the tree, no relative symbolic link
 * that climbs above the tree's root; extraction never follows a symbolic
 * link of the tree (libarchive's SECURE_SYMLINKS / SECURE_NODOTDOT).
 *
 * Kept: modes, owners (numeric ids, never looked up by name), times, xattrs
 * (overlay whiteouts and opaque markers included), ACLs, hard links,
 * symbolic links, sparse files (holes are written as holes), FIFOs and
 * device nodes (overlay whiteouts are 0:0 character devices). */
#ifndef FERRY_TREEPACK_H
#define FERRY_TREEPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "lib/err.h"

struct treepack_stats {
	uint64_t entries;
	uint64_t bytes; /* file data (logical sizes) */
};

/* A name from an archive, relative to the tree's root: FX_INTEGRITY with a
 * message naming it when absolute or containing "..". */
int treepack_check_name(const char *name, const char *what, ferr_t *err);
/* A symbolic link at name pointing at target: refused when target is
 * relative and climbs above the root from name's directory. Absolute
 * targets resolve inside the tenant's root (after pivot_root) and are kept:
 * ferry itself never follows a link of a tree. */
int treepack_check_symlink(const char *name, const char *target, ferr_t *err);

/* Extract the archive at path (tar, pax, cpio...; plain, gzip, zstd, lz4,
 * xz, bzip2) into the existing directory dest. */
int treepack_extract_file(const char *path, const char *dest, struct treepack_stats *st,
			  ferr_t *err);
/* Extract from an open fd (a pipe, a socket) the same way. */
int treepack_extract_fd(int fd, const char *dest, struct treepack_stats *st, ferr_t *err);
/* Copy the tree src into the existing directory dest (same checks). */
int treepack_copy_dir(const char *src, const char *dest, struct treepack_stats *st, ferr_t *err);
/* Write the tree src as a pax archive (uncompressed) to path, or to fd when
 * path is NULL. */
int treepack_pack(const char *src, const char *path, int fd, struct treepack_stats *st,
		  ferr_t *err);
/* The same for an overlay's upper directory: overlayfs's own bookkeeping
 * xattrs (trusted.overlay.* but opaque, which marks a directory that hides
 * the lower one) name the source's file handles and stay behind. */
int treepack_pack_layer(const char *src, const char *path, int fd, struct treepack_stats *st,
			ferr_t *err);

/* Which entries a pack takes: called with each entry's path relative to the
 * root and its lstat; 1 takes it, 0 leaves it out (a delta). */
typedef int (*treepack_filter)(const char *rel, const struct stat *st, void *arg);
int treepack_pack_filtered(const char *src, const char *path, bool layer, treepack_filter f,
			   void *arg, struct treepack_stats *st, ferr_t *err);
/* Pack only the entries rels (paths relative to src, "." for src itself;
 * directories without what they hold) as a pax archive at path: a delta. */
int treepack_pack_list(const char *src, char *const *rels, size_t n, const char *path, bool layer,
		       struct treepack_stats *st, ferr_t *err);
/* Streams: the same archives, handed to sink(buf, len, sarg) as they are
 * written (nothing staged on disk); sink returns 0, or < 0 to stop the
 * pack (the caller keeps its own error: this one says the sink failed). */
typedef int (*treepack_sink)(const void *buf, size_t len, void *sarg);
int treepack_pack_to(const char *src, bool layer, treepack_filter f, void *farg, treepack_sink sink,
		     void *sarg, struct treepack_stats *st, ferr_t *err);
int treepack_pack_list_to(const char *src, char *const *rels, size_t n, bool layer,
			  treepack_sink sink, void *sarg, struct treepack_stats *st, ferr_t *err);
/* Remove rel (recursively) under root, never through a symbolic link of the
 * tree; a missing rel is no error. */
int treepack_remove(const char *root, const char *rel, ferr_t *err);

#endif
