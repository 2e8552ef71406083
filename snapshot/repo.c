/* The snapshot store: init, open, lock, chunks, manifests (repo.h). */
#define LOG_PREFIX "repo"
#include "snapshot/repo.h"
#include "snapshot/repo_pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/util.h"

#define CONFIG_VERSION	 1
#define SNAPM_VERSION	 1
#define DEF_CDC_MIN	 (4U << 10)
#define DEF_CDC_AVG	 (16U << 10)
#define DEF_CDC_MAX	 (64U << 10)
#define DEF_PAGE_CHUNK	 (4U << 10)
#define KEY_CHECK_DOMAIN "ferry-store"

static int path_in(const struct repo *r, char *buf, size_t len, const char *rel, ferr_t *err)
{
	return xsnprintf_path(buf, len, r->dir, rel) < 0
		   ? ferr_set(err, FX_USAGE, "store path too long: %s/%s", r->dir, rel)
		   : 0;
}

static void key_check(const struct seal_keys *k, const uint8_t *sid, size_t n,
		      uint8_t out[SEAL_ID_LEN])
{
	uint8_t buf[64];

	memcpy(buf, KEY_CHECK_DOMAIN, sizeof(KEY_CHECK_DOMAIN) - 1);
	memcpy(buf + sizeof(KEY_CHECK_DOMAIN) - 1, sid, n);
	seal_id(k, buf, sizeof(KEY_CHECK_DOMAIN) - 1 + n, out);
}

static int write_config(const struct repo_init_opts *o, const struct seal_keys *k, ferr_t *err)
{
	FerrySnap__Config c = FERRY_SNAP__CONFIG__INIT;
	uint8_t sid[16], check[SEAL_ID_LEN], *buf;
	char path[4200];
	size_t len;
	int rc;

	if (RAND_bytes(sid, sizeof(sid)) != 1)
		return ferr_set(err, FX_FAIL, "no random bytes");
	key_check(k, sid, sizeof(sid), check);
	c.version = CONFIG_VERSION;
	c.store_id = (ProtobufCBinaryData){sizeof(sid), sid};
	c.key_check = (ProtobufCBinaryData){sizeof(check), check};
	c.has_cdc_min = c.has_cdc_avg = c.has_cdc_max = c.has_page_chunk = 1;
	c.cdc_min = o->cdc_min ? o->cdc_min : DEF_CDC_MIN;
	c.cdc_avg = o->cdc_avg ? o->cdc_avg : DEF_CDC_AVG;
	c.cdc_max = o->cdc_max ? o->cdc_max : DEF_CDC_MAX;
	c.page_chunk = o->page_chunk ? o->page_chunk : DEF_PAGE_CHUNK;
	len = ferry_snap__config__get_packed_size(&c);
	if (!(buf = malloc(len)))
		return ferr_set(err, FX_FAIL, "out of memory");
	ferry_snap__config__pack(&c, buf);
	snprintf(path, sizeof(path), "%s/config", o->dir);
	rc = fs_write_atomic(path, buf, len, 0600, err);
	free(buf);
	return rc;
}

int repo_init(const struct repo_init_opts *o, ferr_t *err)
{
	static const char *const sub[] = {"chunks", "snapshots", "tmp"};
	struct seal_keys k;
	char path[4200];

	snprintf(path, sizeof(path), "%s/config", o->dir);
	if (access(path, F_OK) == 0)
		return ferr_set(err, FX_CONFLICT, "%s is a snapshot store already", o->dir);
	if (o->new_key && seal_key_create(o->key_file, err) < 0)
		return ferr_wrap(err, "new key");
	if (seal_key_load(o->key_file, &k, err) < 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", o->dir, sub[i]);
		if (fs_mkdir_p(path, 0700, err) < 0)
			return -1;
	}
	if (chmod(o->dir, 0700) < 0)
		return ferr_sys(err, FX_FAIL, "chmod %s", o->dir);
	{
		struct cdc c;
		if (cdc_init(&c, o->cdc_min ? o->cdc_min : DEF_CDC_MIN,
			     o->cdc_avg ? o->cdc_avg : DEF_CDC_AVG,
			     o->cdc_max ? o->cdc_max : DEF_CDC_MAX, NULL, 0, err) < 0)
			return -1;
	}
	return write_config(o, &k, err);
}

