/* A tenant's file tree in the snapshot store (snapshot/repo_tree.h), without
 * CRIU: every kind of entry round-trips (file, sparse file, hard link,
 * symbolic link, FIFO, whiteout device, xattr, owner, mode, mtime, the
 * root's own mode), an unchanged file is taken from the cache without being
 * read, a changed one is read again, a file changed within the cache's
 * clock tick is read again, and the diff names what changed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "snapshot/repo_tree.h"
#include "unit.h"

static char base[256], store[300], key[300], src[300];

static void put(const char *name, const char *data)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", src, name);
	f = fopen(p, "wb");
	fputs(data, f);
	fclose(f);
}

static int64_t now_rt(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void setup(void)
{
	struct repo_init_opts o = {0};
	char p[600];
	FILE *f;

	snprintf(base, sizeof(base), "/tmp/ferry-unit-tree.%d", getpid());
	snprintf(store, sizeof(store), "%s/store", base);
	snprintf(key, sizeof(key), "%s/key", base);
	snprintf(src, sizeof(src), "%s/src", base);
	fs_mkdir_p(src, 0700, NULL);
	fs_mkdir_p(store, 0700, NULL);
	chmod(src, 0751);
	snprintf(p, sizeof(p), "%s/d", src);
	mkdir(p, 0700);
	put("d/a", "hello tree");
	put("b", "other");
	snprintf(p, sizeof(p), "%s/sparse", src);
	f = fopen(p, "wb");
	fseek(f, 8 << 20, SEEK_SET);
	fputs("tail", f);
	fclose(f);
	char a[600], l[600];
	snprintf(a, sizeof(a), "%s/d/a", src);
	snprintf(l, sizeof(l), "%s/hl", src);
	CHECK(link(a, l) == 0);
	snprintf(l, sizeof(l), "%s/sl", src);
	CHECK(symlink("d/a", l) == 0);
	snprintf(l, sizeof(l), "%s/fifo", src);
	CHECK(mkfifo(l, 0640) == 0);
	snprintf(l, sizeof(l), "%s/wh", src);
	CHECK(mknod(l, S_IFCHR | 0000, makedev(0, 0)) == 0);
	CHECK(lsetxattr(a, "user.ferry", "x1", 2, 0) == 0 || errno == ENOTSUP);
	CHECK(chown(a, 1234, 5678) == 0);
	struct timespec ts[2] = {{1600000000, 123456789}, {1600000000, 123456789}};
	CHECK(utimensat(AT_FDCWD, a, ts, 0) == 0);
	o.dir = store;
	o.key_file = key;
	o.new_key = true;
	CHECK(repo_init(&o, NULL) == 0);
}

static const FerrySnap__File *find(const snapm_t *m, const char *path)
{
	for (size_t i = 0; i < m->n_files; i++)
		if (!strcmp(m->files[i]->path, path))
			return m->files[i];
	return NULL;
}

static void test_roundtrip(void)
{
	struct repo r;
	struct repo_stats st = {0};
	struct repo_tree_stats ts;
	struct repo_tree_opts o = {.part = FERRY_SNAP__FILE_PART__PART_ROOTFS};
	snapm_t *m = snapm_new("t", "container");
	char out[600], p[600], buf[64];
	struct stat s, s2;
	ferr_t err = {0};

	CHECK(repo_open(&r, store, key, &err) == 0);
	CHECK(repo_add_tree(&r, m, src, &o, &st, &ts, &err) == 0);
	CHECK(ts.entries == 9 && ts.reused == 0); /* . d d/a b sparse hl sl fifo wh */
	CHECK(find(m, "hl")->hardlink || find(m, "d/a")->hardlink);
	snprintf(out, sizeof(out), "%s/out", base);
	mkdir(out, 0700);
	CHECK(repo_extract_tree(&r, m, FERRY_SNAP__FILE_PART__PART_ROOTFS, out, &err) == 0);
	CHECK(stat(out, &s) == 0 && (s.st_mode & 07777) == 0751);
	snprintf(p, sizeof(p), "%s/d/a", out);
	CHECK(stat(p, &s) == 0 && s.st_uid == 1234 && s.st_gid == 5678 && s.st_nlink == 2);
	CHECK(s.st_mtim.tv_sec == 1600000000 && s.st_mtim.tv_nsec == 123456789);
	FILE *f = fopen(p, "r");
	CHECK(f && fgets(buf, sizeof(buf), f) && !strcmp(buf, "hello tree"));
	fclose(f);
	if (lgetxattr(p, "user.ferry", buf, sizeof(buf)) != -1 || errno != ENOTSUP)
		CHECK(lgetxattr(p, "user.ferry", buf, sizeof(buf)) == 2 && !memcmp(buf, "x1", 2));
	snprintf(p, sizeof(p), "%s/sparse", out);
	CHECK(stat(p, &s) == 0 && s.st_size == (8 << 20) + 4 && s.st_blocks < 1024);
	snprintf(p, sizeof(p), "%s/sl", out);
	CHECK(readlink(p, buf, sizeof(buf)) == 3 && !memcmp(buf, "d/a", 3));
	snprintf(p, sizeof(p), "%s/fifo", out);
	CHECK(lstat(p, &s) == 0 && S_ISFIFO(s.st_mode) && (s.st_mode & 0777) == 0640);
	snprintf(p, sizeof(p), "%s/wh", out);
	snprintf(buf, sizeof(buf), "%s", "");
	CHECK(lstat(p, &s2) == 0 && S_ISCHR(s2.st_mode) && s2.st_rdev == makedev(0, 0));
	snapm_free_built(m);
	repo_close(&r);
}

