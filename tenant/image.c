/* The image store (image.h): STATE_DIR/images/ID/{rootfs/,info}. An import
 * extracts into STATE_DIR/images/.import-XXXXXX, computes the content id of
 * what landed there and renames it to its id (or drops it when the store
 * has that content already), so a half-done import is never an image. */
#define LOG_PREFIX "image"
#include "tenant/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/hash.h"
#include "lib/util.h"
#include "tenant/registry.h"
#include "tenant/treepack.h"

#define INFO_FILE "info"

bool image_id_valid(const char *id)
{
	size_t n = 0;

	for (; id[n]; n++)
		if (!((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
			return false;
	return n == IMAGE_ID_LEN;
}

static int store_dir(const char *state_dir, char *out, size_t len, ferr_t *err)
{
	return xsnprintf(out, len, err, "%s/images", state_dir);
}

int image_root(const char *state_dir, const char *id, char *out, size_t len, ferr_t *err)
{
	if (!image_id_valid(id))
		return ferr_set(err, FX_USAGE, "'%s' is not an image id (64 hex characters)", id);
	return xsnprintf(out, len, err, "%s/images/%s/rootfs", state_dir, id);
}

bool image_present(const char *state_dir, const char *id)
{
	char p[PATH_MAX];
	struct stat st;

	return image_root(state_dir, id, p, sizeof(p), NULL) == 0 && stat(p, &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* ---- content id ---- */

struct hl_seen {
	dev_t dev;
	ino_t ino;
	char *path;
};

struct walk {
	struct sha256_ctx *h;
	struct hl_seen *seen;
	size_t nseen, cap;
};

static void put_str(struct walk *w, const char *s)
{
	sha256_update(w->h, s, strlen(s) + 1);
}

static int hash_xattrs(struct walk *w, const char *p, ferr_t *err)
{
	char names[65536], val[65536];
	ssize_t n = llistxattr(p, names, sizeof(names));
	const char *v[1024];
	size_t cnt = 0;

	if (n < 0)
		return errno == ENOTSUP ? 0 : ferr_sys(err, FX_FAIL, "list xattrs of %s", p);
	for (ssize_t i = 0; i < n && cnt < ARRAY_SIZE(v); i += (ssize_t)strlen(names + i) + 1)
		v[cnt++] = names + i;
	qsort(v, cnt, sizeof(v[0]), (int (*)(const void *, const void *))strcmp);
	for (size_t i = 0; i < cnt; i++) {
		ssize_t vl = lgetxattr(p, v[i], val, sizeof(val));
		if (vl < 0)
			return ferr_sys(err, FX_FAIL, "read xattr %s of %s", v[i], p);
		put_str(w, v[i]);
		sha256_update(w->h, val, (size_t)vl);
	}
	return 0;
}

/* The path of the first hard link of (dev, ino), or NULL (then remembered). */
static const char *hl_first(struct walk *w, const struct stat *st, const char *rel)
{
	for (size_t i = 0; i < w->nseen; i++)
		if (w->seen[i].dev == st->st_dev && w->seen[i].ino == st->st_ino)
			return w->seen[i].path;
	if (w->nseen == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct hl_seen *n = realloc(w->seen, cap * sizeof(*n));
		if (!n)
			return NULL;
		w->seen = n;
		w->cap = cap;
	}
	w->seen[w->nseen].dev = st->st_dev;
	w->seen[w->nseen].ino = st->st_ino;
	w->seen[w->nseen].path = strdup(rel);
	if (w->seen[w->nseen].path)
		w->nseen++;
	return NULL;
}

static int hash_body(struct walk *w, const char *p, const char *rel, const struct stat *st,
		     ferr_t *err)
{
	char buf[PATH_MAX + 80];
	uint8_t sum[SHA256_LEN];
	uint64_t size;

	if (S_ISLNK(st->st_mode)) {
		ssize_t n = readlink(p, buf, sizeof(buf) - 1);
		if (n < 0)
			return ferr_sys(err, FX_FAIL, "readlink %s", p);
		buf[n] = '\0';
		put_str(w, buf);
		return 0;
	}
	if (!S_ISREG(st->st_mode))
		return 0;
	const char *first = st->st_nlink > 1 ? hl_first(w, st, rel) : NULL;
	if (first) {
		snprintf(buf, sizeof(buf), "link %s", first);
		put_str(w, buf);
		return 0;
	}
	if (sha256_file(p, sum, &size, err) < 0)
		return -1;
	hex_encode(sum, sizeof(sum), buf);
	put_str(w, buf);
	return 0;
}

static int hash_entry(struct walk *w, const char *p, const char *rel, struct stat *st, ferr_t *err)
{
	char line[256];

	if (lstat(p, st) < 0)
		return ferr_sys(err, FX_FAIL, "stat %s", p);
	put_str(w, rel);
	snprintf(line, sizeof(line), "%o %o %u %u %" PRId64 " %" PRId64 " %u:%u",
		 (unsigned)(st->st_mode & S_IFMT) >> 12, (unsigned)(st->st_mode & 07777),
		 (unsigned)st->st_uid, (unsigned)st->st_gid, (int64_t)st->st_mtime,
		 S_ISREG(st->st_mode) ? (int64_t)st->st_size : (int64_t)0, major(st->st_rdev),
		 minor(st->st_rdev));
	put_str(w, line);
	if (hash_xattrs(w, p, err) < 0)
		return -1;
	return hash_body(w, p, rel, st, err);
}

static int cmp_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_dots(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

static int hash_tree(struct walk *w, const char *p, const char *rel, ferr_t *err)
{
	struct dirent **names;
	struct stat st;
	int n, r = 0;

	if (hash_entry(w, p, rel, &st, err) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return 0;
	if ((n = scandir(p, &names, skip_dots, cmp_names)) < 0)
		return ferr_sys(err, FX_FAIL, "read directory %s", p);
	for (int i = 0; i < n; i++) {
		char cp[PATH_MAX], crel[PATH_MAX];
		if (r == 0 &&
		    (xsnprintf(cp, sizeof(cp), err, "%s/%s", p, names[i]->d_name) < 0 ||
		     xsnprintf(crel, sizeof(crel), err, "%s/%s", rel, names[i]->d_name) < 0 ||
		     hash_tree(w, cp, crel, err) < 0))
			r = -1;
		free(names[i]);
	}
	free(names);
	return r;
}

int image_tree_id(const char *dir, char id[IMAGE_ID_LEN + 1], ferr_t *err)
{
	struct walk w = {.h = sha256_new()};
	uint8_t sum[SHA256_LEN];
	int r;

	if (!w.h)
		return ferr_set(err, FX_FAIL, "out of memory");
	put_str(&w, "ferry-image 1");
	r = hash_tree(&w, dir, ".", err);
	for (size_t i = 0; i < w.nseen; i++)
		free(w.seen[i].path);
	free(w.seen);
	if (r < 0) {
		sha256_free(w.h);
		return ferr_wrap(err, "content id of %s", dir);
	}
	sha256_final(w.h, sum);
	hex_encode(sum, sizeof(sum), id);
	return 0;
}

/* ---- store ---- */

static int info_save(const char *dir, const struct image_info *in, ferr_t *err)
{
	char p[PATH_MAX], buf[PATH_MAX + 256];
	int n;

	if (xsnprintf(p, sizeof(p), err, "%s/" INFO_FILE, dir) < 0)
		return -1;
	n = snprintf(buf, sizeof(buf),
		     "id=%s\ncreated=%" PRId64 "\nentries=%" PRIu64 "\nbytes=%" PRIu64
		     "\nsource=%s\n",
		     in->id, in->created, in->entries, in->bytes, in->source);
	return fs_write_atomic(p, buf, (size_t)n, 0600, err);
}

int image_info_load(const char *state_dir, const char *id, struct image_info *out, ferr_t *err)
{
	char p[PATH_MAX], *buf, *save = NULL;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (!image_id_valid(id))
		return ferr_set(err, FX_USAGE, "'%s' is not an image id", id);
	if (xsnprintf(p, sizeof(p), err, "%s/images/%s/" INFO_FILE, state_dir, id) < 0)
		return -1;
	ferr_t e = {0};
	if (fs_read_all(p, &buf, &len, 1 << 16, &e) < 0) {
		if (e.code == FX_NOTFOUND)
			return ferr_set(err, FX_NOTFOUND, "no image %s in the store", id);
		if (err)
			*err = e;
		return -1;
	}
	snprintf(out->id, sizeof(out->id), "%s", id);
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "created=", 8))
			out->created = strtoll(l + 8, NULL, 10);
		else if (!strncmp(l, "entries=", 8))
			out->entries = strtoull(l + 8, NULL, 10);
		else if (!strncmp(l, "bytes=", 6))
			out->bytes = strtoull(l + 6, NULL, 10);
		else if (!strncmp(l, "source=", 7))
			snprintf(out->source, sizeof(out->source), "%s", l + 7);
	}
	free(buf);
	return 0;
}

/* Move staging (holding rootfs/) to the store under its content id. */
static int commit_staging(const char *state_dir, const char *staging, struct image_info *in,
			  bool *existed, ferr_t *err)
{
	char tree[PATH_MAX], final[PATH_MAX];

	*existed = false;
	if (xsnprintf(tree, sizeof(tree), err, "%s/rootfs", staging) < 0 ||
	    image_tree_id(tree, in->id, err) < 0 ||
	    xsnprintf(final, sizeof(final), err, "%s/images/%s", state_dir, in->id) < 0)
		return -1;
	in->created = wall_time();
	if (image_present(state_dir, in->id)) {
		char id[IMAGE_ID_LEN + 1];
		*existed = true;
		fs_rm_rf(staging, NULL);
		snprintf(id, sizeof(id), "%s", in->id);
		return image_info_load(state_dir, id, in, err);
	}
	if (info_save(staging, in, err) < 0)
		return -1;
	if (rename(staging, final) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY)
			return ferr_sys(err, FX_FAIL, "store image %s", in->id);
		*existed = true; /* another import of the same content won */
		fs_rm_rf(staging, NULL);
	}
	return 0;
}

static int make_staging(const char *state_dir, char *staging, size_t len, ferr_t *err)
{
	char dir[PATH_MAX], tree[PATH_MAX];

	if (store_dir(state_dir, dir, sizeof(dir), err) < 0 || fs_mkdir_p(dir, 0700, err) < 0 ||
	    xsnprintf(staging, len, err, "%s/.import-XXXXXX", dir) < 0)
		return -1;
	if (!mkdtemp(staging))
		return ferr_sys(err, FX_FAIL, "create %s", staging);
	if (xsnprintf(tree, sizeof(tree), err, "%s/rootfs", staging) < 0 || mkdir(tree, 0755) < 0)
		return ferr_sys(err, FX_FAIL, "create %s", tree);
	return 0;
}

int image_import(const char *state_dir, const char *src, struct image_info *out, bool *existed,
		 ferr_t *err)
{
	char abs[PATH_MAX], staging[PATH_MAX], tree[PATH_MAX], sd[PATH_MAX];
	struct treepack_stats st;
	struct stat sb;
	int r;

	memset(out, 0, sizeof(*out));
	if (!realpath(src, abs) || stat(abs, &sb) < 0)
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "image source %s",
				src);
	/* libarchive's disk writer refuses symbolic links on its way down */
	if (fs_mkdir_p(state_dir, 0700, err) < 0 || !realpath(state_dir, sd))
		return ferr_sys(err, FX_FAIL, "state directory %s", state_dir);
	if (make_staging(sd, staging, sizeof(staging), err) < 0)
		return -1;
	snprintf(tree, sizeof(tree), "%s/rootfs", staging);
	r = S_ISDIR(sb.st_mode) ? treepack_copy_dir(abs, tree, &st, err)
				: treepack_extract_file(abs, tree, &st, err);
	if (r == 0) {
		snprintf(out->source, sizeof(out->source), "%s", abs);
		out->entries = st.entries;
		out->bytes = st.bytes;
		r = commit_staging(sd, staging, out, existed, err);
	}
	if (r < 0) {
		fs_rm_rf(staging, NULL);
		return ferr_wrap(err, "import %s", src);
	}
	return 0;
}

int image_adopt(const char *state_dir, const char *tree, const char *source,
		const struct treepack_stats *st, struct image_info *out, bool *existed, ferr_t *err)
{
	char staging[PATH_MAX], dst[PATH_MAX];

	memset(out, 0, sizeof(*out));
	if (make_staging(state_dir, staging, sizeof(staging), err) < 0)
		return -1;
	snprintf(dst, sizeof(dst), "%s/rootfs", staging);
	if (rmdir(dst) < 0 || rename(tree, dst) < 0) {
		ferr_sys(err, FX_FAIL, "move %s into the image store", tree);
		fs_rm_rf(staging, NULL);
		return -1;
	}
	snprintf(out->source, sizeof(out->source), "%s", source);
	out->entries = st ? st->entries : 0;
	out->bytes = st ? st->bytes : 0;
	if (commit_staging(state_dir, staging, out, existed, err) < 0) {
		fs_rm_rf(staging, NULL);
		return -1;
	}
	return 0;
}

int image_list(const char *state_dir, struct image_info **v, size_t *n, ferr_t *err)
{
	char dir[PATH_MAX];
	struct dirent **names;
	int cnt;

	*v = NULL;
	*n = 0;
	if (store_dir(state_dir, dir, sizeof(dir), err) < 0)
		return -1;
	if ((cnt = scandir(dir, &names, skip_dots, cmp_names)) < 0)
		return errno == ENOENT ? 0 : ferr_sys(err, FX_FAIL, "read %s", dir);
	*v = calloc((size_t)cnt + 1, sizeof(**v));
	for (int i = 0; i < cnt; i++) {
		if (*v && image_id_valid(names[i]->d_name) &&
		    image_info_load(state_dir, names[i]->d_name, &(*v)[*n], NULL) == 0)
			(*n)++;
		free(names[i]);
	}
	free(names);
	return *v ? 0 : ferr_set(err, FX_FAIL, "out of memory");
}

int image_find(const char *state_dir, const char *ref, char id[IMAGE_ID_LEN + 1], ferr_t *err)
{
	struct image_info *v;
	size_t n, hits = 0, len = strlen(ref);

	if (len < 8 || len > IMAGE_ID_LEN)
		return ferr_set(err, FX_NOTFOUND,
				"'%s' is neither a path nor an image id (or a prefix of 8 or more "
				"of its characters)",
				ref);
	if (image_list(state_dir, &v, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!strncmp(v[i].id, ref, len) && hits++ == 0)
			snprintf(id, IMAGE_ID_LEN + 1, "%s", v[i].id);
	free(v);
	if (hits == 1)
		return 0;
	return ferr_set(err, hits ? FX_CONFLICT : FX_NOTFOUND,
			hits ? "image id prefix '%s' is ambiguous"
			     : "no image '%s' in the store "
			       "(see 'ferry image ls')",
			ref);
}

/* Names of the tenants that use the image, ", "-separated, into users. */
static int image_users(const char *state_dir, const char *id, char *users, size_t len, ferr_t *err)
{
	struct tenant_rec *recs;
	size_t n, used = 0;

	users[0] = '\0';
	if (registry_list(state_dir, &recs, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(recs[i].image, id) && used + strlen(recs[i].name) + 3 < len)
			used += (size_t)snprintf(users + used, len - used, "%s%s", used ? ", " : "",
						 recs[i].name);
		tenant_rec_free(&recs[i]);
	}
	free(recs);
	return 0;
}

int image_remove(const char *state_dir, const char *id, ferr_t *err)
{
	char p[PATH_MAX], users[512];

	if (!image_present(state_dir, id))
		return ferr_set(err, FX_NOTFOUND, "no image %s in the store", id);
	if (image_users(state_dir, id, users, sizeof(users), err) < 0)
		return -1;
	if (users[0])
		return ferr_set(err, FX_CONFLICT,
				"image %.12s is used by tenant(s) %s: 'ferry rm' them first", id,
				users);
	if (xsnprintf(p, sizeof(p), err, "%s/images/%s", state_dir, id) < 0)
		return -1;
	return fs_rm_rf(p, err);
}
