/* Sealing of the snapshot store (docs/snapshots.md): the store's key, the
 * keyed names of chunks and the sealed form of every chunk and manifest.
 *
 * A key file holds one 32-byte master key (hex, mode 0600). Two keys derive
 * from it by HMAC-SHA-256: the encryption key (AES-256-GCM) and the id key
 * (names: HMAC-SHA-256 of a chunk's plain bytes, so that names reveal
 * nothing of the content to whoever lacks the key).
 *
 * Sealed form: "FSS1" | 12-byte nonce | AES-256-GCM(plain) | 16-byte tag,
 * where plain = u8 codec (0 raw, 1 LZ4) | u32 raw length (big-endian) |
 * data. The nonce is random (RAND_bytes) for every seal; the caller's
 * associated data (e.g. the chunk's name) binds a sealed blob to its place. */
#ifndef FERRY_SEAL_H
#define FERRY_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define SEAL_KEY_LEN   32
#define SEAL_ID_LEN    32
#define SEAL_MAGIC     "FSS1"
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN   16
#define SEAL_HDR_LEN   (4 + SEAL_NONCE_LEN)
#define SEAL_OVERHEAD  (SEAL_HDR_LEN + SEAL_TAG_LEN + 5)
#define SEAL_MAX       (64U << 20) /* largest plain blob (a manifest) */

struct seal_keys {
	uint8_t enc[SEAL_KEY_LEN];
	uint8_t id[SEAL_KEY_LEN];
};

/* A new random master key written to path (created exclusively, 0600). */
int seal_key_create(const char *path, ferr_t *err);
/* Read a key file: FX_NOTFOUND when missing, FX_USAGE when it is readable by
 * group or others or malformed. */
int seal_key_load(const char *path, struct seal_keys *k, ferr_t *err);
/* The keys a master key derives (for tests). */
void seal_keys_derive(const uint8_t master[SEAL_KEY_LEN], struct seal_keys *k);

/* HMAC-SHA-256 of data under the id key: a chunk's name. */
void seal_id(const struct seal_keys *k, const void *data, size_t len, uint8_t out[SEAL_ID_LEN]);
/* HMAC-SHA-256 under key of data (generic). */
void seal_hmac(const uint8_t *key, size_t klen, const void *data, size_t len,
	       uint8_t out[SEAL_ID_LEN]);

/* A thread's keyed contexts for the hot path (a stream's workers name every
 * 4 KiB page and seal the new ones; a restore opens and names every one): the id key's HMAC and the
 * encryption key's AES-256-GCM are keyed once here, so naming or sealing one chunk costs no key
 * setup (with the one-shot calls above, OpenSSL's fetch and key schedule were as much as the
 * hashing of 4 KiB). Same names and same sealed form as seal_id and seal_pack. One thread at a
 * time. */
struct seal_ctx;

struct seal_ctx *seal_ctx_new(const struct seal_keys *k, ferr_t *err);
void seal_ctx_free(struct seal_ctx *c);
/* seal_id through c. */
int seal_ctx_id(struct seal_ctx *c, const void *data, size_t len, uint8_t out[SEAL_ID_LEN],
		ferr_t *err);
/* seal_pack through c. */
int seal_ctx_pack(struct seal_ctx *c, const void *aad, size_t aadlen, const void *data, size_t len,
		  uint8_t *out, size_t *outlen, ferr_t *err);
/* seal_unpack through c. */
int seal_ctx_unpack(struct seal_ctx *c, const void *aad, size_t aadlen, const uint8_t *in,
		    size_t inlen, uint8_t **out, size_t *outlen, ferr_t *err);

/* Upper bound of the sealed size of len plain bytes. */
size_t seal_bound(size_t len);
/* Compress (when it pays) and encrypt data into out (seal_bound(len) bytes);
 * *outlen gets the sealed size. */
int seal_pack(const struct seal_keys *k, const void *aad, size_t aadlen, const void *data,
	      size_t len, uint8_t *out, size_t *outlen, ferr_t *err);
/* Authenticate, decrypt and decompress a sealed blob: *out (malloc'd) and
 * *outlen the plain bytes. FX_INTEGRITY when anything does not match (a
 * wrong key, a changed byte, another place's blob). */
int seal_unpack(const struct seal_keys *k, const void *aad, size_t aadlen, const uint8_t *in,
		size_t inlen, uint8_t **out, size_t *outlen, ferr_t *err);

#endif
