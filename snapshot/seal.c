/* Sealing: keys, keyed names, AES-256-GCM + LZ4 blobs (seal.h). */
#include "snapshot/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/be.h"
#include "lib/fsutil.h"
#include "lib/hash.h"

#define KEY_HEADER "ferry-snapshot-key-v1 "

void seal_hmac(const uint8_t *key, size_t klen, const void *data, size_t len,
	       uint8_t out[SEAL_ID_LEN])
{
	unsigned int olen = SEAL_ID_LEN;

	HMAC(EVP_sha256(), key, (int)klen, data, len, out, &olen);
}

void seal_keys_derive(const uint8_t master[SEAL_KEY_LEN], struct seal_keys *k)
{
	seal_hmac(master, SEAL_KEY_LEN, "ferry snapshot encryption", 25, k->enc);
	seal_hmac(master, SEAL_KEY_LEN, "ferry snapshot names", 20, k->id);
}

void seal_id(const struct seal_keys *k, const void *data, size_t len, uint8_t out[SEAL_ID_LEN])
{
	seal_hmac(k->id, sizeof(k->id), data, len, out);
}

int seal_key_create(const char *path, ferr_t *err)
{
	uint8_t master[SEAL_KEY_LEN];
	char line[sizeof(KEY_HEADER) + 2 * SEAL_KEY_LEN + 2];
	size_t n;
	int fd;

	if (RAND_bytes(master, sizeof(master)) != 1)
		return ferr_set(err, FX_FAIL, "no random bytes for a key");
	memcpy(line, KEY_HEADER, sizeof(KEY_HEADER) - 1);
	hex_encode(master, sizeof(master), line + sizeof(KEY_HEADER) - 1);
	n = strlen(line);
	line[n++] = '\n';
	OPENSSL_cleanse(master, sizeof(master));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ferr_sys(err, errno == EEXIST ? FX_CONFLICT : FX_FAIL, "key file %s", path);
	if (fchmod(fd, 0600) < 0 || write(fd, line, n) != (ssize_t)n || fsync(fd) < 0) {
		ferr_sys(err, FX_FAIL, "writing key file %s", path);
		close(fd);
		unlink(path);
		return -1;
	}
	OPENSSL_cleanse(line, sizeof(line));
	close(fd);
	return 0;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

int seal_key_load(const char *path, struct seal_keys *k, ferr_t *err)
{
	uint8_t master[SEAL_KEY_LEN];
	struct stat st;
	char *buf = NULL;
	size_t len;
	size_t hl = sizeof(KEY_HEADER) - 1;

	if (stat(path, &st) < 0)
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "key file %s", path);
	if (st.st_mode & 077)
		return ferr_set(err, FX_USAGE,
				"key file %s is readable by others (mode %03o): chmod 600 it", path,
				(unsigned)(st.st_mode & 0777));
	if (fs_read_all(path, &buf, &len, 4096, err) < 0)
		return -1;
	if (len < hl + 2 * SEAL_KEY_LEN || memcmp(buf, KEY_HEADER, hl) ||
	    unhex(buf + hl, master, SEAL_KEY_LEN) < 0) {
		free(buf);
		return ferr_set(err, FX_USAGE, "%s is not a ferry snapshot key file", path);
	}
	OPENSSL_cleanse(buf, len);
	free(buf);
	seal_keys_derive(master, k);
	OPENSSL_cleanse(master, sizeof(master));
	return 0;
}

size_t seal_bound(size_t len)
{
	size_t b = (size_t)LZ4_compressBound((int)len);

	return (b > len ? b : len) + SEAL_OVERHEAD;
}

/* AES-256-GCM of in (n bytes) into out, tag after it; c: a context keyed
 * with k->enc by seal_ctx_new (only the nonce is set here), or NULL for a
 * one-shot context. */
