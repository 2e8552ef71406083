/* The snapshot store's manifests: build, seal, read, list, remove (repo.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/hash.h"
#include "lib/util.h"
#include "snapshot/repo.h"

#define SNAPM_VERSION 1
#define AAD_PREFIX    "snapshot:"

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

snapm_t *snapm_new(const char *tenant, const char *kind)
{
	snapm_t *m = calloc(1, sizeof(*m));
	uint8_t rnd[REPO_ID_LEN / 2];

	if (!m)
		return NULL;
	ferry_snap__manifest__init(m);
	m->version = SNAPM_VERSION;
	m->id = malloc(REPO_ID_LEN + 1);
	m->tenant = xstrdup(tenant);
	m->kind = xstrdup(kind);
	m->timings = calloc(1, sizeof(*m->timings));
	if (!m->id || !m->tenant || !m->kind || !m->timings || RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snapm_free_built(m);
		return NULL;
	}
	ferry_snap__timings__init(m->timings);
	hex_encode(rnd, sizeof(rnd), m->id);
	return m;
}

static void file_free(FerrySnap__File *f)
{
	for (size_t c = 0; c < f->n_chunks; c++) {
		free(f->chunks[c]->id.data);
		free(f->chunks[c]);
	}
	free(f->chunks);
	free(f->path);
	free(f->link);
	free(f->hardlink);
	free(f->sha256.data);
	for (size_t x = 0; x < f->n_xattrs; x++) {
		free(f->xattrs[x]->name);
		free(f->xattrs[x]->value.data);
		free(f->xattrs[x]);
	}
	free(f->xattrs);
	free(f);
}

void snapm_free_built(snapm_t *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_files; i++)
		file_free(m->files[i]);
	free(m->files);
	for (size_t i = 0; i < m->n_tags; i++)
		free(m->tags[i]);
	free(m->tags);
	free(m->id);
	free(m->tenant);
	free(m->kind);
	free(m->parent);
	free(m->host);
	free(m->ferry_version);
	free(m->rootfs_kind);
	free(m->image_id);
	free(m->rootfs);
	free(m->timings);
	free(m);
}

void snapm_free(snapm_t *m)
{
	if (m)
		ferry_snap__manifest__free_unpacked(m, NULL);
}

static int manifest_path(const struct repo *r, const char *id, char *buf, size_t len, ferr_t *err)
{
	if (strlen(id) != REPO_ID_LEN || strspn(id, "0123456789abcdef") != REPO_ID_LEN)
		return ferr_set(err, FX_USAGE, "'%s' is not a snapshot id", id);
	return xsnprintf(buf, len, err, "%s/snapshots/%s", r->dir, id);
}

int repo_write_manifest(struct repo *r, const snapm_t *m, ferr_t *err)
{
	char path[4200], aad[64];
	size_t len = ferry_snap__manifest__get_packed_size(m), slen;
	uint8_t *buf = malloc(len), *sealed = malloc(seal_bound(len));
	int rc = -1, fd;

	if (!buf || !sealed) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	ferry_snap__manifest__pack(m, buf);
	snprintf(aad, sizeof(aad), AAD_PREFIX "%s", m->id);
	if (manifest_path(r, m->id, path, sizeof(path), err) < 0 ||
	    seal_pack(&r->keys, aad, strlen(aad), buf, len, sealed, &slen, err) < 0)
		goto out;
	/* every chunk durable before the manifest that names them */
	if ((fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rc = syncfs(fd);
		close(fd);
	}
	if (fd < 0 || rc < 0) {
		rc = ferr_sys(err, FX_FAIL, "syncfs %s", r->dir);
		goto out;
	}
	rc = fs_write_atomic(path, sealed, slen, 0600, err);
out:
	free(buf);
	free(sealed);
	return rc;
}

int repo_get_sealed_manifest(struct repo *r, const char *id, uint8_t **buf, size_t *len,
			     ferr_t *err)
{
	char path[4200];

	if (manifest_path(r, id, path, sizeof(path), err) < 0)
		return -1;
	if (access(path, F_OK) < 0)
		return ferr_set(err, FX_NOTFOUND, "no snapshot %s in %s", id, r->dir);
	return fs_read_all(path, (char **)buf, len, SEAL_MAX + SEAL_OVERHEAD, err);
}

