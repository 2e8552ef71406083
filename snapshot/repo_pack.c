/* Pack files of the snapshot store (repo_pack.h). */
#define LOG_PREFIX "repo"
#include "snapshot/repo_pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "lib/hash.h"
#include "lib/log.h"

#define PACK_MAGIC "FPK1"
#define ENT_LEN	   (SEAL_ID_LEN + 8 + 4)
#define TAIL_LEN   8

struct packidx {
	char **names;
	size_t n_names;
	struct pack_ent *e;
	size_t n, cap;
	uint32_t *slot; /* open addressing: entry index + 1, 0 free */
	size_t nslot;
};

static void put_le(uint8_t *b, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *b, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static int pack_path(const struct repo *r, const char *name, char *buf, size_t len)
{
	return snprintf(buf, len, "%s/packs/%s", r->dir, name) >= (int)len ? -1 : 0;
}

static void slot_put(uint32_t *s, size_t ns, const struct pack_ent *e, size_t i)
{
	uint64_t h;

	memcpy(&h, e->id, sizeof(h)); /* a keyed hash already: uniform */
	size_t j = h & (ns - 1);
	while (s[j])
		j = (j + 1) & (ns - 1);
	s[j] = (uint32_t)i + 1;
}

static int idx_add(struct packidx *x, const struct pack_ent *e)
{
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 1024;
		struct pack_ent *ne = realloc(x->e, nc * sizeof(*ne));
		if (!ne)
			return -1;
		x->e = ne;
		x->cap = nc;
	}
	x->e[x->n++] = *e;
	if (2 * x->n <= x->nslot) {
		slot_put(x->slot, x->nslot, e, x->n - 1);
		return 0;
	}
	size_t ns = x->nslot ? x->nslot * 2 : 4096;
	uint32_t *s = calloc(ns, sizeof(*s));
	if (!s)
		return -1;
	for (size_t i = 0; i < x->n; i++)
		slot_put(s, ns, &x->e[i], i);
	free(x->slot);
	x->slot = s;
	x->nslot = ns;
	return 0;
}

const struct pack_ent *repo_pack_find(const struct repo *r, const uint8_t id[SEAL_ID_LEN])
{
	const struct packidx *x = r->packs;
	uint64_t h;

	if (!x || !x->nslot)
		return NULL;
	memcpy(&h, id, sizeof(h));
	for (size_t j = h & (x->nslot - 1); x->slot[j]; j = (j + 1) & (x->nslot - 1))
		if (!memcmp(x->e[x->slot[j] - 1].id, id, SEAL_ID_LEN))
			return &x->e[x->slot[j] - 1];
	return NULL;
}

