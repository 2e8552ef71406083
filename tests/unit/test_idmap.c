/* A tenant's CRIU images under another ID range (criu/idmap.c). Images are
 * encoded here by hand, field by field in CRIU's order (images/userns.proto
 * and cgroup.proto of CRIU), so that the test also checks ferry's schema
 * (proto/criu_idmap.proto) against the layout CRIU writes. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/criu_idmap.pb-c.h"
#include "criu/idmap.h"
#include "criu/imgframe.h"
#include "lib/fsutil.h"
#include "tenant/userns.h"
#include "pbwire.h"
#include "unit.h"

static void image(struct pb *img, uint32_t magic, const struct pb *e)
{
	img->n = 0;
	put_u32(img, CRIU_IMG_COMMON_MAGIC);
	put_u32(img, magic);
	add_entry(img, e);
}

/* userns entry: one extent "first lower count" in each map, as CRIU dumps
 * /proc/PID/uid_map and gid_map */
static void userns_entry(struct pb *e, uint32_t first, uint32_t lower, uint32_t count)
{
	struct pb x = {0};

	pb_u64(&x, 1, first);
	pb_u64(&x, 2, lower);
	pb_u64(&x, 3, count);
	e->n = 0;
	pb_bytes(e, 1, x.b, x.n);
	pb_bytes(e, 2, x.b, x.n);
}

static const struct idmap_shift sh = {.from = 100000, .to = 300000, .count = 65536};

static void test_shift_id(void)
{
	CHECK(idmap_shift_id(&sh, 100000) == 300000);
	CHECK(idmap_shift_id(&sh, 165535) == 365535);
	CHECK(idmap_shift_id(&sh, 165536) == 165536);
	CHECK(idmap_shift_id(&sh, 99999) == 99999);
	CHECK(idmap_shift_id(&sh, 0) == 0);
}

/* The maps' host side moves to the new range, byte for byte what CRIU
 * would have written for a namespace made there. */
static void test_userns_image(void)
{
	struct pb e = {0}, img = {0}, want_e = {0}, want = {0};
	uint8_t *out = NULL;
	size_t out_len = 0;
	unsigned changed = 0;
	ferr_t err = {0};

	userns_entry(&e, 0, 100000, 65536);
	image(&img, CRIU_USERNS_MAGIC, &e);
	userns_entry(&want_e, 0, 300000, 65536);
	image(&want, CRIU_USERNS_MAGIC, &want_e);
	CHECK(idmap_image(IDMAP_USERNS, img.b, img.n, &sh, &out, &out_len, &changed, &err) == 0);
	CHECK(changed == 2);
	CHECK(out && out_len == want.n && !memcmp(out, want.b, want.n));
	FerryCriu__UsernsEntry *u =
	    ferry_criu__userns_entry__unpack(NULL, out_len - 12, out ? out + 12 : want.b + 12);
	CHECK(u && u->n_uid_map == 1 && u->uid_map[0]->first == 0 &&
	      u->uid_map[0]->lower_first == 300000 && u->gid_map[0]->count == 65536);
	ferry_criu__userns_entry__free_unpacked(u, NULL);
	free(out);
}

/* A map that reaches outside the range it was dumped with, a bad magic, a
 * truncated entry: refused, nothing written. */
static void test_userns_refused(void)
{
	struct pb e = {0}, img = {0};
	uint8_t *out = (uint8_t *)1;
	size_t out_len = 0;
	unsigned changed = 0;
	ferr_t err = {0};

	userns_entry(&e, 0, 100000 + 1, 65536);
	image(&img, CRIU_USERNS_MAGIC, &e);
	CHECK(idmap_image(IDMAP_USERNS, img.b, img.n, &sh, &out, &out_len, &changed, &err) < 0);
	CHECK(err.code == FX_INTEGRITY && strstr(err.msg, "outside the range") && !out);
	userns_entry(&e, 0, 100000, 65536);
	image(&img, CRIU_CGROUP_MAGIC, &e);
	ferr_clear(&err);
	CHECK(idmap_image(IDMAP_USERNS, img.b, img.n, &sh, &out, &out_len, &changed, &err) < 0);
	CHECK(err.code == FX_INTEGRITY && strstr(err.msg, "not a CRIU userns image"));
	image(&img, CRIU_USERNS_MAGIC, &e);
	ferr_clear(&err);
	CHECK(idmap_image(IDMAP_USERNS, img.b, img.n - 3, &sh, &out, &out_len, &changed, &err) < 0);
	CHECK(err.code == FX_INTEGRITY && strstr(err.msg, "runs past the end"));
	img.n = 8; /* header only: no namespace in it */
	ferr_clear(&err);
	CHECK(idmap_image(IDMAP_USERNS, img.b, img.n, &sh, &out, &out_len, &changed, &err) < 0);
	CHECK(err.code == FX_INTEGRITY);
}

