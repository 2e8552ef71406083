/* A cgroup per container tenant (cgroup.h). */
#include "tenant/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#define HOST_PIDNS_INO 0xEFFFFFFCUL /* PROC_PID_INIT_INO */

static const char *const v1_ctrls[] = {"memory", "pids", "cpu", "cpuacct", "blkio", "devices"};

/* The mount point of hierarchy ctrl ("" for cgroup2) into mnt. */
static bool find_mount(const char *ctrl, char *mnt, size_t len)
{
	char line[1024];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[512], fstype[64], opts[512];
		char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %511s", mp) != 1 ||
		    sscanf(sep + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		if (!*ctrl) {
			found = !strcmp(fstype, "cgroup2");
		} else if (!strcmp(fstype, "cgroup")) {
			for (char *save = NULL, *t = strtok_r(opts, ",", &save); t && !found;
			     t = strtok_r(NULL, ",", &save))
				found = !strcmp(t, ctrl);
		}
		if (found)
			snprintf(mnt, len, "%s", mp);
	}
	fclose(f);
	return found;
}

/* ferry's own cgroup in hierarchy ctrl ("" for v2: the "0::" line). */
static bool own_cgroup(const char *ctrl, char *path, size_t len)
{
	char line[1024];
	FILE *f = fopen("/proc/self/cgroup", "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*b = '\0';
		line[strcspn(line, "\n")] = '\0';
		b[1 + strcspn(b + 1, "\n")] = '\0';
		if (!*ctrl) { /* "0::/PATH" */
			found = a == line + 1 && line[0] == '0' && a + 1 == b;
		} else {
			for (char *save = NULL, *t = strtok_r(a + 1, ",", &save); t && !found;
			     t = strtok_r(NULL, ",", &save))
				found = !strcmp(t, ctrl);
		}
		if (found)
			snprintf(path, len, "%s", b + 1);
	}
	fclose(f);
	return found;
}

static bool v2_usable(char *mnt, size_t len)
{
	char p[600], buf[256] = "";
	FILE *f;

	if (!find_mount("", mnt, len) || snprintf(p, sizeof(p), "%s/cgroup.controllers", mnt) < 0)
		return false;
	if (!(f = fopen(p, "re")))
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strstr(buf, "memory") && strstr(buf, "pids");
}

static void leaf_name(const char *name, char *out, size_t len)
{
	struct stat sb;

	if (stat("/proc/self/ns/pid", &sb) == 0 && sb.st_ino != HOST_PIDNS_INO)
		snprintf(out, len, "ferry-%s-p%lu", name, (unsigned long)sb.st_ino);
	else
		snprintf(out, len, "ferry-%s", name);
}

static int add_h(struct tenant_cg *cg, const char *ctrl, const char *mnt, const char *leaf,
		 ferr_t *err)
{
	const char *parent = getenv("FERRY_CGROUP_PARENT");
	char own[256];

	if (!parent || !*parent) {
		if (!own_cgroup(ctrl, own, sizeof(own)))
			return ferr_set(err, FX_HOST, "cannot tell ferry's own %s cgroup",
					*ctrl ? ctrl : "v2");
		parent = own;
	}
	if (parent[0] != '/' || strstr(parent, ".."))
		return ferr_set(err, FX_USAGE,
				"FERRY_CGROUP_PARENT %s: must be an absolute path inside the "
				"hierarchy, without '..'",
				parent);
	int i = cg->n++;
	snprintf(cg->h[i].ctrl, sizeof(cg->h[i].ctrl), "%s", ctrl);
	if (xsnprintf(cg->h[i].rel, sizeof(cg->h[i].rel), err, "%s/%s",
		      strcmp(parent, "/") ? parent : "", leaf) < 0 ||
	    xsnprintf(cg->h[i].dir, sizeof(cg->h[i].dir), err, "%s%s", mnt, cg->h[i].rel) < 0)
		return -1;
	return 0;
}

int cgroup_locate(const char *name, struct tenant_cg *cg, ferr_t *err)
{
	char mnt[256], leaf[128];

	memset(cg, 0, sizeof(*cg));
	leaf_name(name, leaf, sizeof(leaf));
	if (v2_usable(mnt, sizeof(mnt))) {
		cg->v2 = true;
		return add_h(cg, "", mnt, leaf, err);
	}
	for (size_t i = 0; i < ARRAY_SIZE(v1_ctrls); i++) {
		if (!find_mount(v1_ctrls[i], mnt, sizeof(mnt))) {
			if (i < 2)
				return ferr_set(err, FX_HOST,
						"no cgroup v2 with memory and pids, and no v1 %s "
						"hierarchy: tenants cannot get limits on this host",
						v1_ctrls[i]);
			continue;
		}
		if (add_h(cg, v1_ctrls[i], mnt, leaf, err) < 0)
			return -1;
	}
	return 0;
}

