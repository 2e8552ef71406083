/* Pack files of the snapshot store (docs/snapshots.md, "Packs"): many
 * sealed chunks in one file, so that a snapshot's new memory chunks cost a
 * few file creations instead of one each.
 *
 *   STORE/packs/<16 hex>.pack  sealed chunk | sealed chunk | ... | index |
 *                              u32 entries | "FPK1"
 *   index entry: chunk name (32) | u64 offset | u32 sealed length (LE)
 *
 * A pack is written in STORE/tmp and renamed into packs/ when complete
 * (before the manifest that names its chunks, which follows a syncfs). The
 * index is not sealed: it holds the keyed names and sizes a loose chunk's
 * file shows too; a damaged index only misplaces a chunk, which then fails
 * to authenticate under its name. Loose chunk files (chunks/XX/NAME) stay
 * valid: every reader looks there first, then in the packs. */
#ifndef FERRY_REPO_PACK_H
#define FERRY_REPO_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "snapshot/repo.h"

struct pack_ent {
	uint8_t id[SEAL_ID_LEN];
	uint64_t off;
	uint32_t len;
	uint32_t pack; /* index into the store's pack names */
};

/* Read every pack's index (repo_lock does, once). */
int repo_packs_load(struct repo *r, ferr_t *err);
void repo_packs_free(struct repo *r);
/* The pack entry of a chunk, or NULL. */
const struct pack_ent *repo_pack_find(const struct repo *r, const uint8_t id[SEAL_ID_LEN]);
/* A packed chunk's sealed bytes (*buf malloc'd); FX_INTEGRITY when its
 * pack is gone or short. */
int repo_pack_read(struct repo *r, const struct pack_ent *e, uint8_t **buf, size_t *len,
		   ferr_t *err);

/* One writer's pack being filled (not thread-safe: one per thread). */
struct pack_writer {
	int fd;
	char tmp[4200];
	uint64_t off;
	struct pack_ent *e;
	size_t n, cap;
};
#define PACK_WRITER_INIT                                                                           \
	{                                                                                          \
		.fd = -1                                                                           \
	}
#define PACK_MAX (32U << 20) /* a pack is closed beyond this many bytes */

/* Append a sealed chunk (a new pack when none is open; the pack is
 * completed when it passes PACK_MAX). */
int pack_put(struct repo *r, struct pack_writer *w, const uint8_t id[SEAL_ID_LEN],
	     const uint8_t *sealed, size_t len, ferr_t *err);
/* Complete the open pack (index, rename into packs/); nothing when none. */
int pack_finish(struct repo *r, struct pack_writer *w, ferr_t *err);
/* Drop the open pack (a failed snapshot). */
void pack_abort(struct pack_writer *w);

/* gc: packs none of whose chunks ids holds go; a pack partly named has the
 * named chunks written out as loose chunks, then goes. */
int repo_gc_packs(struct repo *r, const struct idset *ids, struct repo_gc_stats *st, ferr_t *err);

#endif
