/* Where a receiver keeps image sets (documented in docs/transport.md), each
 * in the scope of the peer that sent it (the name in its certificate), so
 * that one peer's set never stands for another's:
 *   STATE/incoming/<peer>/<set_id>/  a set being received: files under their
 *                              manifest names, .ferry-manifest (the offered
 *                              manifest), .ferry-progress (durable progress)
 *   STATE/sets/<peer>/<set_id>/  complete, verified sets: the files and
 *                              manifest.ferry; renamed there in one step
 * Each file is hashed (SHA-256, store_hash_*) as it arrives and checked
 * against the manifest at its end; progress is recorded only after fdatasync, so a resumed transfer
 * continues from data that is really on disk. */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "proto/manifest.h"

struct store_set; /* opaque: one incoming set, used by one thread at a time */

#define STORE_PEER_MAX 253

/* A peer name usable as a directory name: letters, digits, '.', '_', ':', '-',
 * not starting with '.', up to STORE_PEER_MAX. */
bool store_peer_ok(const char *peer);
/* Path of a complete set (STATE/sets/<peer>/<id>) into buf. */
int store_set_path(const char *state, const char *peer, const char *set_id, char *buf, size_t len,
		   ferr_t *err);
/* 1 when peer's set set_id is here, stored with exactly the manifest bytes
 * mbuf; 0 when it is not here; FX_CONFLICT when it is, with another manifest. */
int store_have_set(const char *state, const char *peer, const char *set_id, const uint8_t *mbuf,
		   size_t mlen, ferr_t *err);

/* Open or create STATE/incoming/<peer>/<set_id> for manifest m (raw bytes
 * mbuf). Progress kept from an earlier attempt is reused when the manifest
 * is the same; otherwise the partial data is discarded. */
struct store_set *store_open(const char *state, const char *peer, const manifest_t *m,
			     const uint8_t *mbuf, size_t mlen, ferr_t *err);
/* Unfinished sets a peer may hold in incoming/ at once (store_open refuses a
 * new one beyond it, FX_CONFLICT). */
#define STORE_INCOMING_MAX 32
/* The rest of the set (what no file holds yet) fits in the free space of the
 * file system: FX_NOSPACE otherwise, before anything is received. */
int store_check_space(const struct store_set *s, ferr_t *err);
/* Durable offset of file i, and whether it is complete and verified. */
uint64_t store_offset(const struct store_set *s, size_t i);
bool store_complete(const struct store_set *s, size_t i);

/* Streaming SHA-256 of one incoming file, checked against the manifest at its
 * end. Independent of the writer's state (so another thread may hash while
 * the writer writes); a resumed file's first off bytes are re-read from disk. */
struct store_hash;
struct store_hash *store_hash_begin(const struct store_set *s, uint32_t i, uint64_t off,
				    ferr_t *err);
void store_hash_update(struct store_hash *h, const void *data, size_t len);
/* FX_INTEGRITY naming the file on a mismatch. Frees h. */
int store_hash_end(struct store_hash *h, ferr_t *err);
void store_hash_free(struct store_hash *h);

/* Start (or resume) file i at off, which must be its durable offset. */
int store_file_begin(struct store_set *s, uint32_t i, uint64_t off, ferr_t *err);
/* Append to the current file at off (must follow the previous write). A zero
 * chunk (all bytes 0) is not written: it stays a hole. */
int store_file_write(struct store_set *s, uint32_t i, uint64_t off, const void *data, size_t len,
		     bool zero, ferr_t *err);
/* Whole file received (its hash checked by store_hash_end): the size must
 * match the manifest; applies the mode, syncs, records it complete. */
int store_file_end(struct store_set *s, uint32_t i, uint64_t size, ferr_t *err);
/* fdatasync the current file and record progress; i and off get the durable point. */
int store_sync(struct store_set *s, uint32_t *i, uint64_t *off, ferr_t *err);
/* Every file complete: write manifest.ferry, rename into STATE/sets/<id>. */
int store_commit(struct store_set *s, ferr_t *err);
/* Close; with discard, remove STATE/incoming/<id> and everything in it. */
void store_close(struct store_set *s, bool discard);

/* Remove incoming sets untouched for more than max_age seconds (and peers'
 * directories left empty); returns how many were removed. */
int store_clean_stale(const char *state, int64_t max_age, ferr_t *err);

#endif
