/* The checks of names from archives and peers (tenant/treepack.c) and the
 * image id's form (tenant/image.c): what may leave a tree is refused, what
 * stays inside is kept. */
#include <string.h>

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

int main(void)
{
	RUN(test_names);
	RUN(test_symlinks);
	RUN(test_ids);
	UNIT_DONE();
}
