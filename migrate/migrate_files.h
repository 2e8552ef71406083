/* The small (non-page) images of a live migration: CRIU writes them into a
 * local directory on the source while the pages go through the relay; after
 * the dump they cross the same session as MIG_FILE chunks, then the manifest
 * that lists them (sizes and SHA-256, checked by the destination's restore). */
#ifndef FERRY_MIGRATE_FILES_H
#define FERRY_MIGRATE_FILES_H

#include <stdint.h>

#include "transport/chan.h"
#include "lib/err.h"
#include "proto/manifest.h"

#define MIG_FILE_CHUNK (1U << 20)

/* Send every file of m (in dir), then MIG_FILES_END with m encoded. *raw gets
 * the file bytes sent. Errors stick to c as well. */
int mig_files_send(struct chan *c, const char *dir, const manifest_t *m, uint64_t *raw,
		   ferr_t *err);
/* Receive files into dir (flat names only, never overwriting) until
 * MIG_FILES_END; checks the manifest (wire_check_manifest) and writes it as
 * dir/manifest.ferry. */
int mig_files_recv(struct chan *c, const char *dir, uint64_t *raw, ferr_t *err);

#endif
