/* Destination side of a migration that carries the tenant's file system
 * (migrate_fs.h, docs/rootfs.md): says whether the image is here, adopts a
 * sent image (checking its content id), puts the tenant's layer in place
 * (STATE/tenants/NAME/upper) and applies the frozen delta. A failed
 * migration leaves nothing: the tenant's directory goes with the failure
 * (dst.c), an image adopted for it is removed again. */
#ifndef FERRY_DST_FS_H
#define FERRY_DST_FS_H

#include <stdbool.h>

#include "lib/err.h"
#include "proto/wire.pb-c.h"
#include "tenant/registry.h"
#include "transport/chan.h"

struct mfs_dst;

/* BEGIN carries the file system: the precheck's record gets this host's
 * overlay root for the tenant (created empty) instead of the source's. */
bool mfs_dst_wanted(const Ferry__Wire__MigrateBegin *b);
/* A --rootfs DIR tenant without the copy: this host's DIR must be the same
 * tree (its identity, rootfs.h); FX_CONFLICT naming --copy-rootfs if not. */
int mfs_dst_check_shared(const Ferry__Wire__MigrateBegin *b, const char *host, ferr_t *err);
int mfs_dst_precheck_rec(const char *state_dir, const Ferry__Wire__MigrateBegin *b,
			 struct tenant_rec *rec, ferr_t *err);
/* After the checks, before MIG_ACCEPT: MIG_FS_HAVE, then the image and the
 * layer. *out is NULL when BEGIN does not carry the file system. */
int mfs_dst_begin(struct chan *c, const char *state_dir, const Ferry__Wire__MigrateBegin *b,
		  struct mfs_dst **out, ferr_t *err);
/* After the pages, before the images: the frozen delta is received, then
 * applied in a thread while the images arrive. */
int mfs_dst_final(struct mfs_dst *f, struct chan *c, ferr_t *err);
/* Before the restore: the delta applied, the layer in place (or its error). */
int mfs_dst_ready(struct mfs_dst *f, ferr_t *err);
/* The migration ended (ok: the tenant runs here); frees f. */
void mfs_dst_end(struct mfs_dst *f, bool ok);

#endif
