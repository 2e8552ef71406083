/* The ferry manifest: reading, writing, verifying an image set.
 * On-disk / on-wire form: "FRYM" | u32 version | u32 length | protobuf. */
#ifndef FERRY_MANIFEST_H
#define FERRY_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "proto/manifest.pb-c.h"

#define MANIFEST_NAME	 "manifest.ferry"
#define MANIFEST_MAGIC	 0x4652594dU /* "FRYM" */
#define MANIFEST_VERSION 1U
#define MANIFEST_MAX	 (16U << 20)
#define MANIFEST_HDR_LEN 12

typedef Ferry__Manifest manifest_t;

/* Allocate an empty manifest with a fresh random set id. */
manifest_t *manifest_new(const char *tenant_name, Ferry__TenantKind kind);
/* Free a manifest from manifest_new (deep) or manifest_decode/read. */
void manifest_free(manifest_t *m);

/* Hash every regular file under dir (recursively, except the manifest
 * itself and names in skip, NULL-terminated) and append it to m->files. */
int manifest_add_dir(manifest_t *m, const char *dir, const char *const *skip, ferr_t *err);
/* Append one file (path relative to dir). */
int manifest_add_file(manifest_t *m, const char *dir, const char *rel, ferr_t *err);
/* Helpers that own their strings (freed by manifest_free for built manifests). */
void manifest_set_str(char **field, const char *val);

int manifest_encode(const manifest_t *m, uint8_t **buf, size_t *len, ferr_t *err);
/* Checks magic, version (newer -> FX_INTEGRITY with a clear message), length. */
int manifest_decode(const uint8_t *buf, size_t len, manifest_t **m, ferr_t *err);
int manifest_write(const char *dir, const manifest_t *m, ferr_t *err);
int manifest_read(const char *dir, manifest_t **m, ferr_t *err);

/* Check every listed file's name (safe relative path), size and SHA-256.
 * Error names the first bad file. */
int manifest_verify_files(const char *dir, const manifest_t *m, ferr_t *err);
/* Total bytes of all listed files. */
uint64_t manifest_total_size(const manifest_t *m);
/* Find a file entry by name, or NULL. */
const Ferry__ImageFile *manifest_find(const manifest_t *m, const char *name);

#endif
