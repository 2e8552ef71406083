/* User namespaces of container tenants (userns.h). */
#include "tenant/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/util.h"
#include "tenant/registry.h"

static int write_file(const char *path, const char *s, ferr_t *err)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "open %s", path);
	n = write(fd, s, strlen(s));
	if (n < 0 || (size_t)n != strlen(s)) {
		int e = n < 0 ? errno : EIO;
		close(fd);
		errno = e;
		return ferr_sys(err, FX_FAIL, "write '%s' to %s", s, path);
	}
	close(fd);
	return 0;
}

int userns_write_maps(pid_t pid, uint32_t base, uint32_t count, ferr_t *err)
{
	char path[64], map[64];

	snprintf(map, sizeof(map), "0 %u %u\n", base, count);
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	if (write_file(path, map, err) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	return write_file(path, map, err);
}

bool userns_overlap(uint32_t a, uint32_t n, uint32_t b, uint32_t m)
{
	return (uint64_t)a < (uint64_t)b + m && (uint64_t)b < (uint64_t)a + n;
}

/* nftw has no user argument: the shift runs single-threaded in ferry's
 * own commands, these hold its parameters for the walk. */
static uint32_t shift_base, shift_count, shift_from;
static int shift_errno;
static char shift_path[PATH_MAX];

static uint32_t shifted(uint32_t id)
{
	if (id >= shift_base && id - shift_base < shift_count)
		return id;
	if (shift_from != shift_base && id >= shift_from && id - shift_from < shift_count)
		return shift_base + (id - shift_from);
	return id < shift_count ? id + shift_base : shift_base + 65534u % shift_count;
}

static int shift_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)flag;
	(void)f;
	uid_t u = shifted(sb->st_uid);
	gid_t g = shifted(sb->st_gid);
	if (u == sb->st_uid && g == sb->st_gid)
		return 0;
	/* lchown clears set-user/group-ID bits: put them back */
	if (lchown(path, u, g) < 0 ||
	    (!S_ISLNK(sb->st_mode) && (sb->st_mode & (S_ISUID | S_ISGID)) &&
	     chmod(path, sb->st_mode & 07777) < 0)) {
		shift_errno = errno;
		snprintf(shift_path, sizeof(shift_path), "%s", path);
		return 1;
	}
	return 0;
}