static void perms(struct pb *p, unsigned field, uint32_t mode, uint32_t uid, uint32_t gid)
{
	struct pb x = {0};

	pb_u64(&x, 1, mode);
	pb_u64(&x, 2, uid);
	pb_u64(&x, 3, gid);
	pb_bytes(p, field, x.b, x.n);
}

/* cgroup entry: a set (no IDs), one controller with a directory owned by
 * uid in the range and gid outside, a property owned by the host's root */
static void cgroup_entry(struct pb *e, uint32_t uid)
{
	struct pb set = {0}, member = {0}, prop = {0}, dir = {0}, ctl = {0};

	pb_bytes(&member, 1, "memory", 6);
	pb_bytes(&member, 2, "/ferry-t", 8);
	pb_u64(&set, 1, 1);
	pb_bytes(&set, 2, member.b, member.n);
	pb_bytes(&prop, 1, "memory.limit_in_bytes", 21);
	pb_bytes(&prop, 2, "1073741824", 10);
	perms(&prop, 3, 0644, 0, 0);
	pb_bytes(&dir, 1, "ferry-t", 7);
	pb_bytes(&dir, 3, prop.b, prop.n);
	perms(&dir, 4, 0755, uid, 5);
	pb_bytes(&ctl, 1, "memory", 6);
	pb_bytes(&ctl, 2, dir.b, dir.n);
	e->n = 0;
	pb_bytes(e, 1, set.b, set.n);
	pb_bytes(e, 2, ctl.b, ctl.n);
}

static void test_cgroup_image(void)
{
	struct pb e = {0}, img = {0};
	uint8_t *out = NULL;
	size_t out_len = 0;
	unsigned changed = 9;
	ferr_t err = {0};

	cgroup_entry(&e, 0); /* nothing of the range: left as it is */
	image(&img, CRIU_CGROUP_MAGIC, &e);
	CHECK(idmap_image(IDMAP_CGROUP, img.b, img.n, &sh, &out, &out_len, &changed, &err) == 0);
	CHECK(!out && changed == 0);
	cgroup_entry(&e, 100007);
	image(&img, CRIU_CGROUP_MAGIC, &e);
	CHECK(idmap_image(IDMAP_CGROUP, img.b, img.n, &sh, &out, &out_len, &changed, &err) == 0);
	CHECK(out && changed == 1 && out_len == img.n);
	if (!out)
		return;
	FerryCriu__CgroupEntry *c = ferry_criu__cgroup_entry__unpack(NULL, out_len - 12, out + 12);
	CHECK(c && c->n_controllers == 1 && c->controllers[0]->n_dirs == 1);
	if (c && c->n_controllers == 1 && c->controllers[0]->n_dirs == 1) {
		FerryCriu__CgroupDirEntry *d = c->controllers[0]->dirs[0];
		CHECK(d->dir_perms->uid == 300007 && d->dir_perms->gid == 5);
		CHECK(d->dir_perms->mode == 0755 && !strcmp(d->dir_name, "ferry-t"));
		CHECK(d->n_properties == 1 && d->properties[0]->perms->uid == 0);
		/* the sets, unknown to ferry's schema, come back as they were */
		CHECK(c->base.n_unknown_fields == 1 && c->base.unknown_fields[0].tag == 1);
	}
	ferry_criu__cgroup_entry__free_unpacked(c, NULL);
	free(out);
}

static void write_file(const char *dir, const char *name, const void *d, size_t n)
{
	char p[512];
	ferr_t err = {0};

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	CHECK(fs_write_atomic(p, d, n, 0600, &err) == 0);
}

/* A set under the new range: images rewritten, the rest linked, the
 * source untouched, the pre-copy parent link made absolute. */
