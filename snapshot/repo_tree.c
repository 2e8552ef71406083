/* A tenant's file tree in the snapshot store (repo_tree.h). */
#define LOG_PREFIX "repo"
#include "snapshot/repo_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/hash.h"
#include "lib/log.h"

/* ---- a map from a string to a pointer (paths, inodes) ---- */

struct smap {
	char **k;
	void **v;
	size_t cap, n;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h;
}

static size_t smap_slot(const struct smap *m, const char *k)
{
	for (size_t i = fnv(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
		if (!m->k[i] || !strcmp(m->k[i], k))
			return i;
}

static void *smap_get(const struct smap *m, const char *k)
{
	if (!m->cap)
		return NULL;
	size_t i = smap_slot(m, k);
	return m->k[i] ? m->v[i] : NULL;
}

static int smap_put(struct smap *m, const char *k, void *v)
{
	if (2 * (m->n + 1) > m->cap) {
		struct smap nm = {.cap = m->cap ? 2 * m->cap : 256};
		nm.k = calloc(nm.cap, sizeof(char *));
		nm.v = calloc(nm.cap, sizeof(void *));
		if (!nm.k || !nm.v)
			return free(nm.k), free(nm.v), -1;
		for (size_t i = 0; i < m->cap; i++)
			if (m->k[i]) {
				size_t j = smap_slot(&nm, m->k[i]);
				nm.k[j] = m->k[i];
				nm.v[j] = m->v[i];
			}
		nm.n = m->n;
		free(m->k);
		free(m->v);
		*m = nm;
	}
	size_t i = smap_slot(m, k);
	if (!m->k[i]) {
		if (!(m->k[i] = strdup(k)))
			return -1;
		m->n++;
	}
	m->v[i] = v;
	return 0;
}

static void smap_free(struct smap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->k[i]);
	free(m->k);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* ---- storing ---- */

struct tree {
	struct repo *r;
	snapm_t *m;
	const struct repo_tree_opts *o;
	struct repo_stats *st;
	struct repo_tree_stats *ts;
	struct smap cache; /* path -> File of o->cache */
	struct smap links; /* "ino" -> first path of a file with more links */
	dev_t dev;
	uint8_t *buf;
	size_t cap;
};

static FerrySnap__File *entry_new(struct tree *t, const char *rel, const struct stat *s,
				  FerrySnap__FileType type)
{
	FerrySnap__File *f = calloc(1, sizeof(*f));
	void *nv = realloc(t->m->files, (t->m->n_files + 1) * sizeof(*t->m->files));

	if (nv)
		t->m->files = nv;
	if (!f || !nv)
		return free(f), NULL;
	ferry_snap__file__init(f);
	if (!(f->path = strdup(rel)))
		return free(f), NULL;
	f->has_mode = f->has_mtime = f->has_uid = f->has_gid = f->has_part = f->has_type = 1;
	f->has_ino = f->has_mtime_ns = f->has_ctime_ns = 1;
	f->type = type;
	f->mode = s->st_mode & 07777;
	f->mtime = s->st_mtime;
	f->mtime_ns = (int64_t)s->st_mtim.tv_sec * 1000000000LL + s->st_mtim.tv_nsec;
	f->ctime_ns = (int64_t)s->st_ctim.tv_sec * 1000000000LL + s->st_ctim.tv_nsec;
	f->ino = s->st_ino;
	f->uid = s->st_uid;
	f->gid = s->st_gid;
	f->part = t->o->part;
	if (S_ISCHR(s->st_mode) || S_ISBLK(s->st_mode)) {
		f->has_rdev = 1;
		f->rdev = s->st_rdev;
	}
	t->m->files[t->m->n_files++] = f;
	t->ts->entries++;
	return f;
}

/* overlayfs's own trusted.overlay.* name the source's file handles: only
 * the opaque marker (a directory hiding the lower one) is the tree's. */
static bool xattr_kept(const char *name)
{
	return strncmp(name, "trusted.overlay.", 16) || !strcmp(name, "trusted.overlay.opaque");
}

static int add_xattr(FerrySnap__File *f, const char *name, const void *val, size_t len)
{
	FerrySnap__Xattr *x = calloc(1, sizeof(*x));
	void *nv = realloc(f->xattrs, (f->n_xattrs + 1) * sizeof(*f->xattrs));

	if (nv)
		f->xattrs = nv;
	if (!x || !nv)
		return free(x), -1;
	ferry_snap__xattr__init(x);
	x->name = strdup(name);
	x->value.data = malloc(len ? len : 1);
	if (!x->name || !x->value.data)
		return free(x->name), free(x->value.data), free(x), -1;
	memcpy(x->value.data, val, len);
	x->value.len = len;
	f->xattrs[f->n_xattrs++] = x;
	return 0;
}

static int read_xattrs(FerrySnap__File *f, const char *path, ferr_t *err)
{
	char names[8192], val[8192];
	ssize_t n = llistxattr(path, names, sizeof(names));

	if (n < 0)
		return errno == ENOTSUP ? 0 : ferr_sys(err, FX_FAIL, "llistxattr %s", path);
	for (char *p = names; p < names + n; p += strlen(p) + 1) {
		ssize_t l;
		if (!xattr_kept(p))
			continue;
		if ((l = lgetxattr(path, p, val, sizeof(val))) < 0)
			return ferr_sys(err, FX_FAIL, "lgetxattr %s %s", path, p);
		if (add_xattr(f, p, val, (size_t)l) < 0)
			return ferr_set(err, FX_FAIL, "out of memory");
	}
	return 0;
}

static int ref_add(FerrySnap__File *f, const uint8_t *id, uint32_t len)
{
	FerrySnap__ChunkRef *c = calloc(1, sizeof(*c));
	void *nv = realloc(f->chunks, (f->n_chunks + 1) * sizeof(*f->chunks));

	if (nv)
		f->chunks = nv;
	if (!c || !nv)
		return free(c), -1;
	ferry_snap__chunk_ref__init(c);
	if (!(c->id.data = malloc(SEAL_ID_LEN)))
		return free(c), -1;
	if (id)
		memcpy(c->id.data, id, SEAL_ID_LEN);
	c->id.len = SEAL_ID_LEN;
	c->len = len;
	f->chunks[f->n_chunks++] = c;
	return 0;
}

static int set_sha(FerrySnap__File *f, const uint8_t *sum)
{
	if (!(f->sha256.data = malloc(SHA256_LEN)))
		return -1;
	memcpy(f->sha256.data, sum, SHA256_LEN);
	f->sha256.len = SHA256_LEN;
	f->has_sha256 = 1;
	return 0;
}

/* The cache's entry for f, when f did not change since it was taken. */
static const FerrySnap__File *cached(const struct tree *t, const FerrySnap__File *f)
{
	const FerrySnap__File *c = smap_get(&t->cache, f->path);

	if (!c || c->type != FERRY_SNAP__FILE_TYPE__FT_REGULAR || c->hardlink || !c->has_ino ||
	    c->ino != f->ino || c->size != f->size || c->mtime_ns != f->mtime_ns ||
	    c->ctime_ns != f->ctime_ns || c->ctime_ns >= t->o->trust_before_ns ||
	    c->sha256.len != SHA256_LEN)
		return NULL;
	return c;
}

static int read_chunked(struct tree *t, FerrySnap__File *f, int fd, struct sha256_ctx *h,
			ferr_t *err)
{
	size_t pos = 0, have = 0;
	bool eof = false;

	for (;;) {
		if (have - pos < t->r->cdc.max && !eof) {
			memmove(t->buf, t->buf + pos, have - pos);
			have -= pos;
			pos = 0;
			ssize_t got = read(fd, t->buf + have, t->cap - have);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return ferr_sys(err, FX_FAIL, "read");
			eof = got == 0;
			have += (size_t)got;
			t->ts->read_bytes += (uint64_t)got;
			if (!eof)
				continue;
		}
		if (pos == have)
			return 0;
		size_t n = cdc_next(&t->r->cdc, t->buf + pos, have - pos);
		sha256_update(h, t->buf + pos, n);
		if (ref_add(f, NULL, (uint32_t)n) < 0)
			return ferr_set(err, FX_FAIL, "out of memory");
		if (repo_put_chunk(t->r, t->buf + pos, n, f->chunks[f->n_chunks - 1]->id.data,
				   t->st, err) < 0)
			return -1;
		pos += n;
	}
}

static int store_file(struct tree *t, FerrySnap__File *f, const char *path, ferr_t *err)
{
	const FerrySnap__File *c = cached(t, f);
	uint8_t sum[SHA256_LEN];

	if (c) {
		for (size_t i = 0; i < c->n_chunks; i++) {
			if (c->chunks[i]->id.len != SEAL_ID_LEN ||
			    ref_add(f, c->chunks[i]->id.data, c->chunks[i]->len) < 0)
				return ferr_set(err, FX_FAIL, "out of memory");
			t->st->chunks++;
		}
		t->ts->reused++;
		t->st->size += f->size;
		return set_sha(f, c->sha256.data) < 0 ? ferr_set(err, FX_FAIL, "out of memory") : 0;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "open %s", path);
	struct sha256_ctx *h = sha256_new();
	int rc = h ? read_chunked(t, f, fd, h, err) : ferr_set(err, FX_FAIL, "out of memory");
	close(fd);
	if (!h)
		return -1;
	sha256_final(h, sum);
	if (rc == 0 && set_sha(f, sum) < 0)
		rc = ferr_set(err, FX_FAIL, "out of memory");
	uint64_t total = 0;
	for (size_t i = 0; i < f->n_chunks; i++)
		total += f->chunks[i]->len;
	f->size = total; /* what was read: the tenant is frozen, or a later pass reads it again */
	return rc;
}

static int tree_walk(struct tree *t, const char *root, const char *rel, ferr_t *err);

static int regular(struct tree *t, const char *path, const char *rel, const struct stat *s,
		   ferr_t *err)
{
	FerrySnap__File *f = entry_new(t, rel, s, FERRY_SNAP__FILE_TYPE__FT_REGULAR);
	char ino[32];

	if (!f)
		return ferr_set(err, FX_FAIL, "out of memory");
	f->size = (uint64_t)s->st_size;
	if (s->st_nlink > 1) {
		snprintf(ino, sizeof(ino), "%llu", (unsigned long long)s->st_ino);
		const char *first = smap_get(&t->links, ino);
		if (first) {
			f->hardlink = strdup(first);
			f->size = 0;
			return f->hardlink ? 0 : ferr_set(err, FX_FAIL, "out of memory");
		}
		if (smap_put(&t->links, ino, f->path) < 0)
			return ferr_set(err, FX_FAIL, "out of memory");
	}
	if (read_xattrs(f, path, err) < 0 || store_file(t, f, path, err) < 0)
		return ferr_wrap(err, "%s", rel);
	return 0;
}

static int tree_entry(struct tree *t, const char *root, const char *rel, ferr_t *err)
{
	char path[4200], link[4096];
	FerrySnap__File *f;
	struct stat s;
	ssize_t n;
	FerrySnap__FileType type;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (lstat(path, &s) < 0)
		return errno == ENOENT ? 0 : ferr_sys(err, FX_FAIL, "lstat %s", path);
	if (S_ISREG(s.st_mode))
		return regular(t, path, rel, &s, err);
	if (S_ISDIR(s.st_mode))
		type = FERRY_SNAP__FILE_TYPE__FT_DIR;
	else if (S_ISLNK(s.st_mode))
		type = FERRY_SNAP__FILE_TYPE__FT_SYMLINK;
	else if (S_ISCHR(s.st_mode))
		type = FERRY_SNAP__FILE_TYPE__FT_CHARDEV;
	else if (S_ISBLK(s.st_mode))
		type = FERRY_SNAP__FILE_TYPE__FT_BLOCKDEV;
	else if (S_ISFIFO(s.st_mode))
		type = FERRY_SNAP__FILE_TYPE__FT_FIFO;
	else
		return 0; /* a socket: recreated by whoever binds it */
	if (!(f = entry_new(t, rel, &s, type)))
		return ferr_set(err, FX_FAIL, "out of memory");
	if (S_ISLNK(s.st_mode)) {
		if ((n = readlink(path, link, sizeof(link) - 1)) < 0)
			return ferr_sys(err, FX_FAIL, "readlink %s", path);
		link[n] = 0;
		if (!(f->link = strdup(link)))
			return ferr_set(err, FX_FAIL, "out of memory");
	}
	if (read_xattrs(f, path, err) < 0)
		return -1;
	/* another file system mounted in the tree is not the tree's */
	return S_ISDIR(s.st_mode) && s.st_dev == t->dev ? tree_walk(t, root, rel, err) : 0;
}

static int tree_walk(struct tree *t, const char *root, const char *rel, ferr_t *err)
{
	char path[4200], child[4200];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
	if (!(d = opendir(path)))
		return errno == ENOENT && *rel ? 0 : ferr_sys(err, FX_FAIL, "opendir %s", path);
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
		    (int)sizeof(child)) {
			rc = ferr_set(err, FX_FAIL, "path too long under %s", path);
			break;
		}
		rc = tree_entry(t, root, child, err);
	}
	closedir(d);
	return rc;
}

