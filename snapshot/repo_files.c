/* The snapshot store's files: storing a directory, extracting it, verifying
 * chunks, collecting garbage (repo.h). */
#define LOG_PREFIX "repo"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "snapshot/repo.h"
#include "snapshot/repo_pack.h"

/* ---- a set of chunk names ---- */

struct idset {
	uint8_t (*k)[SEAL_ID_LEN];
	bool *used;
	size_t cap, n;
};

struct idset *idset_new(void)
{
	return calloc(1, sizeof(struct idset));
}

void idset_free(struct idset *s)
{
	if (s) {
		free(s->k);
		free(s->used);
		free(s);
	}
}

static size_t idset_slot(const struct idset *s, const uint8_t *id)
{
	uint64_t h;

	memcpy(&h, id, sizeof(h)); /* a keyed hash already: uniform */
	for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1))
		if (!s->used[i] || !memcmp(s->k[i], id, SEAL_ID_LEN))
			return i;
}

bool idset_has(const struct idset *s, const uint8_t *id)
{
	return s->cap && s->used[idset_slot(s, id)];
}

int idset_add(struct idset *s, const uint8_t *id)
{
	if (2 * (s->n + 1) > s->cap) {
		struct idset ns = {.cap = s->cap ? s->cap * 2 : 1024};
		ns.k = malloc(ns.cap * SEAL_ID_LEN);
		ns.used = calloc(ns.cap, sizeof(bool));
		if (!ns.k || !ns.used)
			return free(ns.k), free(ns.used), -1;
		for (size_t i = 0; i < s->cap; i++)
			if (s->used[i]) {
				size_t j = idset_slot(&ns, s->k[i]);
				memcpy(ns.k[j], s->k[i], SEAL_ID_LEN);
				ns.used[j] = true;
			}
		free(s->k);
		free(s->used);
		ns.n = s->n;
		*s = ns;
	}
	size_t j = idset_slot(s, id);
	if (!s->used[j]) {
		memcpy(s->k[j], id, SEAL_ID_LEN);
		s->used[j] = true;
		s->n++;
	}
	return 0;
}

/* ---- storing ---- */

struct pagemaps {
	struct {
		uint32_t id;
		struct page_run *runs;
		size_t n;
	} * v;
	size_t n;
};

static void pagemaps_free(struct pagemaps *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].runs);
	free(p->v);
}