static int gcm(EVP_CIPHER_CTX *c, bool enc, const struct seal_keys *k, const uint8_t *nonce,
	       const void *aad, size_t aadlen, const uint8_t *in, size_t n, uint8_t *out,
	       uint8_t *tag)
{
	EVP_CIPHER_CTX *own = c ? NULL : EVP_CIPHER_CTX_new();
	int l = 0, ok;

	if (!c && !(c = own))
		return -1;
	if (own)
		ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
		     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN, NULL) == 1 &&
		     EVP_CipherInit_ex(c, NULL, NULL, k->enc, nonce, enc) == 1;
	else /* the key and its schedule stay; a new nonce restarts GCM */
		ok = EVP_CipherInit_ex(c, NULL, NULL, NULL, nonce, enc) == 1;
	ok = ok && (!aadlen || EVP_CipherUpdate(c, NULL, &l, aad, (int)aadlen) == 1) &&
	     EVP_CipherUpdate(c, out, &l, in, (int)n) == 1;
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) == 1;
	ok = ok && EVP_CipherFinal_ex(c, out + l, &l) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(own);
	return ok ? 0 : -1;
}

static int pack_with(EVP_CIPHER_CTX *c, const struct seal_keys *k, const void *aad, size_t aadlen,
		     const void *data, size_t len, uint8_t *out, size_t *outlen, ferr_t *err)
{
	size_t cap = seal_bound(len) - SEAL_OVERHEAD;
	uint8_t *plain = malloc(cap + 5);
	int z;

	if (!plain || len > SEAL_MAX)
		return free(plain), ferr_set(err, FX_FAIL, "cannot seal %zu bytes", len);
	z = LZ4_compress_default(data, (char *)plain + 5, (int)len, (int)cap);
	if (z > 0 && (size_t)z < len) {
		plain[0] = 1;
	} else {
		plain[0] = 0;
		memcpy(plain + 5, data, len);
		z = (int)len;
	}
	be32_put(plain + 1, (uint32_t)len);
	memcpy(out, SEAL_MAGIC, 4);
	if (RAND_bytes(out + 4, SEAL_NONCE_LEN) != 1 ||
	    gcm(c, true, k, out + 4, aad, aadlen, plain, (size_t)z + 5, out + SEAL_HDR_LEN,
		out + SEAL_HDR_LEN + z + 5) < 0) {
		free(plain);
		return ferr_set(err, FX_FAIL, "encryption failed");
	}
	free(plain);
	*outlen = SEAL_HDR_LEN + (size_t)z + 5 + SEAL_TAG_LEN;
	return 0;
}

int seal_pack(const struct seal_keys *k, const void *aad, size_t aadlen, const void *data,
	      size_t len, uint8_t *out, size_t *outlen, ferr_t *err)
{
	return pack_with(NULL, k, aad, aadlen, data, len, out, outlen, err);
}

static int decode_plain(const uint8_t *plain, size_t n, uint8_t **out, size_t *outlen, ferr_t *err)
{
	uint32_t raw = be32_get(plain + 1);
	uint8_t *o;

	if (raw > SEAL_MAX || plain[0] > 1 || (plain[0] == 0 && raw != n - 5))
		return ferr_set(err, FX_INTEGRITY, "sealed blob has a bad header");
	o = malloc(raw ? raw : 1);
	if (!o)
		return ferr_set(err, FX_FAIL, "out of memory");
	if (plain[0] == 0)
		memcpy(o, plain + 5, raw);
	else if (LZ4_decompress_safe((const char *)plain + 5, (char *)o, (int)(n - 5), (int)raw) !=
		 (int)raw) {
		free(o);
		return ferr_set(err, FX_INTEGRITY, "sealed blob does not decompress");
	}
	*out = o;
	*outlen = raw;
	return 0;
}

