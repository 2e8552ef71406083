/* Root file systems of tenants made from an image (image.h): an overlay
 * mounted at STATE_DIR/tenants/NAME/root with the image's tree below
 * (read-only) and the tenant's own layer beside it, upper/ and work/ in
 * the same directory. Mounted in the host's mount namespace (the tenant
 * pivots into it; CRIU restores into it), unmounted when the tenant ends. */
#ifndef FERRY_ROOTFS_H
#define FERRY_ROOTFS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

/* STATE_DIR/tenants/NAME/root */
int rootfs_root(const char *state_dir, const char *name, char *out, size_t len, ferr_t *err);
/* STATE_DIR/tenants/NAME/upper */
int rootfs_upper(const char *state_dir, const char *name, char *out, size_t len, ferr_t *err);
/* The state dir and tenant name of a root made by rootfs_root. */
int rootfs_split(const char *root, char *state_dir, size_t len, const char **name, ferr_t *err);
bool rootfs_mounted(const char *root);
/* Create upper/, work/, root/ as needed and mount the overlay of image id
 * on root unless it is mounted already. */
int rootfs_mount(const char *state_dir, const char *name, const char *image_id, ferr_t *err);
/* The same, given the root (e.g. a record's rootfs). */
int rootfs_mount_root(const char *root, const char *image_id, ferr_t *err);
/* Unmount root if it is mounted (lazily: a tenant's leftover users do not
 * keep it). */
int rootfs_umount(const char *root, ferr_t *err);

/* The identity of a --rootfs DIR tree: a random id ferry keeps in
 * DIR/.ferry/rootfs-id (created when missing and create is set; read
 * without following links out of DIR). Hosts that see the same id see the
 * same tree (shared storage). */
#define ROOTFS_ID_FILE ".ferry/rootfs-id"
int rootfs_identity(const char *dir, bool create, char out[33], ferr_t *err);

#endif
