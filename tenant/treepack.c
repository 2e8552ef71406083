/* Directory trees in and out of tar archives (treepack.h). One copy loop
 * moves entries from a reader (an archive, or libarchive's disk reader over
 * a directory) to a writer (libarchive's disk writer under a destination
 * directory, or a pax archive); every name is mapped to a path relative to
 * the tree's root and checked on the way. */
#include "tenant/treepack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/fsutil.h"
#include "lib/util.h"

#define WRITE_DISK_FLAGS                                                                           \
	(ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME |                     \
	 ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_SECURE_NODOTDOT |           \
	 ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_UNLINK | ARCHIVE_EXTRACT_SPARSE)

struct tp_src {
	struct archive *a;
	bool disk;	  /* a directory through archive_read_disk */
	const char *root; /* disk: the directory (as given to the reader) */
	struct archive_entry_linkresolver *lr;
	bool layer; /* an overlay's upper dir: drop overlayfs's bookkeeping xattrs */
	treepack_filter filter;
	void *farg;
};

struct tp_dst {
	struct archive *a;
	bool disk;	  /* archive_write_disk under dest */
	const char *dest; /* disk: the destination directory (no symlinks in it) */
	bool root_seen;	  /* the tree's root came: its times, set again at the end */
	struct timespec root_times[2];
};

