/* A tenant's file system in an image set (docs/rootfs.md): `ferry dump
 * --with-rootfs` packs an image tenant's own layer (its overlay's upper
 * directory, whiteouts included) into the set, `--with-image` the image's
 * tree too; both are files of the set, covered by the manifest's hashes.
 * A restore finds the image by its content id in the store first, takes it
 * from the set otherwise (checking that its content id is the manifest's),
 * and recreates the tenant's layer from the set. */
#ifndef FERRY_ROOTFS_SET_H
#define FERRY_ROOTFS_SET_H

#include <stdbool.h>

#include "lib/err.h"
#include "proto/manifest.h"
#include "tenant/registry.h"

#define ROOTFS_SET_LAYER "rootfs-layer.tar"
#define ROOTFS_SET_IMAGE "rootfs-image.tar"

/* Dump side: write the files into dir and name them in m (before the
 * manifest lists the set's files). FX_USAGE for a tenant without an image. */
int rootfs_set_pack(const char *state_dir, const struct tenant_rec *rec, const char *dir,
		    bool with_image, manifest_t *m, ferr_t *err);
/* Restore side, before the load: for a manifest with an image, point
 * rec->image/rootfs at this host's store and overlay, adopt the image from
 * the set when the store lacks it, and recreate the tenant's layer from the
 * set when the set has one (else this host's must exist). */
int rootfs_set_unpack(const char *state_dir, const manifest_t *m, const char *dir,
		      struct tenant_rec *rec, ferr_t *err);
/* A failed restore of a tenant that was not here before: drop its overlay
 * and layer. */
void rootfs_set_discard(const char *state_dir, const char *name);

#endif
