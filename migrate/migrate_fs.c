/* Source side of the file-system transfer (migrate_fs.h). The first copy
 * remembers, per entry of the tenant's layer, what identifies its state
 * (inode, ctime, mtime, size, type); the frozen pass packs only the entries
 * whose state differs or that are new, and lists those that are gone. */
#define LOG_PREFIX "migrate"
#include "migrate/migrate_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "migrate/fs_wire.h"
#include "migrate/handover.h"
#include "migrate/migrate_src.h"
#include "tenant/image.h"
#include "tenant/rootfs.h"
#include "tenant/treepack.h"
#include "transport/wire.h"

struct ent {
	char *path;
	ino_t ino;
	struct timespec ctime, mtime;
	off_t size;
	mode_t type;
	bool seen;
};

/* The frozen pass, prepared while CRIU saves the tenant (from the freeze to
 * its hold point): the scan, and the changed entries packed into memory;
 * at the hold only the sending is left. A delta larger than PREP_MAX is
 * packed at the hold instead, straight onto the wire. */
#define PREP_MAX (64u << 20)
struct prep {
	pthread_t th;
	bool started;
	int rc; /* the scan's */
	ferr_t err;
	uint8_t *buf;
	size_t len, cap;
	bool packed; /* buf holds the delta's layer.tar */
	bool done;
	struct treepack_stats ts;
	double scan_ms, pack_ms;
};

struct mfs_src {
	char upper[PATH_MAX]; /* the tenant's own layer */
	bool layer;	      /* an overlay's upper (an image tenant) */
	struct prep prep;
	struct ent *v;
	size_t n, cap;
	char **list; /* the frozen pass: entries to send */
	size_t nl, capl;
	bool oom;
	struct mfs_stats st;
};

bool mfs_carries(const struct src *s)
{
	return s->rec.image[0] != '\0' || (s->o->copy_rootfs && s->rec.rootfs[0]);
}

static bool has_image(const struct src *s)
{
	return s->rec.image[0] != '\0';
}

static void remember(struct mfs_src *f, const char *rel, const struct stat *st)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		struct ent *nv = realloc(f->v, cap * sizeof(*nv));
		if (!nv)
			return; /* an entry we do not remember is sent again: safe */
		f->v = nv;
		f->cap = cap;
	}
	struct ent *e = &f->v[f->n];
	if (!(e->path = strdup(rel)))
		return;
	e->ino = st->st_ino;
	e->ctime = st->st_ctim;
	e->mtime = st->st_mtim;
	e->size = st->st_size;
	e->type = st->st_mode & S_IFMT;
	e->seen = false;
	f->n++;
}

static int remember_sent(const char *rel, const struct stat *st, void *arg)
{
	remember(arg, rel, st);
	return 1;
}

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->path, ((const struct ent *)b)->path);
}

