/* Manifest coding and verification, path safety. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "proto/manifest.h"
#include "unit.h"

static char dir[] = "/tmp/ferry-unit-manifest-XXXXXX";

static void write_file(const char *name, const char *data)
{
	char p[512];
	ferr_t e = {0};

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	CHECK(fs_write_atomic(p, data, strlen(data), 0644, &e) == 0);
}

static void test_roundtrip(void)
{
	ferr_t e = {0};
	manifest_t *m = manifest_new("web1", FERRY__TENANT_KIND__TENANT_CONTAINER), *r = NULL;

	CHECK(m && strlen(m->set_id) == 32);
	write_file("pages-1.img", "hello pages");
	write_file("core-1.img", "core");
	CHECK(manifest_add_dir(m, dir, NULL, &e) == 0);
	CHECK(m->n_files == 2);
	CHECK(!strcmp(m->files[0]->name, "core-1.img")); /* sorted */
	manifest_set_str(&m->rootfs, "/srv/rootfs");
	CHECK(manifest_write(dir, m, &e) == 0);
	CHECK(manifest_read(dir, &r, &e) == 0);
	CHECK(r && !strcmp(r->tenant_name, "web1") && !strcmp(r->set_id, m->set_id));
	CHECK(r && r->n_files == 2 && r->files[1]->size == 11);
	CHECK(manifest_total_size(r) == 15);
	CHECK(manifest_verify_files(dir, r, &e) == 0);
	CHECK(manifest_find(r, "core-1.img") != NULL);
	/* corrupt one byte: verify names the file */
	write_file("pages-1.img", "hellO pages");
	CHECK(manifest_verify_files(dir, r, &e) < 0);
	CHECK(e.code == FX_INTEGRITY && strstr(e.msg, "pages-1.img"));
	manifest_free(m);
	manifest_free(r);
}

static void test_bad_headers(void)
{
	ferr_t e = {0};
	manifest_t *m = manifest_new("x", FERRY__TENANT_KIND__TENANT_PROCTREE), *r = NULL;
	uint8_t *buf;
	size_t len;

	CHECK(manifest_encode(m, &buf, &len, &e) == 0);
	CHECK(manifest_decode(buf, len - 1, &r, &e) < 0 && strstr(e.msg, "truncated"));
	CHECK(manifest_decode(buf, 5, &r, &e) < 0 && strstr(e.msg, "truncated"));
	buf[7] = 9; /* version 9 */
	CHECK(manifest_decode(buf, len, &r, &e) < 0 && strstr(e.msg, "newer"));
	buf[7] = 1;
	buf[0] ^= 0xff;
	CHECK(manifest_decode(buf, len, &r, &e) < 0 && strstr(e.msg, "magic"));
	buf[0] ^= 0xff;
	CHECK(manifest_decode(buf, len, &r, &e) == 0);
	manifest_free(r);
	free(buf);
	manifest_free(m);
}

static void test_path_safety(void)
{
	CHECK(fs_relpath_is_safe("a/b.img", 7));
	CHECK(!fs_relpath_is_safe("../x", 4));
	CHECK(!fs_relpath_is_safe("/etc/passwd", 11));
	CHECK(!fs_relpath_is_safe("a//b", 4));
	CHECK(!fs_relpath_is_safe("a/../b", 6));
	CHECK(!fs_relpath_is_safe("a\0b", 3));
	CHECK(!fs_relpath_is_safe("", 0));
	CHECK(!fs_name_is_safe("..", 2));
	CHECK(fs_name_is_safe("..x", 3));
}

int main(void)
{
	ferr_t e = {0};

	if (!mkdtemp(dir))
		return 1;
	RUN(test_roundtrip);
	RUN(test_bad_headers);
	RUN(test_path_safety);
	fs_rm_rf(dir, &e);
	UNIT_DONE();
}
