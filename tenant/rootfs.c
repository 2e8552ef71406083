/* Overlay roots of image tenants (rootfs.h). */
#define LOG_PREFIX "rootfs"
#include "tenant/rootfs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <fcntl.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "lib/fsutil.h"
#include "lib/util.h"
#include "tenant/image.h"
#include "tenant/registry.h"

#define OVERLAY_MAGIC 0x794c7630

static int tenant_sub(const char *state_dir, const char *name, const char *sub, char *out,
		      size_t len, ferr_t *err)
{
	char dir[PATH_MAX];

	if (registry_tenant_dir(state_dir, name, dir, sizeof(dir), err) < 0)
		return -1;
	return xsnprintf(out, len, err, "%s/%s", dir, sub);
}

int rootfs_root(const char *state_dir, const char *name, char *out, size_t len, ferr_t *err)
{
	return tenant_sub(state_dir, name, "root", out, len, err);
}

int rootfs_upper(const char *state_dir, const char *name, char *out, size_t len, ferr_t *err)
{
	return tenant_sub(state_dir, name, "upper", out, len, err);
}

int rootfs_split(const char *root, char *state_dir, size_t len, const char **name, ferr_t *err)
{
	size_t n = strlen(root);

	if (n < 5 || strcmp(root + n - 5, "/root"))
		goto bad;
	if (xsnprintf(state_dir, len, err, "%.*s", (int)(n - 5), root) < 0)
		return -1;
	char *slash = strrchr(state_dir, '/');
	if (!slash || slash - state_dir < 8 || strncmp(slash - 8, "/tenants", 8))
		goto bad;
	*name = root + (slash - state_dir) + 1;
	slash[-8] = '\0';
	return 0;
bad:
	return ferr_set(err, FX_INTEGRITY, "%s is not the root of an image tenant", root);
}

bool rootfs_mounted(const char *root)
{
	char parent[PATH_MAX];
	struct statfs sf;
	struct stat a, b;

	if (statfs(root, &sf) < 0 || (unsigned long)sf.f_type != OVERLAY_MAGIC)
		return false;
	snprintf(parent, sizeof(parent), "%s/..", root);
	return stat(root, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

static int mount_overlay(const char *lower, const char *dir, const char *root, ferr_t *err)
{
	char upper[PATH_MAX], work[PATH_MAX], opts[3 * PATH_MAX + 64];

	if (strpbrk(lower, ",:") || strpbrk(dir, ",:"))
		return ferr_set(err, FX_USAGE,
				"overlay paths must not contain ',' or ':' (%s, %s): pick another "
				"state directory",
				lower, dir);
	if (xsnprintf(upper, sizeof(upper), err, "%s/upper", dir) < 0 ||
	    xsnprintf(work, sizeof(work), err, "%s/work", dir) < 0 ||
	    fs_mkdir_p(upper, 0755, err) < 0 || fs_mkdir_p(work, 0700, err) < 0 ||
	    fs_mkdir_p(root, 0755, err) < 0 ||
	    xsnprintf(opts, sizeof(opts), err, "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper,
		      work) < 0)
		return -1;
	if (mount("overlay", root, "overlay", MS_NOATIME, opts) < 0)
		return ferr_sys(err, errno == ENODEV ? FX_HOST : FX_FAIL, "mount overlay on %s",
				root);
	return 0;
}

int rootfs_mount_root(const char *root, const char *image_id, ferr_t *err)
{
	char sd[PATH_MAX], lower[PATH_MAX], dir[PATH_MAX];
	const char *name;

	if (rootfs_mounted(root))
		return 0;
	if (rootfs_split(root, sd, sizeof(sd), &name, err) < 0 ||
	    image_root(sd, image_id, lower, sizeof(lower), err) < 0)
		return -1;
	if (!image_present(sd, image_id))
		return ferr_set(err, FX_NOTFOUND,
				"image %s of tenant %s is not in this host's store (ferry image "
				"import, or a dump --with-image)",
				image_id, name);
	snprintf(dir, sizeof(dir), "%.*s", (int)(strlen(root) - 5), root);
	return mount_overlay(lower, dir, root, err);
}

int rootfs_mount(const char *state_dir, const char *name, const char *image_id, ferr_t *err)
{
	char root[PATH_MAX];

	if (rootfs_root(state_dir, name, root, sizeof(root), err) < 0)
		return -1;
	return rootfs_mount_root(root, image_id, err);
}

static int read_id(const char *dir, char out[33], ferr_t *err)
{
	int fd = fs_open_in_root(dir, ROOTFS_ID_FILE, O_RDONLY, 0, err);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, out, 32);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	if (n != 32 || strspn(out, "0123456789abcdef") != 32)
		return ferr_set(err, FX_INTEGRITY, "%s/" ROOTFS_ID_FILE " holds no identity", dir);
	return 0;
}

int rootfs_identity(const char *dir, bool create, char out[33], ferr_t *err)
{
	unsigned char rnd[16];
	ferr_t e = {0};
	int fd;

	if (read_id(dir, out, &e) == 0)
		return 0;
	if (!create || e.code != FX_NOTFOUND) {
		if (err)
			*err = e;
		return -1;
	}
	/* never into the host's own root (a tenant that runs in it, e.g. a
	 * process tree, has no tree of its own to tell apart) */
	char real[PATH_MAX];
	if (!realpath(dir, real) || !strcmp(real, "/"))
		return ferr_set(
		    err, FX_USAGE,
		    "%s is not a tenant's own root file system: no identity is written there", dir);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return ferr_set(err, FX_FAIL, "no random bytes for a root file system identity");
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
	fd = fs_open_in_root(dir, ROOTFS_ID_FILE, O_WRONLY | O_CREAT | O_EXCL, 0600, err);
	if (fd < 0)
		return ferr_wrap(err, "root file system identity");
	bool ok = write(fd, out, 32) == 32;
	close(fd);
	return ok ? 0 : ferr_sys(err, FX_FAIL, "write %s/" ROOTFS_ID_FILE, dir);
}

int rootfs_umount(const char *root, ferr_t *err)
{
	while (rootfs_mounted(root))
		if (umount2(root, MNT_DETACH) < 0)
			return errno == EINVAL ? 0 : ferr_sys(err, FX_FAIL, "unmount %s", root);
	return 0;
}
