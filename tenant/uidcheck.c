/* Processes of other users (uidcheck.h). */
#include "tenant/uidcheck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROBE_ID 65534 /* nobody */
#define TREE_MAX 4096

/* A child switches to another UID and GID, then waits for EOF on a pipe;
 * prlimit on it tells whether CRIU could read its rlimits. */
static bool probe(void)
{
	struct rlimit rl;
	int go[2], ready[2];
	bool ok = false;
	char c;
	pid_t pid;

	if (pipe2(go, O_CLOEXEC) < 0)
		return false;
	if (pipe2(ready, O_CLOEXEC) < 0) {
		close(go[0]);
		close(go[1]);
		return false;
	}
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(ready[0]);
		if (setresgid(PROBE_ID, PROBE_ID, PROBE_ID) == 0 &&
		    setresuid(PROBE_ID, PROBE_ID, PROBE_ID) == 0)
			(void)!write(ready[1], "r", 1);
		close(ready[1]);
		(void)!read(go[0], &c, 1);
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	if (pid > 0 && read(ready[0], &c, 1) == 1)
		ok = prlimit(pid, RLIMIT_NOFILE, NULL, &rl) == 0;
	close(ready[0]);
	close(go[1]);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	return ok;
}

bool uid_other_dumpable(void)
{
	static int cached = -1;

	if (cached < 0)
		cached = probe();
	return cached;
}

/* Whether pid's UIDs and GIDs (real, effective, saved) are all ours, in our
 * user namespace; *uid gets its real UID. */
static bool same_creds(pid_t pid, uid_t *uid)
{
	char p[64], line[256];
	unsigned v[4];
	bool same = true;
	struct stat a, b;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/ns/user", (int)pid);
	if (stat(p, &a) == 0 && stat("/proc/self/ns/user", &b) == 0 && a.st_ino != b.st_ino)
		return true; /* its own user namespace: root there has the capability */
	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	if (!(f = fopen(p, "re")))
		return true;
	while (fgets(line, sizeof(line), f)) {
		bool u = !strncmp(line, "Uid:", 4), g = !strncmp(line, "Gid:", 4);
		if ((!u && !g) || sscanf(line + 4, "%u %u %u %u", &v[0], &v[1], &v[2], &v[3]) != 4)
			continue;
		unsigned want = u ? getuid() : getgid();
		if (u)
			*uid = v[0];
		for (int i = 0; i < 3; i++)
			same = same && v[i] == want;
	}
	fclose(f);
	return same;
}

/* Appends the children of every thread of pid to list. */
static void add_children(pid_t pid, pid_t *list, size_t *n)
{
	char p[64];
	DIR *d;
	struct dirent *e;

	snprintf(p, sizeof(p), "/proc/%d/task", (int)pid);
	if (!(d = opendir(p)))
		return;
	while ((e = readdir(d)) && *n < TREE_MAX) {
		char cp[96], buf[4096], *s, *end;
		FILE *f;
		if (e->d_name[0] == '.')
			continue;
		snprintf(cp, sizeof(cp), "/proc/%d/task/%s/children", (int)pid, e->d_name);
		if (!(f = fopen(cp, "re")))
			continue;
		size_t got = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[got] = '\0';
		for (s = buf; *n < TREE_MAX; s = end) {
			long c = strtol(s, &end, 10);
			if (end == s)
				break;
			list[(*n)++] = (pid_t)c;
		}
	}
	closedir(d);
}

int uid_tree_other(pid_t root, pid_t *who, uid_t *uid)
{
	static pid_t list[TREE_MAX];
	size_t n = 0;

	if (root <= 0)
		return 0;
	list[n++] = root;
	for (size_t i = 0; i < n; i++) {
		uid_t u = 0;
		if (!same_creds(list[i], &u)) {
			*who = list[i];
			*uid = u;
			return 1;
		}
		add_children(list[i], list, &n);
	}
	return 0;
}

int uid_check_dumpable(const char *name, pid_t root, ferr_t *err)
{
	pid_t who;
	uid_t uid;

	if (uid_tree_other(root, &who, &uid) <= 0 || uid_other_dumpable())
		return 0;
	return ferr_set(
	    err, FX_HOST,
	    "tenant %s cannot be dumped on this host: its process %d runs as another "
	    "user (uid %u) and ferry lacks CAP_SYS_RESOURCE, so CRIU cannot read that "
	    "process's rlimits ('Can't get rlimit'); nothing was frozen (run ferry with "
	    "CAP_SYS_RESOURCE, or keep the tenant's processes under ferry's uid; see "
	    "`ferry check`, item other-users)",
	    name, (int)who, (unsigned)uid);
}