/* The index at a pack's end: its entries into x (a bad pack is skipped). */
static int load_one(struct repo *r, const char *name, ferr_t *err)
{
	struct packidx *x = r->packs;
	char path[4400];
	uint8_t tail[TAIL_LEN], *idx = NULL;
	struct stat sb;
	int fd, rc = 0;

	if (pack_path(r, name, path, sizeof(path)) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if (fstat(fd, &sb) < 0 || sb.st_size < TAIL_LEN ||
	    pread(fd, tail, TAIL_LEN, sb.st_size - TAIL_LEN) != TAIL_LEN ||
	    memcmp(tail + 4, PACK_MAGIC, 4))
		goto bad;
	uint64_t n = get_le(tail, 4), ilen = n * ENT_LEN;
	if (ilen + TAIL_LEN > (uint64_t)sb.st_size || !(idx = malloc(ilen ? ilen : 1)) ||
	    pread(fd, idx, ilen, sb.st_size - TAIL_LEN - (off_t)ilen) != (ssize_t)ilen)
		goto bad;
	char **nn = realloc(x->names, (x->n_names + 1) * sizeof(*nn));
	if (!nn || !(nn[x->n_names] = strdup(name))) {
		if (nn)
			x->names = nn;
		rc = ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	x->names = nn;
	for (uint64_t i = 0; rc == 0 && i < n; i++) {
		struct pack_ent e = {.pack = (uint32_t)x->n_names};
		memcpy(e.id, idx + i * ENT_LEN, SEAL_ID_LEN);
		e.off = get_le(idx + i * ENT_LEN + SEAL_ID_LEN, 8);
		e.len = (uint32_t)get_le(idx + i * ENT_LEN + SEAL_ID_LEN + 8, 4);
		if (idx_add(x, &e) < 0)
			rc = ferr_set(err, FX_FAIL, "out of memory");
	}
	x->n_names++;
	goto out;
bad:
	pr_warn("pack %s: no readable index, its chunks are not found", path);
out:
	free(idx);
	close(fd);
	return rc;
}

int repo_packs_load(struct repo *r, ferr_t *err)
{
	char path[4200];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (r->packs)
		return 0;
	if (!(r->packs = calloc(1, sizeof(*r->packs))))
		return ferr_set(err, FX_FAIL, "out of memory");
	snprintf(path, sizeof(path), "%s/packs", r->dir);
	if (!(d = opendir(path)))
		return 0;
	while (rc == 0 && (de = readdir(d)))
		if (strlen(de->d_name) == 21 && strstr(de->d_name, ".pack"))
			rc = load_one(r, de->d_name, err);
	closedir(d);
	return rc;
}

void repo_packs_free(struct repo *r)
{
	struct packidx *x = r->packs;

	if (!x)
		return;
	for (size_t i = 0; i < x->n_names; i++)
		free(x->names[i]);
	free(x->names);
	free(x->e);
	free(x->slot);
	free(x);
	r->packs = NULL;
}

int repo_pack_read(struct repo *r, const struct pack_ent *e, uint8_t **buf, size_t *len,
		   ferr_t *err)
{
	char path[4400], hex[2 * SEAL_ID_LEN + 1];
	int fd;

	hex_encode(e->id, SEAL_ID_LEN, hex);
	if (pack_path(r, r->packs->names[e->pack], path, sizeof(path)) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ferr_set(err, FX_INTEGRITY, "chunk %s is missing (its pack is gone)", hex);
	if (!(*buf = malloc(e->len ? e->len : 1))) {
		close(fd);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	ssize_t got = pread(fd, *buf, e->len, (off_t)e->off);
	close(fd);
	if (got != (ssize_t)e->len) {
		free(*buf);
		*buf = NULL;
		return ferr_set(err, FX_INTEGRITY, "chunk %s is truncated (its pack is short)",
				hex);
	}
	*len = e->len;
	return 0;
}

/* ---- writing ---- */

static int write_all(int fd, const uint8_t *b, size_t n, const char *path, ferr_t *err)
{
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			return ferr_sys(err, FX_FAIL, "writing a pack %s", path);
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int pack_put(struct repo *r, struct pack_writer *w, const uint8_t id[SEAL_ID_LEN],
	     const uint8_t *sealed, size_t len, ferr_t *err)
{
	if (w->fd < 0) {
		snprintf(w->tmp, sizeof(w->tmp), "%s/tmp/p-XXXXXX", r->dir);
		if ((w->fd = mkostemp(w->tmp, O_CLOEXEC)) < 0)
			return ferr_sys(err, FX_FAIL, "temporary pack in %s/tmp", r->dir);
		w->off = 0;
		w->n = 0;
	}
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 1024;
		struct pack_ent *ne = realloc(w->e, nc * sizeof(*ne));
		if (!ne)
			return ferr_set(err, FX_FAIL, "out of memory");
		w->e = ne;
		w->cap = nc;
	}
	if (write_all(w->fd, sealed, len, w->tmp, err) < 0)
		return -1;
	memcpy(w->e[w->n].id, id, SEAL_ID_LEN);
	w->e[w->n].off = w->off;
	w->e[w->n++].len = (uint32_t)len;
	w->off += len;
	return w->off >= PACK_MAX ? pack_finish(r, w, err) : 0;
}

int pack_finish(struct repo *r, struct pack_writer *w, ferr_t *err)
{
	uint8_t *idx, rnd[8];
	char name[32], hex[17], path[4400];
	size_t ilen = w->n * ENT_LEN;
	int rc;

	if (w->fd < 0)
		return 0;
	if (!(idx = malloc(ilen + TAIL_LEN)))
		return ferr_set(err, FX_FAIL, "out of memory");
	for (size_t i = 0; i < w->n; i++) {
		memcpy(idx + i * ENT_LEN, w->e[i].id, SEAL_ID_LEN);
		put_le(idx + i * ENT_LEN + SEAL_ID_LEN, w->e[i].off, 8);
		put_le(idx + i * ENT_LEN + SEAL_ID_LEN + 8, w->e[i].len, 4);
	}
	put_le(idx + ilen, w->n, 4);
	memcpy(idx + ilen + 4, PACK_MAGIC, 4);
	rc = write_all(w->fd, idx, ilen + TAIL_LEN, w->tmp, err);
	free(idx);
	if (close(w->fd) < 0 && rc == 0)
		rc = ferr_sys(err, FX_FAIL, "writing a pack %s", w->tmp);
	w->fd = -1;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1 && rc == 0)
		rc = ferr_set(err, FX_FAIL, "no random bytes for a pack's name");
	hex_encode(rnd, sizeof(rnd), hex);
	snprintf(name, sizeof(name), "%s.pack", hex);
	snprintf(path, sizeof(path), "%s/packs", r->dir);
	if (rc == 0 && mkdir(path, 0700) < 0 && errno != EEXIST)
		rc = ferr_sys(err, FX_FAIL, "mkdir %s", path);
	/* link, never replacing (names are random: a clash fails the pack) */
	if (rc == 0 && (pack_path(r, name, path, sizeof(path)) < 0 || link(w->tmp, path) < 0))
		rc = ferr_sys(err, FX_FAIL, "link %s", w->tmp);
	unlink(w->tmp);
	w->n = 0;
	return rc;
}

void pack_abort(struct pack_writer *w)
{
	if (w->fd >= 0) {
		close(w->fd);
		unlink(w->tmp);
	}
	w->fd = -1;
	free(w->e);
	w->e = NULL;
	w->n = w->cap = 0;
}

/* ---- garbage ---- */

/* Write out the chunks of pack i that ids names as loose chunks. */
static int unpack_named(struct repo *r, uint32_t i, const struct idset *ids, ferr_t *err)
{
	struct packidx *x = r->packs;

	for (size_t k = 0; k < x->n; k++) {
		uint8_t *buf;
		size_t len;
		if (x->e[k].pack != i || !idset_has(ids, x->e[k].id))
			continue;
		if (repo_pack_read(r, &x->e[k], &buf, &len, err) < 0)
			return -1;
		int rc = repo_write_loose(r, x->e[k].id, buf, len, err);
		free(buf);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int repo_gc_packs(struct repo *r, const struct idset *ids, struct repo_gc_stats *st, ferr_t *err)
{
	struct packidx *x;
	char path[4400];

	if (repo_packs_load(r, err) < 0)
		return -1;
	x = r->packs;
	for (uint32_t i = 0; i < x->n_names; i++) {
		size_t all = 0, named = 0;
		struct stat sb;
		for (size_t k = 0; k < x->n; k++)
			if (x->e[k].pack == i) {
				all++;
				named += idset_has(ids, x->e[k].id);
			}
		if (all && named == all) {
			st->chunks += named;
			continue;
		}
		if (named && unpack_named(r, i, ids, err) < 0)
			return ferr_wrap(err, "gc of pack %s", x->names[i]);
		st->chunks += named;
		st->removed += all - named;
		if (pack_path(r, x->names[i], path, sizeof(path)) == 0 && stat(path, &sb) == 0 &&
		    unlink(path) == 0)
			st->removed_bytes += (uint64_t)sb.st_size;
	}
	repo_packs_free(r); /* what is left is loose or in whole packs */
	return 0;
}
