/* Isolation of container tenants as it travels (isolate.h). */
#include "tenant/isolate.h"

#include <stdlib.h>

#include "lib/fsutil.h"
#include "tenant/userns.h"

Ferry__Isolation *iso_to_pb(const struct tenant_iso *iso)
{
	Ferry__Isolation *p;

	if (!iso->id_count && !iso->mem_max && !iso->pids_max && !iso->cpu_milli && !iso->io_weight)
		return NULL;
	if (!(p = calloc(1, sizeof(*p))))
		return NULL;
	ferry__isolation__init(p);
	p->has_id_base = p->has_id_count = true;
	p->id_base = iso->id_base;
	p->id_count = iso->id_count;
	p->has_mem_max = p->has_pids_max = p->has_cpu_milli = p->has_io_weight = true;
	p->mem_max = iso->mem_max;
	p->pids_max = iso->pids_max;
	p->cpu_milli = iso->cpu_milli;
	p->io_weight = iso->io_weight;
	return p;
}

void iso_from_pb(const Ferry__Isolation *p, struct tenant_iso *iso)
{
	*iso = (struct tenant_iso){0};
	if (!p)
		return;
	iso->id_base = p->has_id_base ? p->id_base : 0;
	iso->id_count = p->has_id_count ? p->id_count : 0;
	iso->mem_max = p->has_mem_max && p->mem_max > 0 ? p->mem_max : 0;
	iso->pids_max = p->has_pids_max && p->pids_max > 0 ? p->pids_max : 0;
	iso->cpu_milli = p->has_cpu_milli && p->cpu_milli > 0 ? p->cpu_milli : 0;
	iso->io_weight = p->has_io_weight && p->io_weight > 0 ? p->io_weight : 0;
}

int iso_precheck(const char *state_dir, const char *name, const struct tenant_iso *iso, ferr_t *err)
{
	if (iso->id_count && iso->id_base < USERNS_FIRST)
		return ferr_set(err, FX_INTEGRITY,
				"tenant %s would map its root to host ID %u: ferry never maps a "
				"tenant below %u",
				name, iso->id_base, USERNS_FIRST);
	return userns_check_free(state_dir, name, iso->id_base, iso->id_count, err);
}

int iso_precheck_lazy(const struct tenant_iso *iso, ferr_t *err)
{
	if (!iso->id_count || fs_read_long("/proc/sys/vm/unprivileged_userfaultfd") == 1)
		return 0;
	return ferr_set(err, FX_HOST,
			"post-copy of a tenant in a user namespace needs userfaultfd inside it, "
			"which this host allows only with vm.unprivileged_userfaultfd=1 (a host "
			"setting, see `ferry check`): use --mode stop-copy");
}
