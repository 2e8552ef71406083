/* The snapshot store (docs/snapshots.md): a directory of sealed,
 * content-addressed chunks and one sealed manifest per snapshot.
 *
 *   STORE/config              plain: store id, key check, chunking sizes
 *   STORE/lock                flock: shared by create, restore, verify, list;
 *                             exclusive by rm, prune, gc
 *   STORE/chunks/XX/<name>    one sealed chunk, <name> = hex HMAC-SHA-256 of
 *                             its plain bytes under the store's id key; made
 *                             by link() from tmp/, so never written twice
 *   STORE/snapshots/<id>      a sealed manifest (proto/snapshot.proto),
 *                             written last and atomically (rename)
 *   STORE/tmp/                chunks being written, staged images of a
 *                             snapshot being taken or restored
 *
 * A crash or a full disk mid-snapshot leaves chunks no manifest names (gc
 * removes them) and never a manifest naming a missing chunk. */
#ifndef FERRY_REPO_H
#define FERRY_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "proto/snapshot.pb-c.h"
#include "snapshot/chunk.h"
#include "snapshot/seal.h"

#define REPO_ID_LEN 16 /* hex characters of a snapshot id */

typedef FerrySnap__Manifest snapm_t;

struct repo {
	char dir[4096];
	struct seal_keys keys;
	struct cdc cdc;
	uint32_t page_chunk;
	int lock_fd;
	struct packidx *packs; /* the packs' indexes (repo_pack.h), from repo_lock */
	struct seal_ctx *rd;   /* repo_get_chunk's keyed contexts (made on first use) */
};

struct repo_init_opts {
	const char *dir;
	const char *key_file;
	bool new_key; /* create key_file (it must not exist) */
	uint32_t cdc_min, cdc_avg, cdc_max, page_chunk;
};

int repo_init(const struct repo_init_opts *o, ferr_t *err);
/* Open a store with its key: FX_NOTFOUND when there is none, FX_INTEGRITY
 * when the key is not this store's. */
int repo_open(struct repo *r, const char *dir, const char *key_file, ferr_t *err);
void repo_close(struct repo *r);
/* flock the store: shared or exclusive, waiting; then read every pack's
 * index (repo_pack.h), which every chunk lookup needs. */
int repo_lock(struct repo *r, bool exclusive, ferr_t *err);
/* The same lock without the packs' indexes, for what reads or removes
 * manifests only (list, show, rm): the indexes grow with the store (44 bytes
 * a chunk on disk, ~60 in memory: 0.14 s and 55 MB for a million chunks).
 * A chunk lookup after it finds no packed chunk. */
int repo_lock_manifests(struct repo *r, bool exclusive, ferr_t *err);

/* Bytes and chunks a snapshot added to the store. */
struct repo_stats {
	uint64_t size;	   /* plain bytes of its files */
	uint64_t added;	   /* sealed bytes written */
	uint32_t chunks;   /* chunk references */
	uint32_t added_ch; /* chunks written */
};

/* Store one chunk (nothing when it is there already): id gets its name. */
int repo_put_chunk(struct repo *r, const void *data, size_t len, uint8_t id[SEAL_ID_LEN],
		   struct repo_stats *st, ferr_t *err);
/* The same with its name computed (seal_id) by the caller; known: a parent
 * snapshot names it (it is still looked for: one gone missing is written
 * again, with a warning). Thread-safe. */
int repo_put_chunk_named(struct repo *r, const void *data, size_t len,
			 const uint8_t id[SEAL_ID_LEN], bool known, struct repo_stats *st,
			 ferr_t *err);
/* A loose chunk file or a pack entry of that name exists. Thread-safe. */
bool repo_chunk_exists(struct repo *r, const uint8_t id[SEAL_ID_LEN]);
struct pack_writer;
/* A new chunk (the caller found it in neither a loose file nor a pack)
 * sealed through the caller's thread's sc (seal_ctx_new with r's keys) into
 * the writer's pack (repo_pack.h); counted as added. */
int repo_put_chunk_packed(struct repo *r, struct seal_ctx *sc, const void *data, size_t len,
			  const uint8_t id[SEAL_ID_LEN], struct pack_writer *w,
			  struct repo_stats *st, ferr_t *err);
/* Write a sealed chunk as a loose file (nothing when that file exists):
 * 1 written, 0 there. */
int repo_write_loose(struct repo *r, const uint8_t id[SEAL_ID_LEN], const void *sealed, size_t len,
		     ferr_t *err);
/* Read, authenticate, decompress and check one chunk against its name.
 * One thread at a time per struct repo (its keyed contexts are r's). */