int repo_open_sealed_manifest(struct repo *r, const char *id, const uint8_t *buf, size_t len,
			      snapm_t **m, ferr_t *err)
{
	char aad[64];
	uint8_t *plain;
	size_t plen;

	*m = NULL;
	if (strlen(id) != REPO_ID_LEN || strspn(id, "0123456789abcdef") != REPO_ID_LEN)
		return ferr_set(err, FX_INTEGRITY, "'%s' is not a snapshot id", id);
	snprintf(aad, sizeof(aad), AAD_PREFIX "%s", id);
	if (seal_unpack(&r->keys, aad, strlen(aad), buf, len, &plain, &plen, err) < 0)
		return ferr_wrap(err, "snapshot %s: manifest", id);
	*m = ferry_snap__manifest__unpack(NULL, plen, plain);
	free(plain);
	if (!*m || (*m)->version != SNAPM_VERSION || strcmp((*m)->id, id)) {
		snapm_free(*m);
		*m = NULL;
		return ferr_set(err, FX_INTEGRITY, "snapshot %s: unreadable manifest", id);
	}
	return 0;
}

int repo_put_sealed_manifest(struct repo *r, const char *id, const uint8_t *buf, size_t len,
			     ferr_t *err)
{
	char path[4200];
	int fd, rc = -1;

	if (manifest_path(r, id, path, sizeof(path), err) < 0)
		return -1;
	if ((fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		rc = syncfs(fd);
		close(fd);
	}
	if (rc < 0)
		return ferr_sys(err, FX_FAIL, "syncfs %s", r->dir);
	return fs_write_atomic(path, buf, len, 0600, err);
}

int repo_read_manifest(struct repo *r, const char *id, snapm_t **m, ferr_t *err)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (repo_get_sealed_manifest(r, id, &buf, &len, err) < 0)
		return -1;
	rc = repo_open_sealed_manifest(r, id, buf, len, m, err);
	free(buf);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int repo_list_ids(struct repo *r, char ***ids, size_t *n, ferr_t *err)
{
	char path[4200];
	struct dirent *de;
	size_t cap = 0;
	DIR *d;

	*ids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/snapshots", r->dir);
	if (!(d = opendir(path)))
		return ferr_sys(err, FX_FAIL, "opendir %s", path);
	while ((de = readdir(d))) {
		if (strlen(de->d_name) != REPO_ID_LEN ||
		    strspn(de->d_name, "0123456789abcdef") != REPO_ID_LEN)
			continue;
		if (*n == cap) {
			char **nv = realloc(*ids, (cap = cap ? cap * 2 : 16) * sizeof(char *));
			if (!nv)
				break;
			*ids = nv;
		}
		if (!((*ids)[*n] = strdup(de->d_name)))
			break;
		(*n)++;
	}
	closedir(d);
	if (de) {
		for (size_t i = 0; i < *n; i++)
			free((*ids)[i]);
		free(*ids);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	if (*n)
		qsort(*ids, *n, sizeof(char *), cmp_str);
	return 0;
}

int repo_resolve(struct repo *r, const char *prefix, char out[REPO_ID_LEN + 1], ferr_t *err)
{
	char **ids;
	size_t n, hits = 0, pl = strlen(prefix);

	if (!pl || pl > REPO_ID_LEN)
		return ferr_set(err, FX_USAGE, "'%s' is not a snapshot id", prefix);
	if (repo_list_ids(r, &ids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(ids[i], prefix, pl) && hits++ == 0)
			snprintf(out, REPO_ID_LEN + 1, "%s", ids[i]);
		free(ids[i]);
	}
	free(ids);
	if (!hits)
		return ferr_set(err, FX_NOTFOUND, "no snapshot %s in %s", prefix, r->dir);
	if (hits > 1)
		return ferr_set(err, FX_USAGE, "'%s' names %zu snapshots: give more of the id",
				prefix, hits);
	return 0;
}

int repo_remove(struct repo *r, const char *id, ferr_t *err)
{
	char path[4200];

	if (manifest_path(r, id, path, sizeof(path), err) < 0)
		return -1;
	if (unlink(path) < 0)
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "snapshot %s", id);
	return 0;
}
