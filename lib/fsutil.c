#include "lib/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int fs_fsync_dir(const char *path, ferr_t *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "open directory %s", path);
	if (fsync(fd) < 0) {
		ferr_sys(err, FX_FAIL, "fsync directory %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* A new temporary file next to path, named into tmp: created exclusively
 * and never through a symbolic link (whatever lies at its name is removed,
 * not followed); unique per process and thread. */
static int open_tmp(const char *path, char *tmp, size_t size, mode_t mode, ferr_t *err)
{
	static _Atomic unsigned seq;
	unsigned n = seq++;

	if (snprintf(tmp, size, "%s.tmp.%d.%u", path, (int)getpid(), n) >= (int)size)
		return ferr_set(err, FX_FAIL, "path too long: %s", path);
	for (int i = 0;; i++) {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST || i == 2 || (unlink(tmp) < 0 && errno != ENOENT))
			return ferr_sys(err, FX_FAIL, "create %s", tmp);
	}
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, ferr_t *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *p = data;
	int fd;

	fd = open_tmp(path, tmp, sizeof(tmp), mode, err);
	if (fd < 0)
		return -1;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ferr_sys(err, FX_FAIL, "write %s", tmp);
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		ferr_sys(err, FX_FAIL, "sync %s", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		ferr_sys(err, FX_FAIL, "close %s", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		ferr_sys(err, FX_FAIL, "rename %s to %s", tmp, path);
		goto fail;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	return fs_fsync_dir(dir, err);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

int fs_read_all(const char *path, char **buf, size_t *len, size_t max, ferr_t *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, n = 0;
	char *b;

	if (fd < 0)
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "open %s", path);
	b = malloc(cap + 1);
	if (!b) {
		close(fd);
		return ferr_set(err, FX_FAIL, "out of memory reading %s", path);
	}
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				free(b);
				close(fd);
				return ferr_set(err, FX_INTEGRITY, "%s is larger than %zu bytes",
						path, max);
			}
			cap *= 2;
			char *nb = realloc(b, cap + 1);
			if (!nb) {
				free(b);
				close(fd);
				return ferr_set(err, FX_FAIL, "out of memory reading %s", path);
			}
			b = nb;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ferr_sys(err, FX_FAIL, "read %s", path);
			free(b);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	b[n] = '\0';
	*buf = b;
	if (len)
		*len = n;
	return 0;
}

int fs_mkdir_p(const char *path, mode_t mode, ferr_t *err)
{
	char tmp[PATH_MAX];
	size_t l;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return ferr_set(err, FX_FAIL, "path too long: %s", path);
	l = strlen(tmp);
	while (l > 1 && tmp[l - 1] == '/')
		tmp[--l] = '\0';
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return ferr_sys(err, FX_FAIL, "mkdir %s", tmp);
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return ferr_sys(err, FX_FAIL, "mkdir %s", tmp);
	return 0;
}

static int rm_at(int dfd, const char *name, dev_t dev, ferr_t *err)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : ferr_sys(err, FX_FAIL, "stat %s", name);
	if (S_ISDIR(st.st_mode)) {
		if (st.st_dev != dev)
			return ferr_set(err, FX_FAIL, "refusing to remove mount point %s", name);
		int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return ferr_sys(err, FX_FAIL, "open %s", name);
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			return ferr_sys(err, FX_FAIL, "opendir %s", name);
		}
		struct dirent *de;
		int ret = 0;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (rm_at(dirfd(d), de->d_name, dev, err) < 0) {
				ret = -1;
				break;
			}
		}
		closedir(d);
		if (ret < 0)
			return ret;
		if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			return ferr_sys(err, FX_FAIL, "rmdir %s", name);
		return 0;
	}
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return ferr_sys(err, FX_FAIL, "unlink %s", name);
	return 0;
}

int fs_rm_rf(const char *path, ferr_t *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : ferr_sys(err, FX_FAIL, "stat %s", path);
	return rm_at(AT_FDCWD, path, st.st_dev, err);
}

int fs_name_is_safe(const char *name, size_t len)
{
	if (len == 0 || len > 255)
		return 0;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

int fs_relpath_is_safe(const char *path, size_t len)
{
	size_t start = 0;

	if (len == 0 || len > 4095 || path[0] == '/')
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || path[i] == '/') {
			if (!fs_name_is_safe(path + start, i - start))
				return 0;
			start = i + 1;
		}
	}
	return 1;
}

long fs_read_long(const char *path)
{
	char *buf = NULL;
	long v = -1;

	if (fs_read_all(path, &buf, NULL, 64, NULL) == 0) {
		v = strtol(buf, NULL, 10);
		free(buf);
	}
	return v;
}

static int openat2_in(int dirfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {.flags = (uint64_t)flags,
			       .mode = (flags & O_CREAT) ? mode : 0,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};

	return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
}

/* mkdir rel's parent directories inside root (rfd), each resolved in root. */
static void mkdirs_in_root(int rfd, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", rel);
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		char *name;
		int pfd;

		*p = '\0';
		name = strrchr(path, '/');
		if (name) {
			*name = '\0';
			pfd = openat2_in(rfd, *path ? path : "/",
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
			*name++ = '/';
		} else {
			pfd = dup(rfd);
			name = path;
		}
		if (pfd >= 0) {
			mkdirat(pfd, name, 0700); /* EEXIST: it stays what it is */
			close(pfd);
		}
		*p = '/';
	}
}

int fs_open_in_root(const char *root, const char *rel, int flags, mode_t mode, ferr_t *err)
{
	int rfd, fd;

	if (strlen(rel) >= PATH_MAX)
		return ferr_set(err, FX_FAIL, "path too long: %s", rel);
	rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "open %s", root);
	if (flags & O_CREAT)
		mkdirs_in_root(rfd, rel);
	fd = openat2_in(rfd, rel, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "open %s inside %s", rel,
			 root);
	close(rfd);
	return fd;
}