static int read_config(struct repo *r, FerrySnap__Config **c, ferr_t *err)
{
	char path[4200], *buf;
	size_t len;

	if (path_in(r, path, sizeof(path), "config", err) < 0)
		return -1;
	if (access(path, F_OK) < 0)
		return ferr_set(err, FX_NOTFOUND, "no snapshot store at %s (`ferry snapshot init`)",
				r->dir);
	if (fs_read_all(path, &buf, &len, 1 << 16, err) < 0)
		return -1;
	*c = ferry_snap__config__unpack(NULL, len, (uint8_t *)buf);
	free(buf);
	if (!*c || (*c)->version != CONFIG_VERSION || (*c)->store_id.len > 32)
		return ferr_set(err, FX_INTEGRITY, "%s: unreadable store config", path);
	return 0;
}

int repo_open(struct repo *r, const char *dir, const char *key_file, ferr_t *err)
{
	FerrySnap__Config *c = NULL;
	uint8_t check[SEAL_ID_LEN];
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->lock_fd = -1;
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	if (read_config(r, &c, err) < 0)
		goto out;
	if (seal_key_load(key_file, &r->keys, err) < 0)
		goto out;
	key_check(&r->keys, c->store_id.data, c->store_id.len, check);
	if (c->key_check.len != SEAL_ID_LEN ||
	    CRYPTO_memcmp(check, c->key_check.data, SEAL_ID_LEN)) {
		ferr_set(err, FX_INTEGRITY, "the key %s does not open the store %s", key_file, dir);
		goto out;
	}
	r->page_chunk = c->page_chunk ? c->page_chunk : DEF_PAGE_CHUNK;
	/* the gear table derives from the id key: cut points reveal nothing */
	rc = cdc_init(&r->cdc, c->cdc_min, c->cdc_avg, c->cdc_max, r->keys.id, sizeof(r->keys.id),
		      err);
out:
	if (c)
		ferry_snap__config__free_unpacked(c, NULL);
	if (rc < 0)
		OPENSSL_cleanse(&r->keys, sizeof(r->keys));
	return rc;
}

void repo_close(struct repo *r)
{
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	r->lock_fd = -1;
	repo_packs_free(r);
	seal_ctx_free(r->rd);
	r->rd = NULL;
	OPENSSL_cleanse(&r->keys, sizeof(r->keys));
}

int repo_lock_manifests(struct repo *r, bool exclusive, ferr_t *err)
{
	char path[4200];

	if (r->lock_fd < 0) {
		if (path_in(r, path, sizeof(path), "lock", err) < 0)
			return -1;
		r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (r->lock_fd < 0)
			return ferr_sys(err, FX_FAIL, "open %s", path);
	}
	while (flock(r->lock_fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
		if (errno != EINTR)
			return ferr_sys(err, FX_FAIL, "lock %s", r->dir);
	return 0;
}

int repo_lock(struct repo *r, bool exclusive, ferr_t *err)
{
	if (repo_lock_manifests(r, exclusive, err) < 0)
		return -1;
	return repo_packs_load(r, err);
}

static void chunk_path(const struct repo *r, const uint8_t id[SEAL_ID_LEN], char *buf, size_t len)
{
	char hex[2 * SEAL_ID_LEN + 1];

	hex_encode(id, SEAL_ID_LEN, hex);
	snprintf(buf, len, "%s/chunks/%.2s/%s", r->dir, hex, hex);
}

/* Write data to a fresh file in tmp/ then link it to path (never replacing
 * what is there). 1 when written, 0 when path existed. */
static int write_new(struct repo *r, const char *path, const void *data, size_t len, ferr_t *err)
{
	char tmp[4200];
	int fd, rc = 1;

	snprintf(tmp, sizeof(tmp), "%s/tmp/c-XXXXXX", r->dir);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return ferr_sys(err, FX_FAIL, "temporary file in %s/tmp", r->dir);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const uint8_t *)data + off, len - off);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			if (w == 0)
				errno = ENOSPC;
			rc = ferr_sys(err, FX_FAIL, "writing a chunk to %s", r->dir);
			break;
		}
		off += (size_t)w;
	}
	close(fd);
	if (rc > 0 && link(tmp, path) < 0) {
		if (errno == ENOENT) {
			char dir[4200];
			snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(path, '/') - path), path);
			if (mkdir(dir, 0700) < 0 && errno != EEXIST)
				rc = ferr_sys(err, FX_FAIL, "mkdir %s", dir);
			else if (link(tmp, path) < 0 && errno != EEXIST)
				rc = ferr_sys(err, FX_FAIL, "link %s", path);
			else if (errno == EEXIST)
				rc = 0;
		} else if (errno == EEXIST) {
			rc = 0;
		} else {
			rc = ferr_sys(err, FX_FAIL, "link %s", path);
		}
	}
	unlink(tmp);
	return rc;
}

