/* A tenant's CRIU images under another ID range (idmap.h). */
#define LOG_PREFIX "idmap"
#include "criu/idmap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/criu_idmap.pb-c.h"
#include "criu/imgframe.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"

/* a userns or cgroup image stays far below this */
#define IDMAP_MAX_IMAGE (64U << 20)

uint32_t idmap_shift_id(const struct idmap_shift *s, uint32_t id)
{
	if (id >= s->from && id - s->from < s->count)
		return s->to + (id - s->from);
	return id;
}

/* ---- userns.img ---- */

static int shift_extents(FerryCriu__UidGidExtent **e, size_t n, const char *which,
			 const struct idmap_shift *s, unsigned *changed, ferr_t *err)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t lo = e[i]->lower_first, cnt = e[i]->count;
		if (!e[i]->has_lower_first || !e[i]->has_count || lo < s->from ||
		    lo + cnt > (uint64_t)s->from + s->count)
			return ferr_set(err, FX_INTEGRITY,
					"its %s maps to host IDs %llu-%llu, outside the range "
					"%u-%u it was dumped with",
					which, (unsigned long long)lo,
					(unsigned long long)(lo + cnt - (cnt > 0)), s->from,
					s->from + s->count - 1);
		e[i]->lower_first = idmap_shift_id(s, e[i]->lower_first);
		(*changed)++;
	}
	return 0;
}

static int fix_userns(ProtobufCMessage *msg, const struct idmap_shift *s, unsigned *changed,
		      ferr_t *err)
{
	FerryCriu__UsernsEntry *u = (FerryCriu__UsernsEntry *)msg;

	if (!u->n_uid_map || !u->n_gid_map)
		return ferr_set(err, FX_INTEGRITY, "its uid_map or gid_map is empty");
	if (shift_extents(u->uid_map, u->n_uid_map, "uid_map", s, changed, err) < 0 ||
	    shift_extents(u->gid_map, u->n_gid_map, "gid_map", s, changed, err) < 0)
		return -1;
	return 0;
}

/* ---- cgroup.img ---- */

static void shift_perms(FerryCriu__CgroupPerms *p, const struct idmap_shift *s, unsigned *changed)
{
	uint32_t u, g;

	if (!p)
		return;
	u = idmap_shift_id(s, p->uid);
	g = idmap_shift_id(s, p->gid);
	*changed += (p->has_uid && u != p->uid) + (p->has_gid && g != p->gid);
	if (p->has_uid)
		p->uid = u;
	if (p->has_gid)
		p->gid = g;
}

static void shift_dirs(FerryCriu__CgroupDirEntry **d, size_t n, const struct idmap_shift *s,
		       unsigned *changed, int depth)
{
	for (size_t i = 0; i < n && depth < 256; i++) {
		shift_perms(d[i]->dir_perms, s, changed);
		for (size_t k = 0; k < d[i]->n_properties; k++)
			shift_perms(d[i]->properties[k]->perms, s, changed);
		shift_dirs(d[i]->children, d[i]->n_children, s, changed, depth + 1);
	}
}

static int fix_cgroup(ProtobufCMessage *msg, const struct idmap_shift *s, unsigned *changed,
		      ferr_t *err)
{
	FerryCriu__CgroupEntry *c = (FerryCriu__CgroupEntry *)msg;

	(void)err;
	for (size_t i = 0; i < c->n_controllers; i++)
		shift_dirs(c->controllers[i]->dirs, c->controllers[i]->n_dirs, s, changed, 0);
	return 0;
}

/* ---- the image walk ---- */

typedef int (*fix_fn)(ProtobufCMessage *msg, const struct idmap_shift *s, unsigned *changed,
		      ferr_t *err);

static const struct {
	const char *name;
	uint32_t magic;
	const ProtobufCMessageDescriptor *desc;
	fix_fn fix;
} kinds[] = {
    [IDMAP_USERNS] = {"userns", CRIU_USERNS_MAGIC, &ferry_criu__userns_entry__descriptor,
		      fix_userns},
    [IDMAP_CGROUP] = {"cgroup", CRIU_CGROUP_MAGIC, &ferry_criu__cgroup_entry__descriptor,
		      fix_cgroup},
};