static int put(const char *dir, const char *file, const char *val, ferr_t *err)
{
	char p[512];
	int fd;

	if (xsnprintf(p, sizeof(p), err, "%s/%s", dir, file) < 0)
		return -1;
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return ferr_sys(err, errno == ENOENT ? FX_HOST : FX_FAIL, "cgroup file %s", p);
	ssize_t n = write(fd, val, strlen(val));
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return ferr_sys(err, FX_FAIL, "write '%s' to %s", val, p);
	}
	return 0;
}

static int putl(const char *dir, const char *file, int64_t v, ferr_t *err)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", (long long)v);
	return put(dir, file, num, err);
}

/* The devices a tenant may use: its /dev (userns_make_dev) and ptys. */
static int devices_allow(const char *dir, ferr_t *err)
{
	static const char *const allow[] = {"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
					    "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm",
					    "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"};
	if (put(dir, "devices.deny", "a", err) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(allow); i++)
		if (put(dir, "devices.allow", allow[i], err) < 0)
			return -1;
	return 0;
}

static int setup_v1(const char *ctrl, const char *dir, const struct tenant_iso *iso, ferr_t *err)
{
	if (!strcmp(ctrl, "memory") && iso->mem_max) {
		/* swap counts too where the kernel accounts it; memsw must stay
		 * >= the limit at every step (a reused cgroup may hold others) */
		char p[512];
		snprintf(p, sizeof(p), "%s/memory.memsw.limit_in_bytes", dir);
		bool memsw = access(p, F_OK) == 0;
		if ((memsw && put(dir, "memory.memsw.limit_in_bytes", "-1", err) < 0) ||
		    putl(dir, "memory.limit_in_bytes", iso->mem_max, err) < 0 ||
		    (memsw && putl(dir, "memory.memsw.limit_in_bytes", iso->mem_max, err) < 0))
			return -1;
	}
	if (!strcmp(ctrl, "pids") && iso->pids_max && putl(dir, "pids.max", iso->pids_max, err) < 0)
		return -1;
	if (!strcmp(ctrl, "cpu") && iso->cpu_milli &&
	    (putl(dir, "cpu.cfs_period_us", 100000, err) < 0 ||
	     putl(dir, "cpu.cfs_quota_us", iso->cpu_milli * 100, err) < 0))
		return -1;
	if (!strcmp(ctrl, "blkio") && iso->io_weight &&
	    putl(dir, "blkio.weight", iso->io_weight, err) < 0 &&
	    putl(dir, "blkio.bfq.weight", iso->io_weight, (ferr_clear(err), err)) < 0)
		return ferr_set(err, FX_HOST,
				"--io-weight: this host's block I/O scheduler has no weights "
				"(no blkio.weight or blkio.bfq.weight)");
	if (!strcmp(ctrl, "devices") && devices_allow(dir, err) < 0)
		return -1;
	return 0;
}

static int setup_v2(const char *dir, const struct tenant_iso *iso, ferr_t *err)
{
	char v[64];

	if (iso->mem_max && putl(dir, "memory.max", iso->mem_max, err) < 0)
		return -1;
	if (iso->pids_max && putl(dir, "pids.max", iso->pids_max, err) < 0)
		return -1;
	snprintf(v, sizeof(v), "%lld 100000", (long long)iso->cpu_milli * 100);
	if (iso->cpu_milli && put(dir, "cpu.max", v, err) < 0)
		return -1;
	if (iso->io_weight && putl(dir, "io.weight", iso->io_weight, err) < 0)
		return -1;
	return 0;
}

/* v2: the controllers must be enabled in the parent's subtree_control. */
static int enable_v2(const char *dir, ferr_t *err)
{
	char parent[320];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", dir);
	if (!(slash = strrchr(parent, '/')))
		return 0;
	*slash = '\0';
	if (put(parent, "cgroup.subtree_control", "+memory +pids +cpu +io", err) < 0 &&
	    put(parent, "cgroup.subtree_control", "+memory +pids", (ferr_clear(err), err)) < 0)
		return ferr_wrap(err,
				 "enable the memory and pids controllers below %s (a v2 "
				 "cgroup with processes cannot: set FERRY_CGROUP_PARENT)",
				 parent);
	return 0;
}

int cgroup_setup(const struct tenant_cg *cg, const struct tenant_iso *iso, ferr_t *err)
{
	for (int i = 0; i < cg->n; i++) {
		const char *dir = cg->h[i].dir;
		if (cg->v2 && enable_v2(dir, err) < 0)
			return -1;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return ferr_sys(err, FX_FAIL, "create cgroup %s", dir);
		if (cg->v2 ? setup_v2(dir, iso, err) < 0
			   : setup_v1(cg->h[i].ctrl, dir, iso, err) < 0) {
			cgroup_remove(cg);
			return ferr_wrap(err, "limits of the tenant's cgroup");
		}
	}
	return 0;
}

