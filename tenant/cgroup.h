/* A cgroup per container tenant: made beneath the cgroup ferry itself runs
 * in (or $FERRY_CGROUP_PARENT, a path inside each hierarchy), never
 * elsewhere; limits from the tenant's record (struct tenant_iso). cgroup v2
 * where the host mounts it with the controllers; else the v1 hierarchies
 * memory, cpu, cpuacct (usage), pids, blkio (weight, where the I/O
 * scheduler has one) and devices (an allowlist of the tenant's /dev).
 * The tenant enters it before it unshares its cgroup namespace, so it sees
 * its cgroup as its root. Its name: ferry-NAME, with -pINODE of ferry's PID
 * namespace when that is not the host's (simulated hosts share the
 * hierarchy). */
#ifndef FERRY_CGROUP_H
#define FERRY_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "tenant/registry.h"

#define CG_MAXH 6

struct tenant_cg {
	bool v2;
	int n;
	struct {
		char ctrl[16]; /* "memory", ... ("" for v2) */
		char rel[256]; /* the tenant's cgroup inside the hierarchy: "/a/ferry-x" */
		char dir[320]; /* absolute directory */
	} h[CG_MAXH];
};

struct cg_usage {
	int64_t mem_bytes, mem_max, mem_oom_kills;
	int64_t pids, pids_max;
	int64_t cpu_usage_ns, cpu_quota_us, cpu_period_us;
};

/* Defaults when a tenant gets a cgroup without being told its limits. */
#define CG_DEF_MEMORY (1LL << 30) /* 1 GiB */
#define CG_DEF_PIDS   1024

/* Where tenant name's cgroup is (or would be) on this host. FX_HOST when
 * the host has neither usable v2 nor the v1 memory and pids hierarchies. */
int cgroup_locate(const char *name, struct tenant_cg *cg, ferr_t *err);
/* Create it (an existing empty one is reused) and write iso's limits;
 * FX_HOST for a limit this host cannot enforce (e.g. no I/O weight). */
int cgroup_setup(const struct tenant_cg *cg, const struct tenant_iso *iso, ferr_t *err);
/* Move the calling process in (for the container's helper before it
 * unshares: async-signal-safe, no allocation). -errno on failure. */
int cgroup_join_self(const struct tenant_cg *cg);
/* Remove it (once the tenant is gone here); quietly nothing when it is
 * missing or still busy. */
void cgroup_remove(const struct tenant_cg *cg);
/* Read usage and the limits in force back from its files (-1: not there). */
int cgroup_usage(const struct tenant_cg *cg, struct cg_usage *u, ferr_t *err);
/* Parse "512M", "2G", "1048576" (bytes); -1 on error. */
int64_t cgroup_parse_size(const char *s);
/* One line about this host's cgroups, for `ferry check`: ok false when
 * tenants cannot get limits here. */
bool cgroup_host_info(char *buf, size_t len);

#endif
