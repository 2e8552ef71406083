/* The image store: root file systems imported once (from a directory or a
 * tar archive, treepack.h) into STATE_DIR/images/ID/rootfs, read-only from
 * then on (the lower layer of the tenants' overlays), named by their
 * content id.
 *
 * Content id: SHA-256 (hex) over the imported tree, walked in byte order of
 * its paths; per entry: its path, type, permission bits, owner and group
 * (numeric), mtime (whole seconds), size, device numbers, xattrs (sorted by
 * name), and its content's SHA-256 (regular files), its target (symbolic
 * links) or the path of its first hard link. The same tree imported from a
 * directory or from any tar of it gets the same id on every host. */
#ifndef FERRY_IMAGE_H
#define FERRY_IMAGE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "tenant/treepack.h"

#define IMAGE_ID_LEN 64 /* hex characters */

struct image_info {
	char id[IMAGE_ID_LEN + 1];
	int64_t created; /* seconds since the epoch */
	uint64_t entries, bytes;
	char source[PATH_MAX]; /* what it was imported from */
};

bool image_id_valid(const char *id);
/* STATE_DIR/images/ID/rootfs */
int image_root(const char *state_dir, const char *id, char *out, size_t len, ferr_t *err);
/* Is the image in the store? */
bool image_present(const char *state_dir, const char *id);
/* The content id of a tree (see above). */
int image_tree_id(const char *dir, char id[IMAGE_ID_LEN + 1], ferr_t *err);
/* Import src (a directory or an archive) unless the store has its content
 * already (*existed). Refuses unsafe archives (FX_INTEGRITY). */
int image_import(const char *state_dir, const char *src, struct image_info *out, bool *existed,
		 ferr_t *err);
/* Add an already extracted tree (moved into the store when its content id is
 * new, else removed): what a restore or a migration received. */
int image_adopt(const char *state_dir, const char *tree, const char *source,
		const struct treepack_stats *st, struct image_info *out, bool *existed,
		ferr_t *err);
/* An image named by its id or a unique prefix of at least 8 characters. */
int image_find(const char *state_dir, const char *ref, char id[IMAGE_ID_LEN + 1], ferr_t *err);
int image_info_load(const char *state_dir, const char *id, struct image_info *out, ferr_t *err);
/* All images, sorted by id; *v malloc'd. */
int image_list(const char *state_dir, struct image_info **v, size_t *n, ferr_t *err);
/* Remove an image; FX_CONFLICT while a tenant of this host uses it. */
int image_remove(const char *state_dir, const char *id, ferr_t *err);

#endif
