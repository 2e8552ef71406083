/* Source side of a migration that carries the tenant's file system
 * (docs/rootfs.md): a tenant from an image. After MIGRATE_BEGIN the
 * destination says whether it has the image (MIG_FS_HAVE); the image (when
 * it lacks it) and the tenant's whole own layer go while the tenant runs;
 * once it is frozen, before the images, only what changed in its layer since
 * (and what was deleted). Private to migrate/. */
#ifndef FERRY_MIGRATE_FS_H
#define FERRY_MIGRATE_FS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct src;

struct mfs_stats {
	bool carried;	     /* the tenant's files went with it */
	bool image_sent;     /* the destination lacked the image */
	uint64_t first_raw;  /* bytes of the copy while running (image included) */
	uint64_t first_wire; /* the same after LZ4 */
	uint64_t delta_raw, delta_wire;
	uint64_t delta_entries, deleted;
	double first_ms, delta_ms; /* delta_ms: part of the downtime */
};

/* Does this tenant's file system travel (BEGIN's carry_fs)? */
bool mfs_carries(const struct src *s);
/* Right after BEGIN went out, before MIG_ACCEPT. */
int mfs_src_begin(struct src *s, ferr_t *err);
/* The tenant was just frozen (the mode's FROZEN event): the change since
 * mfs_src_begin is prepared in a thread while the backend saves it. */
void mfs_src_frozen(struct src *s);
/* Frozen, before the images: the change since mfs_src_begin (prepared, or
 * found now when mfs_src_frozen did not run). */
int mfs_src_final(struct src *s, ferr_t *err);
/* The figures (zeros when nothing was carried); frees the state. */
void mfs_src_end(struct src *s, struct mfs_stats *out);

#endif
