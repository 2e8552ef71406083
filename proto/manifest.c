/* Manifest coding. Built manifests are allocated entirely with malloc so that
 * protobuf_c_message_free_unpacked() frees built and decoded ones alike. */
#include "proto/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/be.h"
#include "lib/fsutil.h"
#include "lib/hash.h"
#include "lib/util.h"

void manifest_set_str(char **field, const char *val)
{
	free(*field);
	*field = val ? strdup(val) : NULL;
}

manifest_t *manifest_new(const char *tenant_name, Ferry__TenantKind kind)
{
	manifest_t *m = malloc(sizeof(*m));
	uint8_t id[16];
	char hex[33];

	if (!m)
		return NULL;
	ferry__manifest__init(m);
	if (RAND_bytes(id, sizeof(id)) != 1) {
		free(m);
		return NULL;
	}
	hex_encode(id, sizeof(id), hex);
	m->set_id = strdup(hex);
	m->tenant_name = strdup(tenant_name ? tenant_name : "");
	m->kind = kind;
	return m;
}

void manifest_free(manifest_t *m)
{
	if (m)
		protobuf_c_message_free_unpacked(&m->base, NULL);
}

int manifest_add_file(manifest_t *m, const char *dir, const char *rel, ferr_t *err)
{
	char path[PATH_MAX];
	uint8_t digest[SHA256_LEN];
	uint64_t size;
	struct stat st;
	Ferry__ImageFile *f, **nf;

	if (xsnprintf_path(path, sizeof(path), dir, rel) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s/%s", dir, rel);
	if (stat(path, &st) < 0)
		return ferr_sys(err, FX_NOTFOUND, "stat %s", path);
	if (sha256_file(path, digest, &size, err) < 0)
		return -1;
	f = malloc(sizeof(*f));
	nf = realloc(m->files, (m->n_files + 1) * sizeof(*nf));
	if (!f || !nf) {
		free(f);
		if (nf)
			m->files = nf;
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	m->files = nf;
	ferry__image_file__init(f);
	f->name = strdup(rel);
	f->size = size;
	f->sha256.data = malloc(SHA256_LEN);
	if (!f->name || !f->sha256.data) {
		free(f->name);
		free(f->sha256.data);
		free(f);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	memcpy(f->sha256.data, digest, SHA256_LEN);
	f->sha256.len = SHA256_LEN;
	f->has_mode = 1;
	f->mode = st.st_mode & 07777;
	m->files[m->n_files++] = f;
	return 0;
}

static int skipped(const char *rel, const char *const *skip)
{
	if (!strcmp(rel, MANIFEST_NAME))
		return 1;
	for (; skip && *skip; skip++)
		if (!strcmp(rel, *skip))
			return 1;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_dir_rec(manifest_t *m, const char *dir, const char *sub, const char *const *skip,
		       ferr_t *err)
{
	char path[PATH_MAX], rel[PATH_MAX];
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int ret = 0;

	if (xsnprintf_path(path, sizeof(path), dir, sub) < 0)
		return ferr_set(err, FX_FAIL, "path too long under %s", dir);
	d = opendir(path);
	if (!d)
		return ferr_sys(err, FX_NOTFOUND, "open image directory %s", path);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn) {
				ret = ferr_set(err, FX_FAIL, "out of memory");
				goto out;
			}
			names = nn;
		}
		names[n++] = strdup(de->d_name);
	}
	/* sorted: the manifest lists files in a stable order */
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct stat st;
		if (*sub)
			snprintf(rel, sizeof(rel), "%s/%s", sub, names[i]);
		else
			snprintf(rel, sizeof(rel), "%s", names[i]);
		if (skipped(rel, skip))
			continue;
		if (xsnprintf_path(path, sizeof(path), dir, rel) < 0 || lstat(path, &st) < 0) {
			ret = ferr_sys(err, FX_FAIL, "stat %s/%s", dir, rel);
			break;
		}
		if (S_ISDIR(st.st_mode))
			ret = add_dir_rec(m, dir, rel, skip, err);
		else if (S_ISREG(st.st_mode))
			ret = manifest_add_file(m, dir, rel, err);
		/* sockets, symlinks, fifos are not part of an image set */
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return ret;
}

int manifest_add_dir(manifest_t *m, const char *dir, const char *const *skip, ferr_t *err)
{
	return add_dir_rec(m, dir, "", skip, err);
}

int manifest_encode(const manifest_t *m, uint8_t **buf, size_t *len, ferr_t *err)
{
	size_t plen = ferry__manifest__get_packed_size(m);
	uint8_t *b;

	if (plen > MANIFEST_MAX)
		return ferr_set(err, FX_FAIL, "manifest too large (%zu bytes)", plen);
	b = malloc(MANIFEST_HDR_LEN + plen);
	if (!b)
		return ferr_set(err, FX_FAIL, "out of memory");
	be32_put(b, MANIFEST_MAGIC);
	be32_put(b + 4, MANIFEST_VERSION);
	be32_put(b + 8, (uint32_t)plen);
	ferry__manifest__pack(m, b + MANIFEST_HDR_LEN);
	*buf = b;
	*len = MANIFEST_HDR_LEN + plen;
	return 0;
}

int manifest_decode(const uint8_t *buf, size_t len, manifest_t **out, ferr_t *err)
{
	uint32_t magic, version, plen;
	manifest_t *m;

	if (len < MANIFEST_HDR_LEN)
		return ferr_set(err, FX_INTEGRITY,
				"manifest is truncated (%zu bytes, header needs %d)", len,
				MANIFEST_HDR_LEN);
	magic = be32_get(buf);
	version = be32_get(buf + 4);
	plen = be32_get(buf + 8);
	if (magic != MANIFEST_MAGIC)
		return ferr_set(err, FX_INTEGRITY, "not a ferry manifest (bad magic 0x%08x)",
				magic);
	if (version > MANIFEST_VERSION)
		return ferr_set(err, FX_INTEGRITY,
				"manifest version %u is newer than this ferry supports (%u): "
				"upgrade ferry on this host",
				version, MANIFEST_VERSION);
	if (version == 0)
		return ferr_set(err, FX_INTEGRITY, "manifest has invalid version 0");
	if (plen > MANIFEST_MAX || (size_t)plen != len - MANIFEST_HDR_LEN)
		return ferr_set(
		    err, FX_INTEGRITY,
		    "manifest is truncated or padded (header says %u bytes, %zu present)", plen,
		    len - MANIFEST_HDR_LEN);
	m = ferry__manifest__unpack(NULL, plen, buf + MANIFEST_HDR_LEN);
	if (!m)
		return ferr_set(err, FX_INTEGRITY,
				"manifest payload is corrupt (protobuf decode failed)");
	for (size_t i = 0; i < m->n_files; i++) {
		const Ferry__ImageFile *f = m->files[i];
		if (!fs_relpath_is_safe(f->name, strlen(f->name)) || f->sha256.len != SHA256_LEN) {
			ferr_set(err, FX_INTEGRITY, "manifest lists an invalid file entry '%s'",
				 f->name);
			manifest_free(m);
			return -1;
		}
	}
	*out = m;
	return 0;
}

int manifest_write(const char *dir, const manifest_t *m, ferr_t *err)
{
	char path[PATH_MAX];
	uint8_t *buf;
	size_t len;
	int ret;

	if (xsnprintf_path(path, sizeof(path), dir, MANIFEST_NAME) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s", dir);
	if (manifest_encode(m, &buf, &len, err) < 0)
		return -1;
	ret = fs_write_atomic(path, buf, len, 0644, err);
	free(buf);
	return ret;
}

int manifest_read(const char *dir, manifest_t **m, ferr_t *err)
{
	char path[PATH_MAX];
	char *buf;
	size_t len;
	int ret;

	if (xsnprintf_path(path, sizeof(path), dir, MANIFEST_NAME) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s", dir);
	if (fs_read_all(path, &buf, &len, MANIFEST_MAX + MANIFEST_HDR_LEN, err) < 0) {
		if (err && err->code == FX_NOTFOUND)
			return ferr_set(err, FX_NOTFOUND,
					"%s has no manifest (%s): not a ferry image set", dir,
					MANIFEST_NAME);
		return -1;
	}
	ret = manifest_decode((uint8_t *)buf, len, m, err);
	free(buf);
	if (ret < 0)
		ferr_wrap(err, "%s", path);
	return ret;
}

int manifest_verify_files(const char *dir, const manifest_t *m, ferr_t *err)
{
	char path[PATH_MAX], want[SHA256_HEX_LEN], got[SHA256_HEX_LEN];
	uint8_t digest[SHA256_LEN];
	uint64_t size;

	for (size_t i = 0; i < m->n_files; i++) {
		const Ferry__ImageFile *f = m->files[i];
		struct stat st;

		if (!fs_relpath_is_safe(f->name, strlen(f->name)))
			return ferr_set(err, FX_INTEGRITY, "manifest lists an unsafe name '%s'",
					f->name);
		if (xsnprintf_path(path, sizeof(path), dir, f->name) < 0)
			return ferr_set(err, FX_FAIL, "path too long: %s/%s", dir, f->name);
		if (stat(path, &st) < 0)
			return ferr_sys(err, FX_INTEGRITY, "image file %s is missing", f->name);
		if ((uint64_t)st.st_size != f->size)
			return ferr_set(err, FX_INTEGRITY,
					"image file %s has %llu bytes, the manifest says %llu: the "
					"image set is damaged, dump again or resend it",
					f->name, (unsigned long long)st.st_size,
					(unsigned long long)f->size);
		if (sha256_file(path, digest, &size, err) < 0)
			return -1;
		if (f->sha256.len != SHA256_LEN || memcmp(digest, f->sha256.data, SHA256_LEN)) {
			hex_encode(f->sha256.data, f->sha256.len < SHA256_LEN ? f->sha256.len : 32,
				   want);
			hex_encode(digest, SHA256_LEN, got);
			return ferr_set(err, FX_INTEGRITY,
					"image file %s is corrupt: SHA-256 %.16s... does not match "
					"the manifest's %.16s...: dump again or resend the set",
					f->name, got, want);
		}
	}
	return 0;
}

uint64_t manifest_total_size(const manifest_t *m)
{
	uint64_t t = 0;

	for (size_t i = 0; i < m->n_files; i++)
		t += m->files[i]->size;
	return t;
}

const Ferry__ImageFile *manifest_find(const manifest_t *m, const char *name)
{
	for (size_t i = 0; i < m->n_files; i++)
		if (!strcmp(m->files[i]->name, name))
			return m->files[i];
	return NULL;
}