int treepack_check_name(const char *name, const char *what, ferr_t *err)
{
	if (name[0] == '/')
		return ferr_set(err, FX_INTEGRITY, "%s '%s' is an absolute name: refused", what,
				name);
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return ferr_set(err, FX_INTEGRITY,
					"%s '%s' has a '..' component (it would leave the tree): "
					"refused",
					what, name);
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

int treepack_check_symlink(const char *name, const char *target, ferr_t *err)
{
	long depth = 0;

	if (target[0] == '/')
		return 0;
	/* depth of name's directory below the root (name has no "..") */
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "/");
		if (n && !(n == 1 && p[0] == '.'))
			depth++;
		p += n;
		while (*p == '/')
			p++;
	}
	depth = depth > 0 ? depth - 1 : 0;
	for (const char *p = target; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			depth--;
		else if (n && !(n == 1 && p[0] == '.'))
			depth++;
		if (depth < 0)
			return ferr_set(
			    err, FX_INTEGRITY,
			    "symbolic link '%s' -> '%s' points out of the root: refused", name,
			    target);
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

/* A reader's name as a path relative to the tree's root ("." for the root). */
static int map_name(const struct tp_src *s, const char *raw, const char *what, char *rel,
		    size_t len, ferr_t *err)
{
	if (s->disk) {
		size_t rl = strlen(s->root);
		if (strncmp(raw, s->root, rl) || (raw[rl] && raw[rl] != '/'))
			return ferr_set(err, FX_FAIL, "%s '%s' lies outside %s", what, raw,
					s->root);
		raw += rl;
	}
	while (raw[0] == '.' && raw[1] == '/')
		raw += 2;
	while (*raw == '/' && s->disk)
		raw++;
	if (!*raw || !strcmp(raw, "."))
		raw = ".";
	if (treepack_check_name(raw, what, err) < 0)
		return -1;
	return xsnprintf(rel, len, err, "%s", raw);
}

static int out_name(const struct tp_dst *d, const char *rel, char *out, size_t len, ferr_t *err)
{
	if (!d->disk)
		return xsnprintf(out, len, err, "%s", rel);
	if (!strcmp(rel, "."))
		return xsnprintf(out, len, err, "%s", d->dest);
	return xsnprintf(out, len, err, "%s/%s", d->dest, rel);
}

static int arc_err(struct archive *a, ferr_t *err, const char *what, const char *name)
{
	int e = archive_errno(a);
	const char *m = archive_error_string(a);

	return ferr_set(err, e == ENOSPC || e == EDQUOT ? FX_NOSPACE : FX_FAIL, "%s %s: %s", what,
			name, m ? m : "failed");
}

static int copy_data(struct tp_src *s, struct tp_dst *d, const char *name, ferr_t *err)
{
	static const char zeros[65536];
	int64_t at = 0, off;
	const void *buf;
	size_t size;
	int r;

	while ((r = archive_read_data_block(s->a, &buf, &size, &off)) == ARCHIVE_OK ||
	       r == ARCHIVE_WARN) {
		if (d->disk) {
			if (archive_write_data_block(d->a, buf, size, off) < ARCHIVE_WARN)
				return arc_err(d->a, err, "write", name);
			continue;
		}
		while (at < off) { /* holes: zeros in the archive, holes again on extraction */
			size_t n =
			    off - at < (int64_t)sizeof(zeros) ? (size_t)(off - at) : sizeof(zeros);
			if (archive_write_data(d->a, zeros, n) < 0)
				return arc_err(d->a, err, "write", name);
			at += (int64_t)n;
		}
		if (size && archive_write_data(d->a, buf, size) < 0)
			return arc_err(d->a, err, "write", name);
		at = off + (int64_t)size;
	}
	/* a running tenant's file deleted while it was read: the entry is
	 * padded; its state was taken before, so a delta deletes it later */
	if (r != ARCHIVE_EOF && !(s->disk && archive_errno(s->a) == ENOENT))
		return arc_err(s->a, err, "read", name);
	return 0;
}

/* Keep trusted.overlay.opaque of overlayfs's xattrs, drop the others. */
static void drop_overlay_xattrs(struct archive_entry *e)
{
	struct {
		char *name;
		void *val;
		size_t size;
	} keep[64];
	const char *name;
	const void *val;
	size_t size, n = 0;

	if (archive_entry_xattr_reset(e) == 0)
		return;
	while (archive_entry_xattr_next(e, &name, &val, &size) == ARCHIVE_OK && n < 64)
		if (strncmp(name, "trusted.overlay.", 16) ||
		    !strcmp(name, "trusted.overlay.opaque")) {
			keep[n].name = strdup(name);
			keep[n].val = malloc(size ? size : 1);
			if (keep[n].name && keep[n].val) {
				memcpy(keep[n].val, val, size);
				keep[n++].size = size;
			}
		}
	archive_entry_xattr_clear(e);
	for (size_t i = 0; i < n; i++) {
		archive_entry_xattr_add_entry(e, keep[i].name, keep[i].val, keep[i].size);
		free(keep[i].name);
		free(keep[i].val);
	}
}

/* Map, check and rename one entry for the writer. */
static int prepare_entry(struct tp_src *s, struct tp_dst *d, struct archive_entry *e, char *rel,
			 ferr_t *err)
{
	char out[PATH_MAX], hrel[PATH_MAX];
	const char *hl = archive_entry_hardlink(e), *sl = archive_entry_symlink(e);

	if (map_name(s, archive_entry_pathname(e), "entry", rel, PATH_MAX, err) < 0)
		return -1;
	if (hl) {
		if (map_name(s, hl, "hard link target", hrel, sizeof(hrel), err) < 0 ||
		    out_name(d, hrel, out, sizeof(out), err) < 0)
			return -1;
		archive_entry_set_hardlink(e, out);
	}
	if (sl && archive_entry_filetype(e) == AE_IFLNK && treepack_check_symlink(rel, sl, err) < 0)
		return -1;
	if (out_name(d, rel, out, sizeof(out), err) < 0)
		return -1;
	archive_entry_set_pathname(e, out);
	if (s->layer)
		drop_overlay_xattrs(e);
	return 0;
}

static int copy_entry(struct tp_src *s, struct tp_dst *d, struct archive_entry *e,
		      struct treepack_stats *st, ferr_t *err)
{
	char rel[PATH_MAX];
	int r;

	if (s->filter) {
		char r0[PATH_MAX];
		if (map_name(s, archive_entry_pathname(e), "entry", r0, sizeof(r0), err) < 0)
			return -1;
		if (!s->filter(r0, archive_entry_stat(e), s->farg))
			return 0;
	}
	if (s->lr) {
		struct archive_entry *spare = NULL;
		archive_entry_linkify(s->lr, &e, &spare);
		if (spare)
			archive_entry_free(spare);
	}
	if (prepare_entry(s, d, e, rel, err) < 0)
		return -1;
	if (!strcmp(rel, ".") && d->disk) {
		d->root_seen = true;
		d->root_times[0] =
		    (struct timespec){archive_entry_atime(e), archive_entry_atime_nsec(e)};
		d->root_times[1] =
		    (struct timespec){archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
	}
	r = archive_write_header(d->a, e);
	if (r < ARCHIVE_WARN)
		return arc_err(d->a, err, "write", rel);
	if (archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e) &&
	    copy_data(s, d, rel, err) < 0)
		return -1;
	if (archive_write_finish_entry(d->a) < ARCHIVE_WARN)
		return arc_err(d->a, err, "finish", rel);
	st->entries++;
	if (archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e))
		st->bytes += (uint64_t)archive_entry_size(e);
	return 0;
}