int repo_get_chunk(struct repo *r, const uint8_t id[SEAL_ID_LEN], uint32_t len, uint8_t **data,
		   ferr_t *err);
/* A chunk's file, present and plausible (no decryption). */
int repo_has_chunk(struct repo *r, const uint8_t id[SEAL_ID_LEN], ferr_t *err);

/* A new manifest (built: free with snapm_free_built). */
snapm_t *snapm_new(const char *tenant, const char *kind);
void snapm_free_built(snapm_t *m);
void snapm_free(snapm_t *m); /* one read by repo_read_manifest */
/* Store every file of dir (recursively) as part of m: CRIU's pages images
 * cut by their pagemaps, the rest by content-defined chunking. */
int repo_add_dir(struct repo *r, snapm_t *m, const char *dir, FerrySnap__FilePart part,
		 struct repo_stats *st, ferr_t *err);
/* syncfs, then seal m into snapshots/<m->id> atomically. */
int repo_write_manifest(struct repo *r, const snapm_t *m, ferr_t *err);
int repo_read_manifest(struct repo *r, const char *id, snapm_t **m, ferr_t *err);
/* Every snapshot id (sorted), *ids malloc'd (free each and the array). */
int repo_list_ids(struct repo *r, char ***ids, size_t *n, ferr_t *err);
/* A full id from a unique prefix: FX_NOTFOUND, FX_USAGE when ambiguous. */
int repo_resolve(struct repo *r, const char *prefix, char out[REPO_ID_LEN + 1], ferr_t *err);
/* Remove a snapshot's manifest (its chunks stay until gc). */
int repo_remove(struct repo *r, const char *id, ferr_t *err);

/* Write m's files of part under dir (which exists), every chunk checked
 * and every file's SHA-256: FX_INTEGRITY naming the file otherwise. */
int repo_extract(struct repo *r, const snapm_t *m, FerrySnap__FilePart part, const char *dir,
		 ferr_t *err);

/* One broken file of a snapshot, reported by repo_verify. */
typedef void (*repo_bad_fn)(const snapm_t *m, const char *path, const char *why, void *arg);
struct idset;
struct idset *idset_new(void);
void idset_free(struct idset *s);
bool idset_has(const struct idset *s, const uint8_t *id);
int idset_add(struct idset *s, const uint8_t *id); /* -1: out of memory */
/* Check m: every chunk present (read_data: decrypted, authenticated, its
 * name checked). done: chunks already found good (shared between calls).
 * Returns the number of broken files (each reported), < 0 on error. */
int repo_verify(struct repo *r, const snapm_t *m, bool read_data, struct idset *done,
		repo_bad_fn bad, void *arg, ferr_t *err);

struct repo_gc_stats {
	uint64_t chunks, removed, removed_bytes, tmp_removed;
};
/* Remove chunks no manifest names and leftovers in tmp/ (the caller holds
 * the exclusive lock). Refuses when a manifest cannot be read. */
int repo_gc(struct repo *r, struct repo_gc_stats *st, ferr_t *err);

/* ---- copying snapshots between stores that share a key (restore --to) ---- */

/* HMAC of a fixed text under the id key: equal in two stores only when
 * they have the same key (reveals nothing else). */
void repo_key_proof(const struct repo *r, uint8_t out[SEAL_ID_LEN]);
/* A chunk's or a manifest's sealed bytes as stored (*buf malloc'd). */
int repo_get_sealed_chunk(struct repo *r, const uint8_t id[SEAL_ID_LEN], uint8_t **buf, size_t *len,
			  ferr_t *err);
int repo_get_sealed_manifest(struct repo *r, const char *id, uint8_t **buf, size_t *len,
			     ferr_t *err);
/* Store a sealed chunk from elsewhere: it must open under this store's key
 * and match its name (FX_INTEGRITY); nothing when it is there already.
 * Returns 1 when written. */
int repo_put_sealed_chunk(struct repo *r, const uint8_t id[SEAL_ID_LEN], const uint8_t *buf,
			  size_t len, ferr_t *err);
/* Open a sealed manifest from elsewhere (*m: free with snapm_free) and,
 * with write, store it (after syncfs) as snapshots/<id>. */
int repo_open_sealed_manifest(struct repo *r, const char *id, const uint8_t *buf, size_t len,
			      snapm_t **m, ferr_t *err);
int repo_put_sealed_manifest(struct repo *r, const char *id, const uint8_t *buf, size_t len,
			     ferr_t *err);

/* A fresh directory under STORE/tmp (prefix-XXXXXX) into out. */
int repo_tmpdir(struct repo *r, const char *prefix, char *out, size_t len, ferr_t *err);

#endif