/* Entry p of n bytes, fixed and appended (length + message) to *o. */
static int fix_entry(enum idmap_image kind, const uint8_t *p, uint32_t n, size_t off,
		     const struct idmap_shift *s, uint8_t **o, size_t *olen, unsigned *changed,
		     ferr_t *err)
{
	ProtobufCMessage *msg = protobuf_c_message_unpack(kinds[kind].desc, NULL, n, p);
	uint8_t *np;
	uint32_t size;
	int ret = -1;

	if (!msg)
		return ferr_set(err, FX_INTEGRITY, "entry at offset %zu does not decode", off);
	if (kinds[kind].fix(msg, s, changed, err) < 0)
		goto out;
	size = (uint32_t)protobuf_c_message_get_packed_size(msg);
	if (!(np = realloc(*o, *olen + 4 + size))) {
		ferr_set(err, FX_FAIL, "out of memory rewriting an image");
		goto out;
	}
	*o = np;
	memcpy(np + *olen, &size, sizeof(size));
	protobuf_c_message_pack(msg, np + *olen + 4);
	*olen += 4 + (size_t)size;
	ret = 0;
out:
	protobuf_c_message_free_unpacked(msg, NULL);
	return ret;
}

static int walk(enum idmap_image kind, const uint8_t *in, size_t len, size_t hdr,
		const struct idmap_shift *s, uint8_t **o, size_t *olen, unsigned *changed,
		ferr_t *err)
{
	const uint8_t *e;
	size_t off = hdr;
	uint32_t n;
	int r;

	for (size_t at = off; (r = criu_img_next(in, len, &off, &e, &n, err)) > 0; at = off)
		if (fix_entry(kind, e, n, at, s, o, olen, changed, err) < 0)
			return -1;
	return r;
}

int idmap_image(enum idmap_image kind, const uint8_t *in, size_t len, const struct idmap_shift *s,
		uint8_t **out, size_t *out_len, unsigned *changed, ferr_t *err)
{
	uint8_t *o = NULL;
	size_t hdr, olen;

	*out = NULL;
	*out_len = 0;
	*changed = 0;
	if (criu_img_header(in, len, kinds[kind].magic, kinds[kind].name, &hdr, err) < 0)
		return -1;
	if (!(o = malloc(hdr)))
		return ferr_set(err, FX_FAIL, "out of memory rewriting an image");
	memcpy(o, in, hdr);
	olen = hdr;
	if (walk(kind, in, len, hdr, s, &o, &olen, changed, err) < 0) {
		free(o);
		return -1;
	}
	if (kind == IDMAP_USERNS && !*changed) {
		free(o);
		return ferr_set(err, FX_INTEGRITY, "it holds no user namespace");
	}
	if (!*changed) {
		free(o);
		return 0;
	}
	*out = o;
	*out_len = olen;
	return 0;
}

/* ---- an image set under the new range ---- */

static int copy_file(int sdfd, int ddfd, const char *name, mode_t mode, ferr_t *err)
{
	int in = openat(sdfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int out = in < 0 ? -1 : openat(ddfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	ssize_t n = 0;

	if (in >= 0 && out >= 0)
		while ((n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)) > 0)
			;
	if (in < 0 || out < 0 || n < 0)
		ferr_sys(err, FX_FAIL, "copy image %s", name);
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && n >= 0)
		return ferr_sys(err, FX_FAIL, "copy image %s", name);
	return in < 0 || out < 0 || n < 0 ? -1 : 0;
}