int repo_add_tree(struct repo *r, snapm_t *m, const char *root, const struct repo_tree_opts *o,
		  struct repo_stats *st, struct repo_tree_stats *ts, ferr_t *err)
{
	struct tree t = {.r = r, .m = m, .o = o, .st = st, .ts = ts};
	FerrySnap__File *root_e;
	struct stat s;
	int rc = 0;

	memset(ts, 0, sizeof(*ts));
	if (lstat(root, &s) < 0 || !S_ISDIR(s.st_mode))
		return ferr_sys(err, FX_FAIL, "the tenant's files at %s", root);
	t.dev = s.st_dev;
	t.cap = 4 * (size_t)r->cdc.max;
	if (!(t.buf = malloc(t.cap)))
		return ferr_set(err, FX_FAIL, "out of memory");
	for (size_t i = 0; o->cache && rc == 0 && i < o->cache->n_files; i++)
		if (o->cache->files[i]->part == o->part)
			rc = smap_put(&t.cache, o->cache->files[i]->path, o->cache->files[i]);
	if (rc < 0)
		rc = ferr_set(err, FX_FAIL, "out of memory");
	else if (!(root_e = entry_new(&t, ".", &s, FERRY_SNAP__FILE_TYPE__FT_DIR)))
		rc =
		    ferr_set(err, FX_FAIL, "out of memory"); /* the root's own mode, owner, times */
	else if ((rc = read_xattrs(root_e, root, err)) == 0)
		rc = tree_walk(&t, root, "", err);
	smap_free(&t.cache);
	smap_free(&t.links);
	free(t.buf);
	return rc;
}