static bool same_ts(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* The frozen pass: new or changed entries go on the list. */
static void collect(struct mfs_src *f, const char *rel, const struct stat *st)
{
	struct ent key = {.path = (char *)rel};
	struct ent *e = bsearch(&key, f->v, f->n, sizeof(*f->v), cmp_ent);

	if (e) {
		e->seen = true;
		if (e->ino == st->st_ino && same_ts(e->ctime, st->st_ctim) &&
		    same_ts(e->mtime, st->st_mtim) && e->size == st->st_size &&
		    e->type == (st->st_mode & S_IFMT))
			return;
		if (e->type != (st->st_mode & S_IFMT))
			e->seen = false; /* replaced by another type: deleted first */
	}
	if (f->nl == f->capl) {
		size_t cap = f->capl ? f->capl * 2 : 64;
		char **nl = realloc(f->list, cap * sizeof(*nl));
		if (!nl) {
			f->oom = true;
			return;
		}
		f->list = nl;
		f->capl = cap;
	}
	if (!(f->list[f->nl] = strdup(rel)))
		f->oom = true;
	else
		f->nl++;
}

typedef void (*scan_fn)(struct mfs_src *f, const char *rel, const struct stat *st);

/* lstat every entry below dfd (rel its path), parents before children; no
 * link followed, no mount point crossed. */
static int scan_dir(struct mfs_src *f, int dfd, char *rel, size_t len, dev_t dev, scan_fn fn,
		    ferr_t *err)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int r = 0;

	if (!d) {
		close(dfd);
		return ferr_sys(err, FX_FAIL, "read %s/%s", f->upper, rel);
	}
	while (r == 0 && (de = readdir(d))) {
		struct stat st;
		size_t n = strlen(de->d_name);
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (len + n + 2 >= PATH_MAX) {
			r = ferr_set(err, FX_FAIL, "path too long below %s", f->upper);
			break;
		}
		snprintf(rel + len, PATH_MAX - len, "%s%s", len ? "/" : "", de->d_name);
		size_t l2 = len + n + (len ? 1 : 0);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = ferr_sys(err, FX_FAIL, "stat %s/%s", f->upper, rel);
			break;
		}
		fn(f, rel, &st);
		if (S_ISDIR(st.st_mode) && st.st_dev == dev) {
			int cfd = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = cfd < 0 ? ferr_sys(err, FX_FAIL, "open %s/%s", f->upper, rel)
				    : scan_dir(f, cfd, rel, l2, dev, fn, err);
		}
		rel[len] = '\0';
	}
	closedir(d);
	return r;
}

static int scan(struct mfs_src *f, scan_fn fn, ferr_t *err)
{
	char rel[PATH_MAX] = "";
	struct stat st;
	int fd = open(f->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return ferr_sys(err, FX_FAIL, "open %s", f->upper);
	}
	fn(f, ".", &st);
	return scan_dir(f, fd, rel, 0, st.st_dev, fn, err);
}

static int recv_have(struct src *s, bool *has, ferr_t *err)
{
	Ferry__Wire__MigrateStep *st = NULL;
	struct frame_buf fb = {0};
	int r = mig_recv(s->c, &fb, MIG_FS_HAVE, "FS_HAVE", &st, err);

	frame_buf_free(&fb);
	if (r < 0)
		return -1;
	*has = st->has_has_image && st->has_image;
	wire_free(st);
	return 0;
}

/* One file of a transfer: the tree src packed straight onto the wire. */
static int stream_tree(struct fs_stream *fs, const char *name, const char *src, bool layer,
		       treepack_filter flt, void *farg, struct treepack_stats *ts, ferr_t *err)
{
	if (fs_stream_open(fs, name, err) < 0)
		return -1;
	if (treepack_pack_to(src, layer, flt, farg, fs_stream_write, fs, ts, err) < 0) {
		fs_stream_error(fs, err); /* the session's error, if it was the cause */
		return -1;
	}
	return fs_stream_close(fs, err);
}

static int send_first(struct src *s, struct mfs_src *f, struct fs_stream *fs, bool has, ferr_t *err)
{
	char img[PATH_MAX];
	struct treepack_stats ts;

	if (!has && has_image(s) &&
	    (image_root(s->o->state_dir, s->rec.image, img, sizeof(img), err) < 0 ||
	     stream_tree(fs, FS_IMAGE_FILE, img, false, NULL, NULL, &ts, err) < 0))
		return ferr_wrap(err, "send image %.12s", s->rec.image);
	/* what was sent, each entry's state from just before it was read: one
	 * that changes later, or that was sent and is gone later, is dealt with
	 * while frozen. The layer is sent on every move: LZ4HC (the tenant
	 * runs meanwhile; the image goes once, in LZ4's fast mode). */
	fs_stream_level(fs, FS_HC_LEVEL);
	if (stream_tree(fs, FS_LAYER_FILE, f->upper, has_image(s), remember_sent, f, &ts, err) < 0)
		return ferr_wrap(err, "send the layer of %s", s->rec.name);
	if (fs_stream_end(fs, &f->st.first_raw, &f->st.first_wire, err) < 0)
		return ferr_wrap(err, "sending the file system of %s", s->rec.name);
	qsort(f->v, f->n, sizeof(*f->v), cmp_ent);
	f->st.image_sent = !has && has_image(s);
	return 0;
}