static int rewrite(const char *src, const char *dst, const char *name, enum idmap_image kind,
		   const struct idmap_shift *s, mode_t mode, unsigned *rewritten, ferr_t *err)
{
	char sp[PATH_MAX], dp[PATH_MAX];
	char *buf = NULL;
	uint8_t *out = NULL;
	size_t len = 0, olen = 0;
	unsigned changed = 0;
	int r = -1;

	if (xsnprintf_path(sp, sizeof(sp), src, name) < 0 ||
	    xsnprintf_path(dp, sizeof(dp), dst, name) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s", src);
	if (fs_read_all(sp, &buf, &len, IDMAP_MAX_IMAGE, err) < 0)
		return -1;
	if (idmap_image(kind, (const uint8_t *)buf, len, s, &out, &olen, &changed, err) < 0)
		ferr_wrap(err, "image %s", sp);
	else if (fs_write_atomic(dp, out ? out : (const uint8_t *)buf, out ? olen : len, mode,
				 err) == 0)
		r = 0;
	*rewritten += changed;
	free(buf);
	free(out);
	return r;
}

/* A link of src (e.g. "parent": the pre-copy round before) made absolute. */
static int relink(const char *src, const char *dst, const char *name, ferr_t *err)
{
	char sp[PATH_MAX], dp[PATH_MAX], to[PATH_MAX];

	if (xsnprintf_path(sp, sizeof(sp), src, name) < 0 ||
	    xsnprintf_path(dp, sizeof(dp), dst, name) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s", src);
	if (!realpath(sp, to))
		return ferr_sys(err, FX_INTEGRITY, "image set link %s", sp);
	if (symlink(to, dp) < 0)
		return ferr_sys(err, FX_FAIL, "link %s", dp);
	return 0;
}

/* userns-ID.img */
static bool is_userns_image(const char *name)
{
	size_t n = strlen(IDMAP_USERNS_PREFIX), l = strlen(name);

	if (strncmp(name, IDMAP_USERNS_PREFIX, n) || l < n + 5 || strcmp(name + l - 4, ".img"))
		return false;
	for (size_t i = n; i < l - 4; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return true;
}

static int one(const char *src, const char *dst, int sdfd, int ddfd, const char *name,
	       const struct idmap_shift *s, unsigned *rewritten, bool *userns, ferr_t *err)
{
	struct stat sb;

	if (fstatat(sdfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return ferr_sys(err, FX_FAIL, "image %s/%s", src, name);
	if (S_ISLNK(sb.st_mode))
		return relink(src, dst, name, err);
	if (!S_ISREG(sb.st_mode))
		return 0;
	if (is_userns_image(name)) {
		*userns = true;
		return rewrite(src, dst, name, IDMAP_USERNS, s, sb.st_mode & 0777, rewritten, err);
	}
	if (!strcmp(name, IDMAP_CGROUP_IMAGE))
		return rewrite(src, dst, name, IDMAP_CGROUP, s, sb.st_mode & 0777, rewritten, err);
	if (linkat(sdfd, name, ddfd, name, 0) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return ferr_sys(err, FX_FAIL, "link image %s/%s", src, name);
	return copy_file(sdfd, ddfd, name, sb.st_mode & 0777, err);
}

int idmap_dir(const char *src, const char *dst, const struct idmap_shift *s, unsigned *rewritten,
	      ferr_t *err)
{
	struct dirent *e;
	bool userns = false;
	int ddfd, r = 0;
	DIR *d;

	*rewritten = 0;
	if (mkdir(dst, 0700) < 0)
		return ferr_sys(err, FX_FAIL, "create %s", dst);
	if (!(d = opendir(src)))
		return ferr_sys(err, FX_NOTFOUND, "image set %s", src);
	if ((ddfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		closedir(d);
		return ferr_sys(err, FX_FAIL, "open %s", dst);
	}
	while (!r && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			r = one(src, dst, dirfd(d), ddfd, e->d_name, s, rewritten, &userns, err);
	closedir(d);
	close(ddfd);
	if (!r && !userns)
		r = ferr_set(err, FX_INTEGRITY,
			     "image set %s has no %sID.img: it was not dumped in a user namespace",
			     src, IDMAP_USERNS_PREFIX);
	if (!r)
		pr_info("%s: images under host IDs %u.. instead of %u.. in %s (%u IDs rewritten)",
			src, s->to, s->from, dst, *rewritten);
	return r;
}