/* ---- extracting ---- */

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

static int write_chunks(struct repo *r, const FerrySnap__File *f, int fd, struct sha256_ctx *h,
			ferr_t *err)
{
	uint64_t total = 0;
	uint8_t *data;

	for (size_t i = 0; i < f->n_chunks; i++) {
		const FerrySnap__ChunkRef *c = f->chunks[i];
		if (c->id.len != SEAL_ID_LEN)
			return ferr_set(err, FX_INTEGRITY, "bad chunk reference");
		if (repo_get_chunk(r, c->id.data, c->len, &data, err) < 0)
			return -1;
		sha256_update(h, data, c->len);
		int rc = 0;
		if (all_zero(data, c->len)) /* a hole stays a hole */
			rc = lseek(fd, c->len, SEEK_CUR) < 0 ? -1 : 0;
		else
			rc = write(fd, data, c->len) == (ssize_t)c->len ? 0 : -1;
		free(data);
		if (rc < 0)
			return ferr_sys(err, FX_FAIL, "write");
		total += c->len;
	}
	if (ftruncate(fd, (off_t)total) < 0)
		return ferr_sys(err, FX_FAIL, "truncate");
	if (total != f->size)
		return ferr_set(err, FX_INTEGRITY, "size %llu, not %llu", (unsigned long long)total,
				(unsigned long long)f->size);
	return 0;
}