static int copy_all(struct tp_src *s, struct tp_dst *d, struct treepack_stats *st, ferr_t *err)
{
	struct archive_entry *e = archive_entry_new();
	int r = 0;

	if (!e)
		return ferr_set(err, FX_FAIL, "out of memory");
	for (;;) {
		archive_entry_clear(e);
		int h = archive_read_next_header2(s->a, e);
		if (h == ARCHIVE_EOF)
			break;
		if (h == ARCHIVE_FAILED && s->disk && archive_errno(s->a) == ENOENT)
			continue; /* gone since its directory was read (a running tenant) */
		if (h < ARCHIVE_WARN) {
			r = arc_err(s->a, err, "read", s->disk ? s->root : "archive");
			break;
		}
		if (s->disk && archive_read_disk_can_descend(s->a))
			archive_read_disk_descend(s->a);
		if ((r = copy_entry(s, d, e, st, err)) < 0)
			break;
	}
	archive_entry_free(e);
	return r;
}

static struct archive *disk_writer(ferr_t *err)
{
	struct archive *w = archive_write_disk_new();

	if (!w || archive_write_disk_set_options(w, WRITE_DISK_FLAGS) != ARCHIVE_OK) {
		ferr_set(err, FX_FAIL, "libarchive: cannot set up a disk writer");
		if (w)
			archive_write_free(w);
		return NULL;
	}
	return w;
}

static int run_copy(struct tp_src *s, struct tp_dst *d, struct treepack_stats *st, ferr_t *err)
{
	struct treepack_stats dummy;
	int r;

	memset(st ? st : &dummy, 0, sizeof(dummy));
	r = copy_all(s, d, st ? st : &dummy, err);
	if (archive_write_close(d->a) < ARCHIVE_WARN && r == 0)
		r = arc_err(d->a, err, "close", d->disk ? d->dest : "archive");
	/* writing into the root changed its mtime after its entry set it */
	if (r == 0 && d->root_seen && utimensat(AT_FDCWD, d->dest, d->root_times, 0) < 0)
		r = ferr_sys(err, FX_FAIL, "set the times of %s", d->dest);
	return r;
}

static int extract(struct archive *in, const char *what, const char *dest,
		   struct treepack_stats *st, ferr_t *err)
{
	struct tp_src s = {.a = in};
	struct tp_dst d = {.disk = true, .dest = dest};
	int r;

	if (!(d.a = disk_writer(err)))
		return -1;
	r = run_copy(&s, &d, st, err);
	archive_write_free(d.a);
	return r < 0 ? ferr_wrap(err, "%s", what) : 0;
}

static struct archive *tar_reader(void)
{
	struct archive *a = archive_read_new();

	if (a) {
		archive_read_support_filter_all(a);
		archive_read_support_format_tar(a);
		archive_read_support_format_cpio(a);
	}
	return a;
}

int treepack_extract_file(const char *path, const char *dest, struct treepack_stats *st,
			  ferr_t *err)
{
	struct archive *a = tar_reader();
	int r;

	if (!a)
		return ferr_set(err, FX_FAIL, "out of memory");
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		r = arc_err(a, err, "open", path);
		if (archive_errno(a) == ENOENT)
			err->code = FX_NOTFOUND;
	} else
		r = extract(a, path, dest, st, err);
	archive_read_free(a);
	return r;
}

int treepack_extract_fd(int fd, const char *dest, struct treepack_stats *st, ferr_t *err)
{
	struct archive *a = tar_reader();
	int r;

	if (!a)
		return ferr_set(err, FX_FAIL, "out of memory");
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK)
		r = arc_err(a, err, "open", "stream");
	else
		r = extract(a, "stream", dest, st, err);
	archive_read_free(a);
	return r;
}