static int unpack_with(EVP_CIPHER_CTX *c, const struct seal_keys *k, const void *aad, size_t aadlen,
		       const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen, ferr_t *err)
{
	size_t n;
	uint8_t *plain;
	int rc;

	if (inlen < SEAL_HDR_LEN + SEAL_TAG_LEN + 5 || memcmp(in, SEAL_MAGIC, 4))
		return ferr_set(err, FX_INTEGRITY, "not a sealed blob (%zu bytes)", inlen);
	n = inlen - SEAL_HDR_LEN - SEAL_TAG_LEN;
	if (n > SEAL_MAX + 5)
		return ferr_set(err, FX_INTEGRITY, "sealed blob too large");
	plain = malloc(n);
	if (!plain)
		return ferr_set(err, FX_FAIL, "out of memory");
	if (gcm(c, false, k, in + 4, aad, aadlen, in + SEAL_HDR_LEN, n, plain,
		(uint8_t *)(uintptr_t)(in + SEAL_HDR_LEN + n)) < 0) {
		free(plain);
		return ferr_set(err, FX_INTEGRITY,
				"does not authenticate (changed, or another key's)");
	}
	rc = decode_plain(plain, n, out, outlen, err);
	free(plain);
	return rc;
}

int seal_unpack(const struct seal_keys *k, const void *aad, size_t aadlen, const uint8_t *in,
		size_t inlen, uint8_t **out, size_t *outlen, ferr_t *err)
{
	return unpack_with(NULL, k, aad, aadlen, in, inlen, out, outlen, err);
}

struct seal_ctx {
	EVP_MAC_CTX *mac;     /* HMAC-SHA-256 keyed with the id key */
	EVP_CIPHER_CTX *ciph; /* AES-256-GCM keyed with the encryption key */
	EVP_CIPHER_CTX *dec;  /* the same, decrypting */
};

static EVP_CIPHER_CTX *keyed_gcm(const struct seal_keys *k, int enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

	if (c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN, NULL) == 1 &&
	    EVP_CipherInit_ex(c, NULL, NULL, k->enc, NULL, enc) == 1)
		return c;
	EVP_CIPHER_CTX_free(c);
	return NULL;
}

struct seal_ctx *seal_ctx_new(const struct seal_keys *k, ferr_t *err)
{
	struct seal_ctx *c = calloc(1, sizeof(*c));
	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
			  OSSL_PARAM_construct_end()};
	bool ok = c && hmac && (c->mac = EVP_MAC_CTX_new(hmac)) &&
		  EVP_MAC_init(c->mac, k->id, sizeof(k->id), p) == 1 &&
		  (c->ciph = keyed_gcm(k, 1)) && (c->dec = keyed_gcm(k, 0));

	EVP_MAC_free(hmac); /* the context holds its own reference */
	if (!ok) {
		seal_ctx_free(c);
		ferr_set(err, FX_FAIL, "cannot set up HMAC-SHA-256 and AES-256-GCM");
		return NULL;
	}
	return c;
}

void seal_ctx_free(struct seal_ctx *c)
{
	if (!c)
		return;
	EVP_MAC_CTX_free(c->mac);
	EVP_CIPHER_CTX_free(c->ciph);
	EVP_CIPHER_CTX_free(c->dec);
	free(c);
}

int seal_ctx_id(struct seal_ctx *c, const void *data, size_t len, uint8_t out[SEAL_ID_LEN],
		ferr_t *err)
{
	size_t olen = 0;

	/* a NULL key re-initialises with the key already set (life_cycle-mac(7):
	 * finaled -> initialised): no fetch, no key hashing */
	if (EVP_MAC_init(c->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(c->mac, data, len) != 1 ||
	    EVP_MAC_final(c->mac, out, &olen, SEAL_ID_LEN) != 1 || olen != SEAL_ID_LEN)
		return ferr_set(err, FX_FAIL, "HMAC-SHA-256 failed");
	return 0;
}

int seal_ctx_pack(struct seal_ctx *c, const void *aad, size_t aadlen, const void *data, size_t len,
		  uint8_t *out, size_t *outlen, ferr_t *err)
{
	return pack_with(c->ciph, NULL, aad, aadlen, data, len, out, outlen, err);
}

int seal_ctx_unpack(struct seal_ctx *c, const void *aad, size_t aadlen, const uint8_t *in,
		    size_t inlen, uint8_t **out, size_t *outlen, ferr_t *err)
{
	return unpack_with(c->dec, NULL, aad, aadlen, in, inlen, out, outlen, err);
}