static int extract_file(struct repo *r, const FerrySnap__File *f, const char *dir, ferr_t *err)
{
	uint8_t sum[SHA256_LEN];
	int fd = fs_open_in_root(dir, f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, err);

	if (fd < 0)
		return -1;
	struct sha256_ctx *h = sha256_new();
	int rc = h ? write_chunks(r, f, fd, h, err) : ferr_set(err, FX_FAIL, "out of memory");
	if (h)
		sha256_final(h, sum);
	if (close(fd) < 0 && rc == 0)
		rc = ferr_sys(err, FX_FAIL, "write");
	if (rc == 0 && (f->sha256.len != SHA256_LEN || memcmp(sum, f->sha256.data, SHA256_LEN)))
		rc = ferr_set(err, FX_INTEGRITY, "content does not match its SHA-256");
	return rc;
}

/* Owner, xattrs, mode and times of an entry made at path. */
static int set_attrs(const FerrySnap__File *f, const char *path, ferr_t *err)
{
	bool lnk = f->type == FERRY_SNAP__FILE_TYPE__FT_SYMLINK;
	struct timespec ts[2];

	if (lchown(path, f->uid, f->gid) < 0)
		return ferr_sys(err, FX_FAIL, "chown %s", path);
	for (size_t i = 0; i < f->n_xattrs; i++)
		if (xattr_kept(f->xattrs[i]->name) &&
		    lsetxattr(path, f->xattrs[i]->name, f->xattrs[i]->value.data,
			      f->xattrs[i]->value.len, 0) < 0)
			return ferr_sys(err, FX_FAIL, "setxattr %s %s", path, f->xattrs[i]->name);
	if (!lnk && chmod(path, f->mode & 07777) < 0)
		return ferr_sys(err, FX_FAIL, "chmod %s", path);
	ts[0].tv_sec = ts[1].tv_sec = f->has_mtime_ns ? f->mtime_ns / 1000000000LL : f->mtime;
	ts[0].tv_nsec = ts[1].tv_nsec = f->has_mtime_ns ? f->mtime_ns % 1000000000LL : 0;
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return ferr_sys(err, FX_FAIL, "set the times of %s", path);
	return 0;
}