int cgroup_join_self(const struct tenant_cg *cg)
{
	char p[400];

	for (int i = 0; i < cg->n; i++) {
		size_t l = strlen(cg->h[i].dir);
		if (l + sizeof("/cgroup.procs") > sizeof(p))
			return -ENAMETOOLONG;
		memcpy(p, cg->h[i].dir, l);
		memcpy(p + l, "/cgroup.procs", sizeof("/cgroup.procs"));
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (write(fd, "0", 1) != 1) {
			int e = errno;
			close(fd);
			return -e;
		}
		close(fd);
	}
	return 0;
}

void cgroup_remove(const struct tenant_cg *cg)
{
	for (int i = 0; i < cg->n; i++)
		rmdir(cg->h[i].dir);
}

static int64_t get(const struct tenant_cg *cg, const char *ctrl, const char *file)
{
	char p[512], buf[64];

	for (int i = 0; i < cg->n; i++) {
		if (strcmp(cg->h[i].ctrl, ctrl))
			continue;
		snprintf(p, sizeof(p), "%s/%s", cg->h[i].dir, file);
		FILE *f = fopen(p, "re");
		if (!f)
			return -1;
		bool ok = fgets(buf, sizeof(buf), f) != NULL;
		fclose(f);
		if (!ok)
			return -1;
		if (!strncmp(buf, "max", 3))
			return 0;
		return strtoll(buf, NULL, 10);
	}
	return -1;
}

/* "key value" line of a flat-keyed file */
static int64_t get_key(const struct tenant_cg *cg, const char *ctrl, const char *file,
		       const char *key)
{
	char p[512], line[128];
	int64_t v = -1;

	for (int i = 0; i < cg->n; i++) {
		if (strcmp(cg->h[i].ctrl, ctrl))
			continue;
		snprintf(p, sizeof(p), "%s/%s", cg->h[i].dir, file);
		FILE *f = fopen(p, "re");
		if (!f)
			return -1;
		size_t kl = strlen(key);
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, key, kl) && line[kl] == ' ')
				v = strtoll(line + kl + 1, NULL, 10);
		fclose(f);
	}
	return v;
}

int cgroup_usage(const struct tenant_cg *cg, struct cg_usage *u, ferr_t *err)
{
	struct stat sb;

	if (!cg->n || stat(cg->h[0].dir, &sb) < 0)
		return ferr_sys(err, FX_NOTFOUND, "cgroup %s", cg->n ? cg->h[0].dir : "(none)");
	if (cg->v2) {
		u->mem_bytes = get(cg, "", "memory.current");
		u->mem_max = get(cg, "", "memory.max");
		u->mem_oom_kills = get_key(cg, "", "memory.events", "oom_kill");
		u->pids = get(cg, "", "pids.current");
		u->pids_max = get(cg, "", "pids.max");
		u->cpu_usage_ns = get_key(cg, "", "cpu.stat", "usage_usec");
		u->cpu_usage_ns = u->cpu_usage_ns < 0 ? -1 : u->cpu_usage_ns * 1000;
		u->cpu_quota_us = u->cpu_period_us = -1;
		return 0;
	}
	u->mem_bytes = get(cg, "memory", "memory.usage_in_bytes");
	u->mem_max = get(cg, "memory", "memory.limit_in_bytes");
	u->mem_oom_kills = get_key(cg, "memory", "memory.oom_control", "oom_kill");
	u->pids = get(cg, "pids", "pids.current");
	u->pids_max = get(cg, "pids", "pids.max");
	u->cpu_usage_ns = get(cg, "cpuacct", "cpuacct.usage");
	u->cpu_quota_us = get(cg, "cpu", "cpu.cfs_quota_us");
	u->cpu_period_us = get(cg, "cpu", "cpu.cfs_period_us");
	return 0;
}

int64_t cgroup_parse_size(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	int shift = 0;

	if (errno || end == s || v <= 0)
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	}
	if (*end == 'i' && shift)
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v > (INT64_MAX >> shift))
		return -1;
	return (int64_t)v << shift;
}

bool cgroup_host_info(char *buf, size_t len)
{
	struct tenant_cg cg;
	ferr_t e = {0};

	if (cgroup_locate("probe", &cg, &e) < 0) {
		snprintf(buf, len, "%s", e.msg);
		return false;
	}
	if (cg.v2) {
		snprintf(buf, len, "cgroup v2 (memory, pids, cpu, io); tenant cgroups below %.200s",
			 cg.h[0].rel);
		return true;
	}
	size_t o = (size_t)snprintf(buf, len, "cgroup v1 hierarchies:");
	for (int i = 0; i < cg.n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s %s", i ? "," : "", cg.h[i].ctrl);
	if (o < len)
		snprintf(buf + o, len - o, " (no usable cgroup v2); devices as an allowlist");
	return true;
}
