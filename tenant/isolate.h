/* Isolation of container tenants as it travels: the registry's tenant_iso
 * (tenant/registry.h) to and from proto's Isolation (manifests and
 * MigrateBegin), and the destination's check that it can take it. */
#ifndef FERRY_ISOLATE_H
#define FERRY_ISOLATE_H

#include "lib/err.h"
#include "proto/manifest.h"
#include "tenant/registry.h"

/* A malloc'd Isolation for iso (NULL when iso has nothing or out of memory;
 * freed with the manifest / message that holds it). */
Ferry__Isolation *iso_to_pb(const struct tenant_iso *iso);
/* p may be NULL (nothing). */
void iso_from_pb(const Ferry__Isolation *p, struct tenant_iso *iso);
/* Can this host take a tenant with iso: its user ID range is free here
 * (userns_check_free). FX_CONFLICT says which tenant holds it. */
int iso_precheck(const char *state_dir, const char *name, const struct tenant_iso *iso,
		 ferr_t *err);

/* Post-copy: CRIU's restored tasks open userfaultfd themselves, which a
 * user namespace may only with vm.unprivileged_userfaultfd=1 (FX_HOST). */
int iso_precheck_lazy(const struct tenant_iso *iso, ferr_t *err);

#endif