static int make_entry(struct repo *r, const FerrySnap__File *f, const char *dir, const char *path,
		      ferr_t *err)
{
	char other[4200];

	switch (f->type) {
	case FERRY_SNAP__FILE_TYPE__FT_DIR:
		return mkdir(path, 0700) < 0 ? ferr_sys(err, FX_FAIL, "mkdir %s", path) : 0;
	case FERRY_SNAP__FILE_TYPE__FT_SYMLINK:
		return symlink(f->link ? f->link : "", path) < 0
			   ? ferr_sys(err, FX_FAIL, "symlink %s", path)
			   : 0;
	case FERRY_SNAP__FILE_TYPE__FT_CHARDEV:
	case FERRY_SNAP__FILE_TYPE__FT_BLOCKDEV:
		return mknod(path,
			     (f->type == FERRY_SNAP__FILE_TYPE__FT_CHARDEV ? S_IFCHR : S_IFBLK) |
				 0600,
			     (dev_t)f->rdev) < 0
			   ? ferr_sys(err, FX_FAIL, "mknod %s", path)
			   : 0;
	case FERRY_SNAP__FILE_TYPE__FT_FIFO:
		return mkfifo(path, 0600) < 0 ? ferr_sys(err, FX_FAIL, "mkfifo %s", path) : 0;
	default:
		break;
	}
	if (!f->hardlink)
		return extract_file(r, f, dir, err);
	if (!fs_relpath_is_safe(f->hardlink, strlen(f->hardlink)))
		return ferr_set(err, FX_INTEGRITY, "unsafe link target '%s'", f->hardlink);
	snprintf(other, sizeof(other), "%s/%s", dir, f->hardlink);
	return link(other, path) < 0 ? ferr_sys(err, FX_FAIL, "link %s", path) : 1;
}