int mfs_src_begin(struct src *s, ferr_t *err)
{
	struct mfs_src *f;
	struct fs_stream *fs;
	bool has;
	uint64_t t0 = now_ns();

	if (!mfs_carries(s))
		return 0;
	if (!(f = s->fs = calloc(1, sizeof(*f))))
		return ferr_set(err, FX_FAIL, "out of memory");
	f->layer = has_image(s);
	if ((has_image(s)
		 ? rootfs_upper(s->o->state_dir, s->rec.name, f->upper, sizeof(f->upper), err)
		 : xsnprintf(f->upper, sizeof(f->upper), err, "%s", s->rec.rootfs)) < 0 ||
	    recv_have(s, &has, err) < 0)
		return -1;
	msrc_progress(s, has ? "files" : "image+files");
	if (!(fs = fs_stream_new(s->c, s->rec.name, tenant_kind_to_pb(s->rec.kind), s->o->compress,
				 err)))
		return -1;
	int r = send_first(s, f, fs, has, err);
	fs_stream_free(fs);
	if (r < 0)
		return -1;
	f->st.carried = true;
	f->st.first_ms = ms_since(t0);
	pr_info("tenant %s: file system sent while running (%s%llu bytes, %llu on the wire, "
		"%.1f ms)",
		s->rec.name, has ? "" : "image and layer, ", (unsigned long long)f->st.first_raw,
		(unsigned long long)f->st.first_wire, f->st.first_ms);
	return 0;
}

/* The remembered entries that are gone (or changed type), NUL-terminated. */
static int send_deleted(struct mfs_src *f, struct fs_stream *fs, ferr_t *err)
{
	if (fs_stream_open(fs, FS_DELETED_FILE, err) < 0)
		return -1;
	for (size_t i = 0; i < f->n; i++)
		if (!f->v[i].seen && strcmp(f->v[i].path, ".")) {
			if (fs_stream_write(f->v[i].path, strlen(f->v[i].path) + 1, fs) < 0)
				return fs_stream_error(fs, err);
			f->st.deleted++;
		}
	return fs_stream_close(fs, err);
}

static int mem_sink(const void *buf, size_t n, void *arg)
{
	struct prep *p = arg;

	if (p->len + n > PREP_MAX)
		return -1;
	if (p->len + n > p->cap) {
		size_t cap = p->cap ? p->cap : 1u << 20;
		while (cap < p->len + n)
			cap *= 2;
		uint8_t *nb = realloc(p->buf, cap);
		if (!nb)
			return -1;
		p->buf = nb;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, buf, n);
	p->len += n;
	return 0;
}

static void *prep_main(void *arg)
{
	struct mfs_src *f = arg;
	struct prep *p = &f->prep;
	uint64_t t0 = now_ns();
	ferr_t e = {0};

	p->rc = scan(f, collect, &p->err);
	if (p->rc == 0 && f->oom)
		p->rc = ferr_set(&p->err, FX_FAIL, "out of memory");
	p->scan_ms = ms_since(t0);
	if (p->rc == 0)
		p->packed = treepack_pack_list_to(f->upper, f->list, f->nl, f->layer, mem_sink, p,
						  &p->ts, &e) == 0;
	p->pack_ms = ms_since(t0) - p->scan_ms;
	p->done = true;
	return NULL;
}