static int shift(const char *rootfs, uint32_t from, uint32_t base, uint32_t count, ferr_t *err)
{
	struct stat sb;

	if (lstat(rootfs, &sb) < 0)
		return ferr_sys(err, FX_FAIL, "rootfs %s", rootfs);
	/* a re-map always walks: a shift interrupted before the root (the
	 * last) is undone in full too */
	if (from == base && sb.st_uid == base)
		return 0;
	shift_base = base;
	shift_count = count;
	shift_from = from;
	shift_errno = 0;
	/* depth first: the root, which says the shift is done, comes last */
	int r = nftw(rootfs, shift_one, 64, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
	if (r == 1) {
		errno = shift_errno;
		return ferr_sys(err, FX_FAIL, "shift the owner of %s to the tenant's IDs",
				shift_path);
	}
	if (r < 0)
		return ferr_sys(err, FX_FAIL, "walk %s", rootfs);
	return 0;
}

int userns_shift_rootfs(const char *rootfs, uint32_t base, uint32_t count, ferr_t *err)
{
	return shift(rootfs, base, base, count, err);
}

int userns_reshift_rootfs(const char *rootfs, uint32_t from, uint32_t base, uint32_t count,
			  ferr_t *err)
{
	if (userns_overlap(from, count, base, count))
		return ferr_set(err, FX_INTEGRITY,
				"rootfs %s: host IDs %u.. and %u.. overlap: not shifted", rootfs,
				from, base);
	return shift(rootfs, from, base, count, err);
}

int userns_make_dev(const char *rootfs, uint32_t base, ferr_t *err)
{
	static const struct {
		const char *name;
		unsigned maj, min;
	} devs[] = {{"null", 1, 3},   {"zero", 1, 5},	 {"full", 1, 7},
		    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	char p[PATH_MAX];
	struct stat sb;

	static const char *const dirs[][2] = {
	    {"dev", "0755"}, {".ferry", "0700"}, {".ferry/dev", "0755"}};

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (xsnprintf(p, sizeof(p), err, "%s/%s", rootfs, dirs[i][0]) < 0)
			return -1;
		if (lstat(p, &sb) < 0 && (mkdir(p, (mode_t)strtol(dirs[i][1], NULL, 8)) < 0 ||
					  lchown(p, base, base) < 0))
			return ferr_sys(err, FX_FAIL, "create %s", p);
		if (lstat(p, &sb) < 0 || !S_ISDIR(sb.st_mode))
			return ferr_set(err, FX_USAGE, "rootfs: %s is not a directory", p);
	}
	for (size_t i = 0; i < ARRAY_SIZE(devs); i++) {
		dev_t d = makedev(devs[i].maj, devs[i].min);
		if (xsnprintf(p, sizeof(p), err, "%s/.ferry/dev/%s", rootfs, devs[i].name) < 0)
			return -1;
		if (lstat(p, &sb) == 0 && S_ISCHR(sb.st_mode) && sb.st_rdev == d)
			continue;
		if ((unlink(p) < 0 && errno != ENOENT) || mknod(p, S_IFCHR | 0666, d) < 0 ||
		    chmod(p, 0666) < 0 || lchown(p, base, base) < 0)
			return ferr_sys(err, FX_FAIL, "create device node %s", p);
	}
	return 0;
}

bool userns_of_pid(pid_t pid, uint32_t *base, uint32_t *count)
{
	char path[64];
	unsigned in, out, n;
	FILE *f;
	int k;

	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	if (!(f = fopen(path, "re")))
		return false;
	k = fscanf(f, "%u %u %u", &in, &out, &n);
	fclose(f);
	if (k != 3 || in != 0 || (out == 0 && n == 4294967295u))
		return false;
	*base = out;
	*count = n;
	return true;
}

/* A record holds its range while it can come back: not once it is gone. */
static bool holds_range(const struct tenant_rec *r)
{
	return r->iso.id_count && r->state != TS_GONE;
}

#define CLAIMS "userns-claims"

/* A claim of range base by a `ferry run` that is still alive. */
static bool claimed(int dfd, uint32_t base)
{
	char nm[16], buf[64] = "";
	int fd, pid = 0;
	ssize_t len;

	snprintf(nm, sizeof(nm), "%u", base);
	if ((fd = openat(dfd, nm, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0 || sscanf(buf, "%d", &pid) != 1 || pid <= 0)
		return false;
	return kill(pid, 0) == 0 || errno == EPERM;
}

static int claim(int dfd, uint32_t base, const char *name, ferr_t *err)
{
	char nm[16], buf[300];
	int fd, len;

	snprintf(nm, sizeof(nm), "%u", base);
	len = snprintf(buf, sizeof(buf), "%d %s\n", (int)getpid(), name);
	fd = openat(dfd, nm, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, (size_t)len) != len) {
		ferr_sys(err, FX_FAIL, "claim user ID range %u", base);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

uint32_t userns_first_slot(const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *c = name; *c; c++) {
		h ^= (unsigned char)*c;
		h *= 16777619u;
	}
	return h % USERNS_SLOTS;
}

static uint32_t first_free(const struct tenant_rec *recs, size_t n, int dfd, const char *name)
{
	uint32_t s0 = userns_first_slot(name);

	for (uint32_t k = 0; k < USERNS_SLOTS; k++) {
		uint32_t b = USERNS_FIRST + ((s0 + k) % USERNS_SLOTS) * USERNS_SIZE;
		bool used = claimed(dfd, b);
		for (size_t i = 0; i < n && !used; i++)
			used = holds_range(&recs[i]) &&
			       userns_overlap(b, USERNS_SIZE, recs[i].iso.id_base,
					      recs[i].iso.id_count);
		if (!used)
			return b;
	}
	return 0;
}

/* STATE/userns-claims, locked (flock on the directory) */
static int claims_open(const char *state_dir, ferr_t *err)
{
	char dir[PATH_MAX];
	int dfd;

	if (xsnprintf_path(dir, sizeof(dir), state_dir, CLAIMS) < 0)
		return ferr_set(err, FX_USAGE, "state directory path too long");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ferr_sys(err, FX_FAIL, "create %s", dir);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return ferr_sys(err, FX_FAIL, "open %s", dir);
	if (flock(dfd, LOCK_EX) < 0) {
		close(dfd);
		return ferr_sys(err, FX_FAIL, "lock %s", dir);
	}
	return dfd;
}

int userns_alloc(const char *state_dir, const char *name, uint32_t *base, ferr_t *err)
{
	struct tenant_rec *recs;
	size_t n;
	int dfd, r = 0;

	if ((dfd = claims_open(state_dir, err)) < 0)
		return -1;
	if (registry_list(state_dir, &recs, &n, err) < 0) {
		close(dfd);
		return -1;
	}
	*base = first_free(recs, n, dfd, name);
	for (size_t i = 0; i < n; i++)
		tenant_rec_free(&recs[i]);
	free(recs);
	if (!*base)
		r = ferr_set(err, FX_HOST, "every user ID range of this host is taken (%u tenants)",
			     USERNS_SLOTS);
	else
		r = claim(dfd, *base, name, err);
	close(dfd); /* drops the lock */
	return r;
}

void userns_unclaim(const char *state_dir, uint32_t base)
{
	char nm[16];
	int dfd;

	if (!base || (dfd = claims_open(state_dir, NULL)) < 0)
		return;
	snprintf(nm, sizeof(nm), "%u", base);
	unlinkat(dfd, nm, 0);
	close(dfd);
}

int userns_check_free(const char *state_dir, const char *name, uint32_t base, uint32_t count,
		      ferr_t *err)
{
	struct tenant_rec *recs;
	size_t n;
	int r = 0;

	if (!count)
		return 0;
	if (registry_list(state_dir, &recs, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!r && strcmp(recs[i].name, name) && holds_range(&recs[i]) &&
		    userns_overlap(base, count, recs[i].iso.id_base, recs[i].iso.id_count))
			r = ferr_set(err, FX_CONFLICT,
				     "tenant %s maps its users to host IDs %u-%u, which tenant %s "
				     "(%s) already uses here (%u-%u): two tenants never share IDs",
				     name, base, base + count - 1, recs[i].name,
				     tenant_state_str(recs[i].state), recs[i].iso.id_base,
				     recs[i].iso.id_base + recs[i].iso.id_count - 1);
		tenant_rec_free(&recs[i]);
	}
	free(recs);
	return r;
}
