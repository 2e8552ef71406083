/* File locks a move cannot carry (lockcheck.h): the tenant's processes'
 * fdinfo "lock:" lines, each lock's file system against this host's mounts. */
#define LOG_PREFIX "lockcheck"
#include "tenant/lockcheck.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/log.h"

struct held {
	pid_t pid;
	char kind[16]; /* POSIX, OFDLCK, FLOCK */
	char path[PATH_MAX];
};

static pid_t parent_of(pid_t pid)
{
	char p[64], buf[512], *r;
	FILE *f;
	int ppid = 0;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(p, "re")))
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	r = strrchr(buf, ')'); /* the command name may hold anything */
	if (!r || sscanf(r + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

/* pid is root or one of its descendants. */
static bool in_tree(pid_t pid, pid_t root)
{
	for (int depth = 0; pid > 1 && depth < 64; depth++) {
		if (pid == root)
			return true;
		pid = parent_of(pid);
	}
	return pid == root;
}

/* The file system dev is mounted in this process's mount namespace. */
static bool visible_here(dev_t dev)
{
	char line[1024];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool seen = false;

	if (!f)
		return true; /* cannot tell: assume the worst */
	while (!seen && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		if (sscanf(line, "%*d %*d %u:%u", &maj, &min) == 2 && makedev(maj, min) == dev)
			seen = true;
	}
	fclose(f);
	return seen;
}

/* The first lock held through fd of pid on a file system visible here. */
static bool fd_lock(pid_t pid, const char *fd, struct held *h)
{
	char p[96], line[512];
	struct stat st;
	FILE *f;
	bool found = false;

	snprintf(p, sizeof(p), "/proc/%d/fdinfo/%s", (int)pid, fd);
	if (!(f = fopen(p, "re")))
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char kind[16];
		/* "lock:\t1: POSIX  ADVISORY  WRITE 123 fe:00:456 0 EOF"; waiters
		 * ("1: -> POSIX ...") do not hold it */
		if (strncmp(line, "lock:", 5) || strstr(line, "->") ||
		    sscanf(line + 5, " %*d: %15s", kind) != 1)
			continue;
		snprintf(p, sizeof(p), "/proc/%d/fd/%s", (int)pid, fd);
		if (stat(p, &st) < 0 || !visible_here(st.st_dev))
			continue;
		h->pid = pid;
		snprintf(h->kind, sizeof(h->kind), "%s", kind);
		ssize_t n = readlink(p, h->path, sizeof(h->path) - 1);
		h->path[n > 0 ? n : 0] = '\0';
		found = true;
	}
	fclose(f);
	return found;
}

static bool proc_lock(pid_t pid, struct held *h)
{
	char p[64];
	struct dirent *e;
	DIR *d;
	bool found = false;

	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	if (!(d = opendir(p)))
		return false;
	while (!found && (e = readdir(d)))
		if (e->d_name[0] != '.')
			found = fd_lock(pid, e->d_name, h);
	closedir(d);
	return found;
}

/* The first process of root's tree with such a lock. */
static bool tree_lock(pid_t root, struct held *h)
{
	struct dirent *e;
	DIR *d = opendir("/proc");
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid_t pid = (pid_t)atoi(e->d_name);
		found = in_tree(pid, root) && proc_lock(pid, h);
	}
	closedir(d);
	return found;
}

int lock_check_movable(const char *name, pid_t root, ferr_t *err)
{
	const char *allow = getenv("FERRY_ALLOW_LOCKS");
	struct held h;

	if (root <= 0 || (allow && !strcmp(allow, "1")) || !tree_lock(root, &h))
		return 0;
	return ferr_set(
	    err, FX_CONFLICT,
	    "tenant %s holds a %s lock on %s (pid %d on this host): that file system is seen "
	    "outside the tenant and may be shared with the destination (NFS, a shared "
	    "disk, the same directory), whose restore would wait for the lock the frozen "
	    "source keeps until the handover; nothing was frozen (release the lock "
	    "before migrating, keep locked files on a tmpfs of the tenant's own, or set "
	    "FERRY_ALLOW_LOCKS=1 if the destination has its own copy of the file)",
	    name, h.kind, h.path[0] ? h.path : "(unknown path)", (int)h.pid);
}
