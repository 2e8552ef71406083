/* The checks of names from archives and peers (tenant/treepack.c) and the
 * image id's form (tenant/image.c): what may leave a tree is refused, what
 * stays inside is kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tenant/image.h"
#include "tenant/treepack.h"
#include "unit.h"

static void test_names(void)
{
	ferr_t e = {0};

	CHECK(treepack_check_name("etc/passwd", "entry", &e) == 0);
	CHECK(treepack_check_name(".", "entry", &e) == 0);
	CHECK(treepack_check_name("a/..b/c..", "entry", &e) == 0);
	CHECK(treepack_check_name("/etc/passwd", "entry", &e) < 0 && e.code == FX_INTEGRITY);
	CHECK(strstr(e.msg, "absolute") != NULL);
	CHECK(treepack_check_name("..", "entry", &e) < 0);
	CHECK(treepack_check_name("a/../../b", "entry", &e) < 0 && strstr(e.msg, "'..'"));
	CHECK(treepack_check_name("a//..", "entry", &e) < 0);
}

static void test_symlinks(void)
{
	ferr_t e = {0};

	CHECK(treepack_check_symlink("bin/sh", "busybox", &e) == 0);
	CHECK(treepack_check_symlink("etc/mtab", "../proc/self/mounts", &e) == 0);
	CHECK(treepack_check_symlink("lib", "usr/lib", &e) == 0);
	CHECK(treepack_check_symlink("usr/bin/awk", "/etc/alternatives/awk", &e) == 0);
	CHECK(treepack_check_symlink("a/b/c", "../../x", &e) == 0);
	CHECK(treepack_check_symlink("a/b/c", "../../../x", &e) < 0 && e.code == FX_INTEGRITY);
	CHECK(treepack_check_symlink("x", "../etc/shadow", &e) < 0);
	CHECK(treepack_check_symlink("./a/./b", "./../../x", &e) < 0);
	CHECK(treepack_check_symlink("a/b", "c/../../x/../..", &e) < 0);
}

static void test_ids(void)
{
	char id[IMAGE_ID_LEN + 2];

	memset(id, 'a', IMAGE_ID_LEN);
	id[IMAGE_ID_LEN] = '\0';
	CHECK(image_id_valid(id));
	id[3] = 'A';
	CHECK(!image_id_valid(id));
	id[3] = '/';
	CHECK(!image_id_valid(id));
	id[3] = 'a';
	id[IMAGE_ID_LEN - 1] = '\0';
	CHECK(!image_id_valid(id));
	CHECK(!image_id_valid(""));
}

/* Streams (treepack_pack_to, _list_to): what the sink got extracts to the
 * same tree; a failing sink fails the pack. */
struct mem {
	char *buf;
	size_t len;
	int fail_after; /* calls; < 0 never */
};

static int mem_sink(const void *b, size_t n, void *arg)
{
	struct mem *m = arg;

	if (m->fail_after == 0)
		return -1;
	if (m->fail_after > 0)
		m->fail_after--;
	char *nb = realloc(m->buf, m->len + n);
	if (!nb)
		return -1;
	memcpy(nb + m->len, b, n);
	m->buf = nb;
	m->len += n;
	return 0;
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if ((f = fopen(p, "w"))) {
		fputs(text, f);
		fclose(f);
	}
}

static int same(const char *dir, const char *name, const char *text)
{
	char p[512], got[64] = "";
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (!(f = fopen(p, "r")))
		return 0;
	size_t n = fread(got, 1, sizeof(got) - 1, f);
	fclose(f);
	got[n] = '\0';
	return !strcmp(got, text);
}

static int unpack(struct mem *m, const char *dest)
{
	char file[512];
	ferr_t e = {0};
	FILE *f;

	snprintf(file, sizeof(file), "%s.tar", dest);
	if (!(f = fopen(file, "w")))
		return -1;
	fwrite(m->buf, 1, m->len, f);
	fclose(f);
	mkdir(dest, 0755);
	int r = treepack_extract_file(file, dest, NULL, &e);
	unlink(file);
	return r;
}

static void test_streams(void)
{
	char tmp[] = "/tmp/ferry-unit-tp-XXXXXX", src[512], d1[512], d2[512], cmd[600];
	struct mem m = {.fail_after = -1};
	struct treepack_stats st;
	ferr_t e = {0};

	CHECK(mkdtemp(tmp) != NULL);
	snprintf(src, sizeof(src), "%s/src", tmp);
	snprintf(d1, sizeof(d1), "%s/d1", tmp);
	snprintf(d2, sizeof(d2), "%s/d2", tmp);
	mkdir(src, 0755);
	snprintf(cmd, sizeof(cmd), "%s/sub", src);
	mkdir(cmd, 0700);
	put(src, "a", "alpha\n");
	put(src, "sub/b", "beta\n");
	CHECK(treepack_pack_to(src, false, NULL, NULL, mem_sink, &m, &st, &e) == 0);
	CHECK(st.entries == 4 && st.bytes == 11);
	CHECK(unpack(&m, d1) == 0 && same(d1, "a", "alpha\n") && same(d1, "sub/b", "beta\n"));
	/* a list: only the entries named */
	char *rels[] = {"sub", "sub/b"};
	free(m.buf);
	m = (struct mem){.fail_after = -1};
	CHECK(treepack_pack_list_to(src, rels, 2, false, mem_sink, &m, &st, &e) == 0);
	CHECK(st.entries == 2);
	CHECK(unpack(&m, d2) == 0 && same(d2, "sub/b", "beta\n"));
	snprintf(cmd, sizeof(cmd), "%s/a", d2);
	CHECK(access(cmd, F_OK) < 0);
	/* the sink fails: so does the pack */
	free(m.buf);
	m = (struct mem){.fail_after = 0};
	CHECK(treepack_pack_to(src, false, NULL, NULL, mem_sink, &m, &st, &e) < 0);
	free(m.buf);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	RUN(test_names);
	RUN(test_symlinks);
	RUN(test_ids);
	RUN(test_streams);
	UNIT_DONE();
}
