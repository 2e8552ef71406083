/* File-system helpers. */
#ifndef FERRY_FSUTIL_H
#define FERRY_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/err.h"

/* Write data to path atomically: temp file in the same dir (created
 * exclusively, never through a symbolic link), fsync, rename, fsync of the
 * directory. A crash leaves either the old or the new file. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, ferr_t *err);
/* Read a whole (small) file; *buf is malloc'd and NUL-terminated. */
int fs_read_all(const char *path, char **buf, size_t *len, size_t max, ferr_t *err);
/* The decimal number at the start of a small file (a sysctl); -1 when it
 * cannot be read. */
long fs_read_long(const char *path);
/* mkdir -p */
int fs_mkdir_p(const char *path, mode_t mode, ferr_t *err);
/* rm -rf (does not cross mount points); missing path is not an error. */
int fs_rm_rf(const char *path, ferr_t *err);
/* Open rel (flags with O_CREAT: mode) inside the directory tree root, as
 * if root were "/" (openat2 RESOLVE_IN_ROOT): a symbolic link in the tree,
 * e.g. one a tenant planted in its own root file system, never leads out of
 * it. The last component is never followed (O_NOFOLLOW). Creates the missing
 * directories of rel the same way (mode 0700). Returns the fd. */
int fs_open_in_root(const char *root, const char *rel, int flags, mode_t mode, ferr_t *err);
/* fsync a directory by path. */
int fs_fsync_dir(const char *path, ferr_t *err);
/* A name is safe as one path component: not empty, not "." or "..",
 * no '/', no NUL, no control characters, at most 255 bytes. */
int fs_name_is_safe(const char *name, size_t len);
/* Relative path made of safe components separated by single '/'. */
int fs_relpath_is_safe(const char *path, size_t len);

#endif
