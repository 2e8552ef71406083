/* What a destination accepts from a peer (docs/security.md, "Peers"): the
 * agent's intake policy and the checks an incoming migration passes before
 * anything is frozen (MIGRATE_BEGIN) and again before anything is restored
 * (the manifest, covered by its hashes, against that BEGIN). The destination
 * decides: the tenant's root must lie under a directory the policy allows
 * (never / or a host system directory), its address inside a tenant subnet
 * (never this host's own or its gateway's), its host interface is named
 * here, and its kind must be one the policy lets peers send. */
#ifndef FERRY_DST_CHECK_H
#define FERRY_DST_CHECK_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "proto/manifest.h"
#include "proto/wire.pb-c.h"
#include "tenant/registry.h"

#define DST_ROOTS_MAX	8
#define DST_SUBNETS_MAX 32

struct dst_subnet {
	uint32_t net, mask; /* host byte order */
	int prefix;
};

/* The agent configuration's intake part (agent/policy.h). Defaults
 * (dst_policy_default): containers and VMs, no process trees; roots under
 * STATE/roots and /srv/ferry; addresses in the subnets of this host's
 * interfaces. */
struct dst_policy {
	unsigned kinds;			     /* 1 << enum tenant_kind */
	int n_roots;			     /* -1: the default directories */
	char roots[DST_ROOTS_MAX][PATH_MAX]; /* absolute, as configured */
	int n_subnets;			     /* 0: the subnets of this host's interfaces */
	struct dst_subnet subnets[DST_SUBNETS_MAX];
	bool tune_uffd; /* "tune-host userfaultfd": may set vm.unprivileged_userfaultfd=1
			 * for a post-copy into a user namespace (isolate.h) */
};

void dst_policy_default(struct dst_policy *p);
/* Parse "container,vm", a directory, a CIDR ("10.204.0.0/24") into p. */
int dst_policy_add_kinds(struct dst_policy *p, const char *list, ferr_t *err);
int dst_policy_add_root(struct dst_policy *p, const char *dir, ferr_t *err);
int dst_policy_add_subnet(struct dst_policy *p, const char *cidr, ferr_t *err);

/* What the destination decided for one incoming tenant. */
struct dst_intake {
	char root[PATH_MAX]; /* the checked root (resolved), or "" */
	char host_if[16];    /* the host interface named here, or "" */
};

/* MIGRATE_BEGIN, before anything is frozen: kind allowed, root and address
 * acceptable, host interface chosen and free. FX_CONFLICT when refused. */
int dst_check_begin(const struct dst_policy *p, const char *state_dir, const char *host,
		    const Ferry__Wire__MigrateBegin *b, enum tenant_kind kind,
		    struct dst_intake *in, ferr_t *err);

/* The tenant's root: for a shared-storage root (a path the peer named) it
 * must resolve to a directory strictly under an allowed directory, never /
 * or a host system directory. Resolved path into out. One function: roots
 * that travel with the tenant (under the state directory) extend it. */
int dst_check_root(const struct dst_policy *p, const char *state_dir, const char *rootfs, char *out,
		   size_t out_size, ferr_t *err);

/* The tenant's address "A.B.C.D/N": inside a configured tenant subnet (or,
 * unconfigured, the subnets of this host's interfaces), not the subnet's
 * network or broadcast address, not this host's own nor a gateway of its
 * routes. */
int dst_check_addr(const struct dst_policy *p, const char *cidr, ferr_t *err);

/* The tenant's user-namespace ID range (BEGIN's Isolation, in iso): taken
 * here by another tenant is no refusal, the restore re-maps the tenant to
 * a free range of this host (tenant/isolate.h; the source keeps its own);
 * only a range ferry does not re-map (not its size) is refused, FX_CONFLICT
 * naming the holder. *remap says whether the restore will re-map. */
int dst_check_idrange(const char *state_dir, const Ferry__Wire__MigrateBegin *b,
		      const struct tenant_iso *iso, bool *remap, ferr_t *err);

/* The verified manifest of the incoming set (dir) against the BEGIN that
 * was accepted: the same tenant, kind, root, address and tenant interface;
 * FX_INTEGRITY when they differ (nothing is restored). */
int dst_check_manifest(const struct dst_policy *p, const char *state_dir, const char *dir,
		       const Ferry__Wire__MigrateBegin *b, enum tenant_kind kind, ferr_t *err);

#endif