static void test_dir(void)
{
	char base[] = "/tmp/ferry-idmap-XXXXXX", src[600], dst[600], par[600], p[700], l[700];
	struct pb e = {0}, img = {0};
	struct stat a, b;
	unsigned n = 0;
	ferr_t err = {0};

	CHECK(mkdtemp(base) != NULL);
	snprintf(src, sizeof(src), "%s/set", base);
	snprintf(par, sizeof(par), "%s/round-1", base);
	snprintf(dst, sizeof(dst), "%s/out", base);
	CHECK(mkdir(src, 0700) == 0 && mkdir(par, 0700) == 0);
	userns_entry(&e, 0, 100000, 65536);
	image(&img, CRIU_USERNS_MAGIC, &e);
	write_file(src, "userns-11.img", img.b, img.n);
	write_file(src, "pages-1.img", "PAGES", 5);
	snprintf(p, sizeof(p), "%s/parent", src);
	CHECK(symlink("../round-1", p) == 0);
	CHECK(idmap_dir(src, dst, &sh, &n, &err) == 0);
	CHECK(n == 2);
	snprintf(p, sizeof(p), "%s/pages-1.img", src);
	snprintf(l, sizeof(l), "%s/pages-1.img", dst);
	CHECK(stat(p, &a) == 0 && stat(l, &b) == 0 && a.st_ino == b.st_ino);
	snprintf(p, sizeof(p), "%s/userns-11.img", src);
	snprintf(l, sizeof(l), "%s/userns-11.img", dst);
	CHECK(stat(p, &a) == 0 && stat(l, &b) == 0 && a.st_ino != b.st_ino);
	char *buf = NULL;
	size_t len = 0;
	CHECK(fs_read_all(p, &buf, &len, 1 << 20, &err) == 0);
	CHECK(buf && len == img.n && !memcmp(buf, img.b, len)); /* the source as it was */
	free(buf);
	snprintf(p, sizeof(p), "%s/parent", dst);
	ssize_t k = readlink(p, l, sizeof(l) - 1);
	CHECK(k > 0 && l[0] == '/' && !strncmp(l + k - 8, "/round-1", 8));
	/* again into an existing directory: refused; a set without a
	 * namespace: refused */
	CHECK(idmap_dir(src, dst, &sh, &n, &err) < 0);
	snprintf(p, sizeof(p), "%s/userns-11.img", src);
	CHECK(unlink(p) == 0);
	snprintf(dst, sizeof(dst), "%s/out2", base);
	ferr_clear(&err);
	CHECK(idmap_dir(src, dst, &sh, &n, &err) < 0 && err.code == FX_INTEGRITY);
	CHECK(strstr(err.msg, "not dumped in a user namespace") != NULL);
	fs_rm_rf(base, NULL);
}

/* A tenant's files from the old range to the new one and back
 * (tenant/userns.c; root only: lchown). */
static void test_reshift(void)
{
	char base[] = "/tmp/ferry-reshift-XXXXXX", p[600];
	static const struct {
		const char *name;
		uid_t uid;  /* before */
		uid_t want; /* after 100000.. -> 300000.. */
		mode_t mode;
	} f[] = {
	    {"a", 100000, 300000, 0644},	  /* the tenant's root */
	    {"b", 100000 + 65534, 365534, 04755}, /* its nobody, set-uid kept */
	    {"c", 0, 300000, 0600},		  /* the host's root: as at creation */
	    {"d", 300005, 300005, 0600},	  /* the new range already */
	};
	struct stat sb;
	ferr_t err = {0};

	if (geteuid() != 0)
		return;
	CHECK(mkdtemp(base) != NULL);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", base, f[i].name);
		write_file(base, f[i].name, "x", 1);
		CHECK(lchown(p, f[i].uid, f[i].uid) == 0 && chmod(p, f[i].mode) == 0);
	}
	CHECK(lchown(base, 100000, 100000) == 0);
	CHECK(userns_reshift_rootfs(base, 100000, 300000, 65536, &err) == 0);
	CHECK(stat(base, &sb) == 0 && sb.st_uid == 300000);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", base, f[i].name);
		CHECK(stat(p, &sb) == 0 && sb.st_uid == f[i].want && sb.st_gid == f[i].want);
		CHECK((sb.st_mode & 07777) == f[i].mode);
	}
	/* back, as a failed restore does */
	CHECK(userns_reshift_rootfs(base, 300000, 100000, 65536, &err) == 0);
	snprintf(p, sizeof(p), "%s/b", base);
	CHECK(stat(p, &sb) == 0 && sb.st_uid == 165534 && (sb.st_mode & 07777) == 04755);
	CHECK(stat(base, &sb) == 0 && sb.st_uid == 100000);
	CHECK(userns_reshift_rootfs(base, 100000, 130000, 65536, &err) < 0); /* overlapping */
	CHECK(err.code == FX_INTEGRITY);
	fs_rm_rf(base, NULL);
}

int main(void)
{
	RUN(test_shift_id);
	RUN(test_userns_image);
	RUN(test_userns_refused);
	RUN(test_cgroup_image);
	RUN(test_dir);
	RUN(test_reshift);
	UNIT_DONE();
}