void mfs_src_frozen(struct src *s)
{
	struct mfs_src *f = s->fs;

	if (!f || !f->st.carried || f->prep.started)
		return;
	f->prep.started = pthread_create(&f->prep.th, NULL, prep_main, f) == 0;
	if (!f->prep.started)
		pr_warn("tenant %s: the file-system delta is prepared at the hold instead",
			s->rec.name);
}

/* The prepared pass (or, when the freeze hook did not run, this one now). */
static int prep_wait(struct mfs_src *f, ferr_t *err)
{
	if (f->prep.started) {
		pthread_join(f->prep.th, NULL);
		f->prep.started = false;
	} else if (!f->prep.done)
		prep_main(f);
	if (f->prep.rc < 0) {
		*err = f->prep.err;
		return -1;
	}
	return 0;
}

static int send_delta(struct mfs_src *f, struct fs_stream *fs, ferr_t *err)
{
	struct prep *p = &f->prep;

	if (send_deleted(f, fs, err) < 0 || fs_stream_open(fs, FS_LAYER_FILE, err) < 0)
		return -1;
	if (p->packed ? fs_stream_write(p->buf, p->len, fs)
		      : treepack_pack_list_to(f->upper, f->list, f->nl, f->layer, fs_stream_write,
					      fs, &p->ts, err)) {
		fs_stream_error(fs, err);
		return -1;
	}
	if (fs_stream_close(fs, err) < 0 ||
	    fs_stream_end(fs, &f->st.delta_raw, &f->st.delta_wire, err) < 0)
		return -1;
	return 0;
}

int mfs_src_final(struct src *s, ferr_t *err)
{
	struct mfs_src *f = s->fs;
	struct fs_stream *fs;
	uint64_t t0 = now_ns();
	double wait_ms;

	if (!f || !f->st.carried)
		return 0;
	if (prep_wait(f, err) < 0)
		return ferr_wrap(err, "the changes in the layer of %s", s->rec.name);
	wait_ms = ms_since(t0);
	if (!(fs = fs_stream_new(s->c, s->rec.name, tenant_kind_to_pb(s->rec.kind), s->o->compress,
				 err)))
		return -1;
	int r = send_delta(f, fs, err);
	fs_stream_free(fs);
	if (r < 0)
		return ferr_wrap(err, "sending the changes of %s", s->rec.name);
	f->st.delta_entries = f->prep.ts.entries;
	f->st.delta_ms = ms_since(t0);
	pr_info("tenant %s: file-system delta: %llu entries, %llu deleted, %llu bytes (%llu on "
		"the wire): %.1f ms at the hold (waited %.1f ms for its preparation: scan of %zu "
		"entries %.1f ms, pack %.1f ms%s), sent in %.1f ms",
		s->rec.name, (unsigned long long)f->prep.ts.entries,
		(unsigned long long)f->st.deleted, (unsigned long long)f->st.delta_raw,
		(unsigned long long)f->st.delta_wire, f->st.delta_ms, wait_ms, f->n,
		f->prep.scan_ms, f->prep.pack_ms, f->prep.packed ? "" : " (packed at the hold)",
		f->st.delta_ms - wait_ms);
	return 0;
}

void mfs_src_end(struct src *s, struct mfs_stats *out)
{
	struct mfs_src *f = s->fs;

	memset(out, 0, sizeof(*out));
	if (!f)
		return;
	if (f->prep.started) /* a migration that failed after the freeze */
		pthread_join(f->prep.th, NULL);
	free(f->prep.buf);
	*out = f->st;
	/* --copy-rootfs: the tree lives on the destination now (an image
	 * tenant's layer went with its record) */
	ferr_t e = {0};
	if (s->r->moved && f->st.carried && !has_image(s) && fs_rm_rf(f->upper, &e) < 0)
		pr_warn("tenant %s moved; its old root file system stays: %s", s->rec.name, e.msg);
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i].path);
	free(f->v);
	for (size_t i = 0; i < f->nl; i++)
		free(f->list[i]);
	free(f->list);
	free(f);
	s->fs = NULL;
}
