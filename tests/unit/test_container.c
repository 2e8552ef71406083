/* Container helpers for the restore stage: console log preparation and the
 * operator's symlink. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tenant/container.h"
#include "lib/fsutil.h"
#include "unit.h"

static char dir[] = "/tmp/ferry-unit-container-XXXXXX";

static void test_prepare_restore(void)
{
	char rootfs[PATH_MAX], log[PATH_MAX], *buf = NULL;
	ferr_t e = {0};
	struct stat st;

	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
	snprintf(log, sizeof(log), "%s/.ferry/console.log", rootfs);
	CHECK(mkdir(rootfs, 0755) == 0);
	CHECK(container_prepare_restore(rootfs, &e) == 0);
	CHECK(stat(log, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0);
	CHECK((st.st_mode & 0777) == 0600);
	CHECK(fs_write_atomic(log, "tick\n", 5, 0600, &e) == 0);
	CHECK(container_prepare_restore(rootfs, &e) == 0); /* keeps the content */
	CHECK(fs_read_all(log, &buf, NULL, 100, &e) == 0 && !strcmp(buf, "tick\n"));
	free(buf);
	e = (ferr_t){0};
	snprintf(log, sizeof(log), "%s/nosuch", dir);
	CHECK(container_prepare_restore(log, &e) < 0 && e.code == FX_NOTFOUND);
}

static void test_link_console(void)
{
	char rootfs[PATH_MAX], link[PATH_MAX], target[PATH_MAX], want[PATH_MAX];
	ferr_t e = {0};
	ssize_t n;

	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
	snprintf(link, sizeof(link), "%s/tenants/web1", dir);
	CHECK(fs_mkdir_p(link, 0700, &e) == 0);
	CHECK(container_link_console(dir, "web1", rootfs, &e) == 0);
	CHECK(container_link_console(dir, "web1", rootfs, &e) == 0); /* replaces */
	snprintf(link, sizeof(link), "%s/tenants/web1/console.log", dir);
	snprintf(want, sizeof(want), "%s/.ferry/console.log", rootfs);
	n = readlink(link, target, sizeof(target) - 1);
	CHECK(n > 0);
	if (n > 0) {
		target[n] = '\0';
		CHECK(!strcmp(target, want));
	}
	e = (ferr_t){0};
	CHECK(container_link_console(dir, "../x", rootfs, &e) < 0 && e.code == FX_USAGE);
}

int main(void)
{
	ferr_t e = {0};

	if (!mkdtemp(dir))
		return 1;
	RUN(test_prepare_restore);
	RUN(test_link_console);
	fs_rm_rf(dir, &e);
	UNIT_DONE();
}