bool repo_has_part(const snapm_t *m, FerrySnap__FilePart part)
{
	for (size_t i = 0; i < m->n_files; i++)
		if (m->files[i]->part == part)
			return true;
	return false;
}

int repo_extract_tree(struct repo *r, const snapm_t *m, FerrySnap__FilePart part, const char *dir,
		      ferr_t *err)
{
	char path[4200];
	int rc;

	for (size_t i = 0; i < m->n_files; i++) {
		const FerrySnap__File *f = m->files[i];
		if (f->part != part)
			continue;
		if (!strcmp(f->path, ".") && f->type == FERRY_SNAP__FILE_TYPE__FT_DIR)
			continue; /* dir itself: its attributes below */
		if (!fs_relpath_is_safe(f->path, strlen(f->path)))
			return ferr_set(err, FX_INTEGRITY, "snapshot %s: unsafe path '%s'", m->id,
					f->path);
		snprintf(path, sizeof(path), "%s/%s", dir, f->path);
		if ((rc = make_entry(r, f, dir, path, err)) < 0)
			return ferr_wrap(err, "snapshot %s, file %s", m->id, f->path);
		/* a hard link shares its first name's attributes */
		if (rc == 0 && f->type != FERRY_SNAP__FILE_TYPE__FT_DIR &&
		    set_attrs(f, path, err) < 0)
			return -1;
	}
	/* directories last, deepest first: what they hold changed their times */
	for (size_t i = m->n_files; i-- > 0;) {
		const FerrySnap__File *f = m->files[i];
		if (f->part != part || f->type != FERRY_SNAP__FILE_TYPE__FT_DIR)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, f->path);
		if (set_attrs(f, path, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- what changed ---- */

static bool same_entry(const FerrySnap__File *a, const FerrySnap__File *b)
{
	if (a->type != b->type || a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
	    a->size != b->size || a->rdev != b->rdev || !a->hardlink != !b->hardlink ||
	    (a->hardlink && strcmp(a->hardlink, b->hardlink)) || !a->link != !b->link ||
	    (a->link && strcmp(a->link, b->link)) || a->sha256.len != b->sha256.len ||
	    (a->sha256.len && memcmp(a->sha256.data, b->sha256.data, a->sha256.len)))
		return false;
	/* a directory's times change with what it holds: that shows below it */
	return a->type == FERRY_SNAP__FILE_TYPE__FT_DIR || a->mtime_ns == b->mtime_ns;
}

static int index_tree(const snapm_t *m, struct smap *s)
{
	for (size_t i = 0; m && i < m->n_files; i++)
		if (m->files[i]->part == FERRY_SNAP__FILE_PART__PART_ROOTFS &&
		    smap_put(s, m->files[i]->path, m->files[i]) < 0)
			return -1;
	return 0;
}

int repo_tree_diff(const snapm_t *old, const snapm_t *m, repo_tree_diff_fn fn, void *arg,
		   ferr_t *err)
{
	struct smap a = {0}, b = {0};
	int rc = 0;

	if (index_tree(old, &a) < 0 || index_tree(m, &b) < 0) {
		rc = ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < m->n_files; i++) {
		const FerrySnap__File *f = m->files[i], *o;
		if (f->part != FERRY_SNAP__FILE_PART__PART_ROOTFS)
			continue;
		if (!(o = smap_get(&a, f->path)))
			fn('+', f, arg);
		else if (!same_entry(o, f))
			fn('~', f, arg);
	}
	for (size_t i = 0; old && i < old->n_files; i++)
		if (old->files[i]->part == FERRY_SNAP__FILE_PART__PART_ROOTFS &&
		    !smap_get(&b, old->files[i]->path))
			fn('-', old->files[i], arg);
out:
	smap_free(&a);
	smap_free(&b);
	return rc;
}