static int n_changes;
static char changes[8][64];

static void on_change(char kind, const FerrySnap__File *f, void *arg)
{
	(void)arg;
	if (n_changes < 8)
		snprintf(changes[n_changes], sizeof(changes[0]), "%c%s", kind, f->path);
	n_changes++;
}

static void test_cache(void)
{
	struct repo r;
	struct repo_stats st = {0}, st2 = {0}, st3 = {0};
	struct repo_tree_stats ts;
	snapm_t *m1 = snapm_new("t", "container"), *m2 = snapm_new("t", "container");
	snapm_t *m3 = snapm_new("t", "container");
	ferr_t err = {0};
	char p[600];

	CHECK(repo_open(&r, store, key, &err) == 0);
	struct repo_tree_opts o = {.part = FERRY_SNAP__FILE_PART__PART_ROOTFS};
	CHECK(repo_add_tree(&r, m1, src, &o, &st, &ts, &err) == 0);
	/* nothing changed; the cache was taken "later" than every ctime */
	o.cache = m1;
	o.trust_before_ns = now_rt();
	CHECK(repo_add_tree(&r, m2, src, &o, &st2, &ts, &err) == 0);
	CHECK(ts.reused == 3 && ts.read_bytes == 0 && st2.added == 0); /* d/a or hl, b, sparse */
	/* the same, but the cache's own capture was older than the files: read */
	o.trust_before_ns = 0;
	snapm_t *m2b = snapm_new("t", "container");
	CHECK(repo_add_tree(&r, m2b, src, &o, &st2, &ts, &err) == 0);
	CHECK(ts.reused == 0 && ts.read_bytes > 0);
	snapm_free_built(m2b);
	/* b changes, c appears, fifo goes */
	put("b", "other, changed");
	put("c", "new");
	snprintf(p, sizeof(p), "%s/fifo", src);
	unlink(p);
	o.trust_before_ns = now_rt() + 1000000000LL;
	CHECK(repo_add_tree(&r, m3, src, &o, &st3, &ts, &err) == 0);
	CHECK(ts.reused == 2 && st3.added > 0); /* d/a or hl, sparse (b changed) */
	CHECK(repo_tree_diff(m1, m3, on_change, NULL, &err) == 0);
	CHECK(n_changes == 3);
	CHECK(!strcmp(changes[0], "~b") || !strcmp(changes[1], "~b") || !strcmp(changes[2], "~b"));
	CHECK(!strcmp(changes[2], "-fifo"));
	snapm_free_built(m1);
	snapm_free_built(m2);
	snapm_free_built(m3);
	repo_close(&r);
}

int main(void)
{
	setup();
	RUN(test_roundtrip);
	RUN(test_cache);
	fs_rm_rf(base, NULL);
	UNIT_DONE();
}