int repo_put_chunk_named(struct repo *r, const void *data, size_t len,
			 const uint8_t id[SEAL_ID_LEN], bool known, struct repo_stats *st,
			 ferr_t *err)
{
	char path[4200];
	uint8_t *sealed;
	size_t slen;
	int rc;

	st->chunks++;
	st->size += len;
	chunk_path(r, id, path, sizeof(path));
	/* a chunk the parent names is looked at all the same: one gone
	 * missing is written again instead of breaking every later snapshot */
	if (access(path, F_OK) == 0 || repo_pack_find(r, id))
		return 0;
	if (known)
		pr_warn("chunk %s named by the parent snapshot was missing: written again",
			strrchr(path, '/') + 1);
	if (!(sealed = malloc(seal_bound(len))))
		return ferr_set(err, FX_FAIL, "out of memory");
	rc = seal_pack(&r->keys, id, SEAL_ID_LEN, data, len, sealed, &slen, err);
	if (rc == 0)
		rc = write_new(r, path, sealed, slen, err);
	free(sealed);
	if (rc > 0) {
		st->added += slen;
		st->added_ch++;
	}
	return rc < 0 ? -1 : 0;
}

int repo_put_chunk(struct repo *r, const void *data, size_t len, uint8_t id[SEAL_ID_LEN],
		   struct repo_stats *st, ferr_t *err)
{
	seal_id(&r->keys, data, len, id);
	return repo_put_chunk_named(r, data, len, id, false, st, err);
}

/* A packed chunk: its pack is there and long enough. */
static int pack_has(struct repo *r, const struct pack_ent *e, ferr_t *err)
{
	uint8_t *buf;
	size_t len;

	if (repo_pack_read(r, e, &buf, &len, err) < 0)
		return -1;
	free(buf);
	return 0;
}

int repo_has_chunk(struct repo *r, const uint8_t id[SEAL_ID_LEN], ferr_t *err)
{
	char path[4200];
	struct stat s;

	chunk_path(r, id, path, sizeof(path));
	if (stat(path, &s) < 0 && errno == ENOENT && repo_pack_find(r, id))
		return pack_has(r, repo_pack_find(r, id), err);
	if (stat(path, &s) < 0)
		return ferr_set(err, errno == ENOENT ? FX_INTEGRITY : FX_FAIL, "chunk %s %s",
				strrchr(path, '/') + 1,
				errno == ENOENT ? "is missing" : "unreadable");
	if (s.st_size < SEAL_HDR_LEN + SEAL_TAG_LEN + 5)
		return ferr_set(err, FX_INTEGRITY, "chunk %s is truncated", strrchr(path, '/') + 1);
	return 0;
}

int repo_get_chunk(struct repo *r, const uint8_t id[SEAL_ID_LEN], uint32_t len, uint8_t **data,
		   ferr_t *err)
{
	char path[4200], *buf;
	uint8_t check[SEAL_ID_LEN];
	size_t blen, plen;

	if (!r->rd && !(r->rd = seal_ctx_new(&r->keys, err)))
		return -1;
	if (repo_get_sealed_chunk(r, id, (uint8_t **)&buf, &blen, err) < 0)
		return -1;
	chunk_path(r, id, path, sizeof(path));
	if (seal_ctx_unpack(r->rd, id, SEAL_ID_LEN, (uint8_t *)buf, blen, data, &plen, err) < 0) {
		free(buf);
		return ferr_wrap(err, "chunk %s", strrchr(path, '/') + 1);
	}
	free(buf);
	if (seal_ctx_id(r->rd, *data, plen, check, err) < 0) {
		free(*data);
		*data = NULL;
		return -1;
	}
	if (plen != len || memcmp(check, id, SEAL_ID_LEN)) {
		free(*data);
		*data = NULL;
		return ferr_set(err, FX_INTEGRITY, "chunk %s: content does not match its name",
				strrchr(path, '/') + 1);
	}
	return 0;
}