/* Every pagemap-*.img of dir (an unreadable one: its pages cut by size). */
static void pagemaps_load(const char *dir, struct pagemaps *p)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[4200];

	memset(p, 0, sizeof(*p));
	while (d && (de = readdir(d))) {
		ferr_t e = {0};
		struct page_run *runs;
		size_t n;
		uint32_t id;
		if (strncmp(de->d_name, "pagemap-", 8) || !strstr(de->d_name, ".img"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (pagemap_read(path, &runs, &n, &id, &e) < 0) {
			pr_warn("%s", e.msg);
			continue;
		}
		void *nv = realloc(p->v, (p->n + 1) * sizeof(*p->v));
		if (!nv) {
			free(runs);
			break;
		}
		p->v = nv;
		p->v[p->n].id = id;
		p->v[p->n].runs = runs;
		p->v[p->n++].n = n;
	}
	if (d)
		closedir(d);
}

struct adder {
	struct repo *r;
	snapm_t *m;
	FerrySnap__FilePart part;
	struct repo_stats *st;
	struct pagemaps pm;
	uint8_t *buf;
	size_t cap;
};

static FerrySnap__File *file_add(struct adder *a, const char *rel, const struct stat *s)
{
	FerrySnap__File *f = calloc(1, sizeof(*f));
	void *nv = realloc(a->m->files, (a->m->n_files + 1) * sizeof(*a->m->files));

	if (nv)
		a->m->files = nv;
	if (!f || !nv)
		return free(f), NULL;
	ferry_snap__file__init(f);
	if (!(f->path = strdup(rel)))
		return free(f), NULL;
	f->size = S_ISREG(s->st_mode) ? (uint64_t)s->st_size : 0;
	f->has_mode = f->has_mtime = f->has_uid = f->has_gid = f->has_part = 1;
	f->mode = s->st_mode & 07777;
	f->mtime = s->st_mtime;
	f->uid = s->st_uid;
	f->gid = s->st_gid;
	f->part = a->part;
	a->m->files[a->m->n_files++] = f;
	return f;
}

static int chunk_ref(struct adder *a, FerrySnap__File *f, const uint8_t *data, size_t len,
		     ferr_t *err)
{
	FerrySnap__ChunkRef *c = calloc(1, sizeof(*c));
	void *nv = realloc(f->chunks, (f->n_chunks + 1) * sizeof(*f->chunks));

	if (nv)
		f->chunks = nv;
	if (!c || !nv)
		return free(c), ferr_set(err, FX_FAIL, "out of memory");
	ferry_snap__chunk_ref__init(c);
	if (!(c->id.data = malloc(SEAL_ID_LEN)))
		return free(c), ferr_set(err, FX_FAIL, "out of memory");
	c->id.len = SEAL_ID_LEN;
	c->len = (uint32_t)len;
	f->chunks[f->n_chunks++] = c;
	return repo_put_chunk(a->r, data, len, c->id.data, a->st, err);
}

static int read_full(int fd, uint8_t *buf, size_t n, size_t *got, ferr_t *err)
{
	*got = 0;
	while (*got < n) {
		ssize_t r = read(fd, buf + *got, n - *got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ferr_sys(err, FX_FAIL, "read");
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

/* pages-N.img: its cuts (from its pagemap, else every page_chunk bytes);
 * 0 and no cuts for any other file. */
static int page_plan(struct adder *a, const char *rel, uint64_t size, uint32_t **cuts, size_t *n,
		     ferr_t *err)
{
	unsigned id;
	int end = 0;

	*cuts = NULL;
	*n = 0;
	if (sscanf(rel, "pages-%u.img%n", &id, &end) != 1 || rel[end])
		return 0;
	for (size_t i = 0; i < a->pm.n; i++) {
		uint64_t total = 0;
		if (a->pm.v[i].id != id)
			continue;
		for (size_t k = 0; k < a->pm.v[i].n; k++)
			total += (uint64_t)a->pm.v[i].runs[k].nr_pages * CHUNK_PAGE;
		if (total == size)
			return page_cuts(a->pm.v[i].runs, a->pm.v[i].n, a->r->page_chunk, cuts, n,
					 err) < 0
				   ? -1
				   : 1;
	}
	pr_info("%s: no pagemap covers it, cut every %u bytes", rel, a->r->page_chunk);
	struct page_run run = {0, (uint32_t)((size + CHUNK_PAGE - 1) / CHUNK_PAGE)};
	if (page_cuts(&run, 1, a->r->page_chunk, cuts, n, err) < 0)
		return -1;
	if (*n && size % CHUNK_PAGE)
		(*cuts)[*n - 1] -= (uint32_t)(CHUNK_PAGE - size % CHUNK_PAGE);
	return 1;
}

static int store_pages(struct adder *a, FerrySnap__File *f, int fd, const uint32_t *cuts, size_t n,
		       struct sha256_ctx *h, ferr_t *err)
{
	for (size_t i = 0; i < n; i++) {
		size_t got;
		if (read_full(fd, a->buf, cuts[i], &got, err) < 0)
			return -1;
		if (got != cuts[i])
			return ferr_set(err, FX_FAIL, "%s shrank while stored", f->path);
		sha256_update(h, a->buf, got);
		if (chunk_ref(a, f, a->buf, got, err) < 0)
			return -1;
	}
	return 0;
}

static int store_cdc(struct adder *a, FerrySnap__File *f, int fd, struct sha256_ctx *h, ferr_t *err)
{
	size_t pos = 0, have = 0, got;
	bool eof = false;

	for (;;) {
		if (have - pos < a->r->cdc.max && !eof) {
			memmove(a->buf, a->buf + pos, have - pos);
			have -= pos;
			pos = 0;
			if (read_full(fd, a->buf + have, a->cap - have, &got, err) < 0)
				return -1;
			eof = have + got < a->cap;
			have += got;
		}
		if (pos == have)
			return 0;
		size_t n = cdc_next(&a->r->cdc, a->buf + pos, have - pos);
		sha256_update(h, a->buf + pos, n);
		if (chunk_ref(a, f, a->buf + pos, n, err) < 0)
			return -1;
		pos += n;
	}
}

static int store_regular(struct adder *a, const char *path, const char *rel, const struct stat *s,
			 ferr_t *err)
{
	FerrySnap__File *f = file_add(a, rel, s);
	struct sha256_ctx *h = sha256_new();
	uint32_t *cuts = NULL;
	size_t n;
	int fd = -1, rc = -1, plan;

	if (!f || !h) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		ferr_sys(err, FX_FAIL, "open %s", path);
		goto out;
	}
	if ((plan = page_plan(a, rel, f->size, &cuts, &n, err)) < 0)
		goto out;
	f->has_pages = 1;
	f->pages = plan > 0;
	rc = plan ? store_pages(a, f, fd, cuts, n, h, err) : store_cdc(a, f, fd, h, err);
	if (rc == 0) {
		if (!(f->sha256.data = malloc(SHA256_LEN)))
			rc = ferr_set(err, FX_FAIL, "out of memory");
		else
			sha256_final(h, f->sha256.data);
		f->sha256.len = SHA256_LEN;
		f->has_sha256 = 1;
		h = NULL;
	}
out:
	if (h)
		sha256_free(h);
	if (fd >= 0)
		close(fd);
	free(cuts);
	return rc < 0 ? ferr_wrap(err, "%s", rel) : 0;
}

static int walk(struct adder *a, const char *root, const char *rel, ferr_t *err);

static int walk_entry(struct adder *a, const char *root, const char *rel, ferr_t *err)
{
	char path[4200], link[4096];
	FerrySnap__File *f;
	struct stat s;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (lstat(path, &s) < 0)
		return ferr_sys(err, FX_FAIL, "lstat %s", path);
	if (S_ISREG(s.st_mode))
		return store_regular(a, path, rel, &s, err);
	if (S_ISDIR(s.st_mode)) {
		if (!(f = file_add(a, rel, &s)))
			return ferr_set(err, FX_FAIL, "out of memory");
		f->has_type = 1;
		f->type = FERRY_SNAP__FILE_TYPE__FT_DIR;
		return walk(a, root, rel, err);
	}
	if (S_ISLNK(s.st_mode)) {
		if ((n = readlink(path, link, sizeof(link) - 1)) < 0)
			return ferr_sys(err, FX_FAIL, "readlink %s", path);
		link[n] = 0;
		if (!(f = file_add(a, rel, &s)) || !(f->link = strdup(link)))
			return ferr_set(err, FX_FAIL, "out of memory");
		f->has_type = 1;
		f->type = FERRY_SNAP__FILE_TYPE__FT_SYMLINK;
		return 0;
	}
	pr_warn("%s: neither a file, a directory nor a link: not stored", path);
	return 0;
}

static int walk(struct adder *a, const char *root, const char *rel, ferr_t *err)
{
	char path[4200], child[4200];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
	if (!(d = opendir(path)))
		return ferr_sys(err, FX_FAIL, "opendir %s", path);
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		rc = walk_entry(a, root, child, err);
	}
	closedir(d);
	return rc;
}

int repo_add_dir(struct repo *r, snapm_t *m, const char *dir, FerrySnap__FilePart part,
		 struct repo_stats *st, ferr_t *err)
{
	struct adder a = {.r = r, .m = m, .part = part, .st = st};
	int rc;

	a.cap = 4 * (size_t)r->cdc.max;
	if (a.cap < r->page_chunk)
		a.cap = r->page_chunk;
	if (!(a.buf = malloc(a.cap)))
		return ferr_set(err, FX_FAIL, "out of memory");
	pagemaps_load(dir, &a.pm);
	rc = walk(&a, dir, "", err);
	pagemaps_free(&a.pm);
	free(a.buf);
	return rc;
}

/* ---- extracting ---- */

static int extract_regular(struct repo *r, const snapm_t *m, const FerrySnap__File *f,
			   const char *dir, ferr_t *err)
{
	uint8_t sum[SHA256_LEN], *data;
	struct sha256_ctx *h;
	uint64_t total = 0;
	int fd, rc = 0;

	fd = fs_open_in_root(dir, f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			     f->has_mode ? f->mode & 0777 : 0600, err);
	if (fd < 0)
		return -1;
	if (!(h = sha256_new())) {
		close(fd);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	for (size_t i = 0; rc == 0 && i < f->n_chunks; i++) {
		const FerrySnap__ChunkRef *c = f->chunks[i];
		if (c->id.len != SEAL_ID_LEN) {
			rc = ferr_set(err, FX_INTEGRITY, "bad chunk reference");
			break;
		}
		if ((rc = repo_get_chunk(r, c->id.data, c->len, &data, err)) < 0)
			break;
		sha256_update(h, data, c->len);
		if (write(fd, data, c->len) != (ssize_t)c->len)
			rc = ferr_sys(err, FX_FAIL, "write %s/%s", dir, f->path);
		total += c->len;
		free(data);
	}
	sha256_final(h, sum);
	if (close(fd) < 0 && rc == 0)
		rc = ferr_sys(err, FX_FAIL, "write %s/%s", dir, f->path);
	/* a streamed memory image has no whole-file digest: each of its chunks
	 * was checked against its keyed name, their list is in the sealed
	 * manifest (pagestream.h) */
	bool streamed = f->pages && !f->has_sha256 && !f->sha256.len;
	if (rc == 0 && total != f->size)
		rc = ferr_set(err, FX_INTEGRITY, "content is not as long as the manifest says");
	else if (rc == 0 && !streamed &&
		 (f->sha256.len != SHA256_LEN || memcmp(sum, f->sha256.data, SHA256_LEN)))
		rc = ferr_set(err, FX_INTEGRITY, "content does not match its SHA-256");
	return rc < 0 ? ferr_wrap(err, "snapshot %s, file %s", m->id, f->path) : 0;
}

int repo_extract(struct repo *r, const snapm_t *m, FerrySnap__FilePart part, const char *dir,
		 ferr_t *err)
{
	char path[4200];

	for (size_t i = 0; i < m->n_files; i++) {
		const FerrySnap__File *f = m->files[i];
		if (f->part != part)
			continue;
		if (!fs_relpath_is_safe(f->path, strlen(f->path)))
			return ferr_set(err, FX_INTEGRITY, "snapshot %s: unsafe path '%s'", m->id,
					f->path);
		snprintf(path, sizeof(path), "%s/%s", dir, f->path);
		if (f->type == FERRY_SNAP__FILE_TYPE__FT_DIR) {
			if (mkdir(path, f->has_mode ? f->mode & 0777 : 0700) < 0 && errno != EEXIST)
				return ferr_sys(err, FX_FAIL, "mkdir %s", path);
		} else if (f->type == FERRY_SNAP__FILE_TYPE__FT_SYMLINK) {
			if (symlink(f->link ? f->link : "", path) < 0)
				return ferr_sys(err, FX_FAIL, "symlink %s", path);
		} else if (extract_regular(r, m, f, dir, err) < 0) {
			return -1;
		}
	}
	return 0;
}

/* ---- verifying ---- */

static int verify_file(struct repo *r, const FerrySnap__File *f, bool read_data, struct idset *done,
		       ferr_t *err)
{
	uint8_t *data;

	for (size_t i = 0; i < f->n_chunks; i++) {
		const FerrySnap__ChunkRef *c = f->chunks[i];
		if (c->id.len != SEAL_ID_LEN)
			return ferr_set(err, FX_INTEGRITY, "bad chunk reference");
		if (idset_has(done, c->id.data))
			continue;
		if (read_data) {
			if (repo_get_chunk(r, c->id.data, c->len, &data, err) < 0)
				return -1;
			free(data);
		} else if (repo_has_chunk(r, c->id.data, err) < 0) {
			return -1;
		}
		if (idset_add(done, c->id.data) < 0)
			return ferr_set(err, FX_FAIL, "out of memory");
	}
	return 0;
}

int repo_verify(struct repo *r, const snapm_t *m, bool read_data, struct idset *done,
		repo_bad_fn bad, void *arg, ferr_t *err)
{
	int broken = 0;

	for (size_t i = 0; i < m->n_files; i++) {
		ferr_t e = {0};
		if (verify_file(r, m->files[i], read_data, done, &e) < 0) {
			if (e.code == FX_FAIL && e.sys_errno == 0 && strstr(e.msg, "memory")) {
				*err = e;
				return -1;
			}
			bad(m, m->files[i]->path, e.msg, arg);
			broken++;
		}
	}
	return broken;
}

/* ---- garbage ---- */

static int referenced(struct repo *r, struct idset *ids, ferr_t *err)
{
	char **v;
	size_t n;
	int rc = 0;

	if (repo_list_ids(r, &v, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		snapm_t *m;
		if (rc == 0 && repo_read_manifest(r, v[i], &m, err) < 0)
			rc = ferr_wrap(err, "gc refused (it would lose that snapshot's chunks)");
		for (size_t f = 0; rc == 0 && f < m->n_files; f++)
			for (size_t c = 0; rc == 0 && c < m->files[f]->n_chunks; c++)
				if (m->files[f]->chunks[c]->id.len == SEAL_ID_LEN &&
				    idset_add(ids, m->files[f]->chunks[c]->id.data) < 0)
					rc = ferr_set(err, FX_FAIL, "out of memory");
		if (rc == 0)
			snapm_free(m);
		free(v[i]);
	}
	free(v);
	return rc;
}

static int unhex32(const char *s, uint8_t out[SEAL_ID_LEN])
{
	if (strlen(s) != 2 * SEAL_ID_LEN || strspn(s, "0123456789abcdef") != 2 * SEAL_ID_LEN)
		return -1;
	for (size_t i = 0; i < SEAL_ID_LEN; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void sweep_dir(const char *path, struct idset *ids, struct repo_gc_stats *st)
{
	DIR *d = opendir(path);
	struct dirent *de;
	uint8_t id[SEAL_ID_LEN];
	char f[4300];
	struct stat s;

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(f, sizeof(f), "%s/%s", path, de->d_name);
		if (unhex32(de->d_name, id) == 0 && idset_has(ids, id)) {
			st->chunks++;
			continue;
		}
		if (lstat(f, &s) == 0 && unlink(f) == 0) {
			st->removed++;
			st->removed_bytes += (uint64_t)s.st_size;
		}
	}
	if (d)
		closedir(d);
}

int repo_gc(struct repo *r, struct repo_gc_stats *st, ferr_t *err)
{
	struct idset *ids = idset_new();
	char path[4200];
	struct dirent *de;
	DIR *d;

	memset(st, 0, sizeof(*st));
	if (!ids || referenced(r, ids, err) < 0) {
		idset_free(ids);
		return ids ? -1 : ferr_set(err, FX_FAIL, "out of memory");
	}
	snprintf(path, sizeof(path), "%s/chunks", r->dir);
	if ((d = opendir(path))) {
		while ((de = readdir(d))) {
			char sub[4500];
			if (de->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			sweep_dir(sub, ids, st);
		}
		closedir(d);
	}
	if (repo_gc_packs(r, ids, st, err) < 0) {
		idset_free(ids);
		return -1;
	}
	idset_free(ids);
	snprintf(path, sizeof(path), "%s/tmp", r->dir);
	if ((d = opendir(path))) {
		while ((de = readdir(d))) {
			char sub[4500];
			if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			if (fs_rm_rf(sub, NULL) == 0)
				st->tmp_removed++;
		}
		closedir(d);
	}
	return 0;
}