static int disk_source(struct tp_src *s, const char *src, ferr_t *err)
{
	s->disk = true;
	s->root = src;
	s->a = archive_read_disk_new();
	s->lr = archive_entry_linkresolver_new();
	if (!s->a || !s->lr)
		return ferr_set(err, FX_FAIL, "out of memory");
	archive_entry_linkresolver_set_strategy(s->lr, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	archive_read_disk_set_symlink_physical(s->a);
	archive_read_disk_set_behavior(s->a, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
	if (archive_read_disk_open(s->a, src) != ARCHIVE_OK)
		return arc_err(s->a, err, "open", src);
	return 0;
}

static void disk_source_free(struct tp_src *s)
{
	if (s->a)
		archive_read_free(s->a);
	if (s->lr)
		archive_entry_linkresolver_free(s->lr);
}

int treepack_copy_dir(const char *src, const char *dest, struct treepack_stats *st, ferr_t *err)
{
	struct tp_src s = {0};
	struct tp_dst d = {.disk = true, .dest = dest};
	int r = -1;

	if (disk_source(&s, src, err) == 0 && (d.a = disk_writer(err))) {
		r = run_copy(&s, &d, st, err);
		archive_write_free(d.a);
	}
	disk_source_free(&s);
	return r;
}

/* Where a pack goes: a file (path), an fd, or a sink. */
struct tp_out {
	const char *path;
	int fd;
	treepack_sink sink;
	void *sarg;
};

static la_ssize_t sink_write(struct archive *a, void *arg, const void *buf, size_t len)
{
	const struct tp_out *o = arg;

	if (o->sink(buf, len, o->sarg) < 0) {
		archive_set_error(a, EIO, "the stream's sink failed");
		return -1;
	}
	return (la_ssize_t)len;
}

static int open_out(struct archive *a, const struct tp_out *o, ferr_t *err)
{
	int r;

	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_none(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (o->sink)
		r = archive_write_open(a, (void *)o, NULL, sink_write, NULL);
	else if (o->path)
		r = archive_write_open_filename(a, o->path);
	else
		r = archive_write_open_fd(a, o->fd);
	if (r != ARCHIVE_OK)
		return arc_err(a, err, "create", o->path ? o->path : "stream");
	return 0;
}

static int pack(const char *src, const struct tp_out *o, bool layer, treepack_filter f, void *farg,
		struct treepack_stats *st, ferr_t *err)
{
	struct tp_src s = {.layer = layer, .filter = f, .farg = farg};
	struct tp_dst d = {.disk = false};
	int r = -1;

	if (disk_source(&s, src, err) < 0)
		goto out;
	if (!(d.a = archive_write_new())) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	if (open_out(d.a, o, err) == 0)
		r = run_copy(&s, &d, st, err);
	archive_write_free(d.a);
out:
	disk_source_free(&s);
	return r;
}

int treepack_pack(const char *src, const char *path, int fd, struct treepack_stats *st, ferr_t *err)
{
	struct tp_out o = {.path = path, .fd = fd};

	return pack(src, &o, false, NULL, NULL, st, err);
}

int treepack_pack_layer(const char *src, const char *path, int fd, struct treepack_stats *st,
			ferr_t *err)
{
	struct tp_out o = {.path = path, .fd = fd};

	return pack(src, &o, true, NULL, NULL, st, err);
}

int treepack_pack_filtered(const char *src, const char *path, bool layer, treepack_filter f,
			   void *arg, struct treepack_stats *st, ferr_t *err)
{
	struct tp_out o = {.path = path, .fd = -1};

	return pack(src, &o, layer, f, arg, st, err);
}

int treepack_pack_to(const char *src, bool layer, treepack_filter f, void *farg, treepack_sink sink,
		     void *sarg, struct treepack_stats *st, ferr_t *err)
{
	struct tp_out o = {.fd = -1, .sink = sink, .sarg = sarg};

	return pack(src, &o, layer, f, farg, st, err);
}

int treepack_remove(const char *root, const char *rel, ferr_t *err)
{
	char comp[NAME_MAX + 1], p[PATH_MAX];
	int dfd, r = 0;
	struct stat st;

	if (treepack_check_name(rel, "deleted path", err) < 0)
		return -1;
	if ((dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return ferr_sys(err, FX_FAIL, "open %s", root);
	for (const char *c = rel; *c;) {
		size_t n = strcspn(c, "/");
		const char *next = c + n;
		while (*next == '/')
			next++;
		if (n == 0 || n > NAME_MAX || (n == 1 && c[0] == '.')) {
			c = next;
			continue;
		}
		memcpy(comp, c, n);
		comp[n] = '\0';
		if (!*next) { /* the last component: never followed */
			if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) < 0)
				break;
			if (!S_ISDIR(st.st_mode)) {
				if (unlinkat(dfd, comp, 0) < 0 && errno != ENOENT)
					r = ferr_sys(err, FX_FAIL, "remove %s", rel);
			} else if (xsnprintf(p, sizeof(p), err, "/proc/self/fd/%d/%s", dfd, comp) <
				       0 ||
				   fs_rm_rf(p, err) < 0)
				r = -1;
			break;
		}
		int nfd = openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dfd);
		if (nfd < 0)
			return errno == ENOENT || errno == ENOTDIR || errno == ELOOP
				   ? 0 /* nothing to remove below a file or a link */
				   : ferr_sys(err, FX_FAIL, "open %s", rel);
		dfd = nfd;
		c = next;
	}
	close(dfd);
	return r;
}

/* One entry of a list: a disk reader opened on it, not descended. */
static int pack_one(struct tp_src *s, struct tp_dst *d, const char *rel, struct treepack_stats *st,
		    ferr_t *err)
{
	char full[PATH_MAX];
	struct archive_entry *e = archive_entry_new();
	int r = -1;

	s->a = archive_read_disk_new();
	if (!e || !s->a) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	archive_read_disk_set_symlink_physical(s->a);
	if (treepack_check_name(rel, "entry", err) < 0 ||
	    (strcmp(rel, ".") ? xsnprintf(full, sizeof(full), err, "%s/%s", s->root, rel)
			      : xsnprintf(full, sizeof(full), err, "%s", s->root)) < 0)
		goto out;
	if (archive_read_disk_open(s->a, full) != ARCHIVE_OK ||
	    archive_read_next_header2(s->a, e) < ARCHIVE_WARN) {
		arc_err(s->a, err, "read", full);
		goto out;
	}
	r = copy_entry(s, d, e, st, err);
out:
	if (s->a)
		archive_read_free(s->a);
	s->a = NULL;
	if (e)
		archive_entry_free(e);
	return r;
}

static int pack_list(const char *src, char *const *rels, size_t n, const struct tp_out *o,
		     bool layer, struct treepack_stats *st, ferr_t *err)
{
	struct tp_src s = {.layer = layer, .disk = true, .root = src};
	struct tp_dst d = {.disk = false};
	struct treepack_stats dummy;
	int r = -1;

	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	s.lr = archive_entry_linkresolver_new();
	d.a = archive_write_new();
	if (!s.lr || !d.a) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	archive_entry_linkresolver_set_strategy(s.lr, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	if (open_out(d.a, o, err) < 0)
		goto out;
	r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		r = pack_one(&s, &d, rels[i], st, err);
	if (archive_write_close(d.a) < ARCHIVE_WARN && r == 0)
		r = arc_err(d.a, err, "close", o->path ? o->path : "stream");
out:
	if (d.a)
		archive_write_free(d.a);
	if (s.lr)
		archive_entry_linkresolver_free(s.lr);
	return r;
}

int treepack_pack_list(const char *src, char *const *rels, size_t n, const char *path, bool layer,
		       struct treepack_stats *st, ferr_t *err)
{
	struct tp_out o = {.path = path, .fd = -1};

	return pack_list(src, rels, n, &o, layer, st, err);
}

int treepack_pack_list_to(const char *src, char *const *rels, size_t n, bool layer,
			  treepack_sink sink, void *sarg, struct treepack_stats *st, ferr_t *err)
{
	struct tp_out o = {.fd = -1, .sink = sink, .sarg = sarg};

	return pack_list(src, rels, n, &o, layer, st, err);
}