int repo_tmpdir(struct repo *r, const char *prefix, char *out, size_t len, ferr_t *err)
{
	if (xsnprintf(out, len, err, "%s/tmp/%s-XXXXXX", r->dir, prefix) < 0)
		return -1;
	if (!mkdtemp(out))
		return ferr_sys(err, FX_FAIL, "mkdtemp in %s/tmp", r->dir);
	return 0;
}

void repo_key_proof(const struct repo *r, uint8_t out[SEAL_ID_LEN])
{
	seal_id(&r->keys, "ferry-store-key-proof", 21, out);
}

int repo_get_sealed_chunk(struct repo *r, const uint8_t id[SEAL_ID_LEN], uint8_t **buf, size_t *len,
			  ferr_t *err)
{
	char path[4200];

	const struct pack_ent *e;

	/* a packed chunk is read once (repo_has_chunk would read it to check
	 * it is there, then again here) */
	chunk_path(r, id, path, sizeof(path));
	if (access(path, F_OK) < 0 && errno == ENOENT && (e = repo_pack_find(r, id)))
		return repo_pack_read(r, e, buf, len, err);
	if (repo_has_chunk(r, id, err) < 0)
		return -1;
	return fs_read_all(path, (char **)buf, len, SEAL_MAX + SEAL_OVERHEAD + 1024, err);
}

bool repo_chunk_exists(struct repo *r, const uint8_t id[SEAL_ID_LEN])
{
	char path[4200];

	/* the packs' index first (memory): most chunks a snapshot names are
	 * packed, and a loose file's lookup is a system call per chunk */
	if (repo_pack_find(r, id))
		return true;
	chunk_path(r, id, path, sizeof(path));
	return access(path, F_OK) == 0;
}

int repo_write_loose(struct repo *r, const uint8_t id[SEAL_ID_LEN], const void *sealed, size_t len,
		     ferr_t *err)
{
	char path[4200];

	chunk_path(r, id, path, sizeof(path));
	return write_new(r, path, sealed, len, err);
}

int repo_put_chunk_packed(struct repo *r, struct seal_ctx *sc, const void *data, size_t len,
			  const uint8_t id[SEAL_ID_LEN], struct pack_writer *w,
			  struct repo_stats *st, ferr_t *err)
{
	uint8_t *sealed;
	size_t slen;
	int rc;

	if (!(sealed = malloc(seal_bound(len))))
		return ferr_set(err, FX_FAIL, "out of memory");
	rc = seal_ctx_pack(sc, id, SEAL_ID_LEN, data, len, sealed, &slen, err);
	if (rc == 0)
		rc = pack_put(r, w, id, sealed, slen, err);
	free(sealed);
	if (rc == 0) {
		st->added += slen;
		st->added_ch++;
	}
	return rc;
}

int repo_put_sealed_chunk(struct repo *r, const uint8_t id[SEAL_ID_LEN], const uint8_t *buf,
			  size_t len, ferr_t *err)
{
	char path[4200];
	uint8_t check[SEAL_ID_LEN], *plain;
	size_t plen;

	chunk_path(r, id, path, sizeof(path));
	if (access(path, F_OK) == 0 || repo_pack_find(r, id))
		return 0;
	if (seal_unpack(&r->keys, id, SEAL_ID_LEN, buf, len, &plain, &plen, err) < 0)
		return ferr_wrap(err, "chunk %s", strrchr(path, '/') + 1);
	seal_id(&r->keys, plain, plen, check);
	free(plain);
	if (memcmp(check, id, SEAL_ID_LEN))
		return ferr_set(err, FX_INTEGRITY, "chunk %s: content does not match its name",
				strrchr(path, '/') + 1);
	return write_new(r, path, buf, len, err);
}
