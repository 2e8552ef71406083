/* Tenant kinds: lookup and what every kind shares (kind.h). */
#include "tenant/kind.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static const struct tenant_kind_ops *const kinds[] = {&kind_container, &kind_proctree, &kind_vm};

const struct tenant_kind_ops *kind_find(enum tenant_kind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i]->kind == kind)
			return kinds[i];
	return NULL;
}

const struct tenant_kind_ops *kind_by_name(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(kinds[i]->name, name))
			return kinds[i];
	return NULL;
}

int kind_from_manifest(Ferry__TenantKind mk, enum tenant_kind *k, ferr_t *err)
{
	if (tenant_kind_from_pb(mk, k) < 0)
		return ferr_set(err, FX_INTEGRITY, "the manifest names an unknown tenant kind %d",
				(int)mk);
	return 0;
}

const struct tenant_kind_ops *kind_get(enum tenant_kind kind, const char *tenant, ferr_t *err)
{
	const struct tenant_kind_ops *ops = kind_find(kind);

	if (!ops)
		ferr_set(err, FX_HOST, "tenant %s is a %s: this ferry has no driver for it", tenant,
			 tenant_kind_str(kind));
	return ops;
}

int tenant_kill(const char *state_dir, struct tenant_rec *rec, int sig, int timeout_ms, ferr_t *err)
{
	const struct tenant_kind_ops *ops = kind_get(rec->kind, rec->name, err);

	if (!ops)
		return -1;
	if ((rec->state == TS_RUNNING || rec->state == TS_FROZEN) &&
	    ops->kill(rec, sig, timeout_ms, err) < 0)
		return ferr_wrap(err, "tenant %s", rec->name);
	if (ops->unplumb(&rec->net, err) < 0)
		return ferr_wrap(err, "tenant %s", rec->name);
	tenant_released(ops, rec);
	rec->state = TS_GONE;
	rec->init_pid = 0;
	rec->init_start = 0;
	rec->updated = wall_time();
	return registry_save(state_dir, rec, err);
}

void tenant_released(const struct tenant_kind_ops *ops, const struct tenant_rec *rec)
{
	if (ops && ops->released)
		ops->released(rec);
}

void kind_describe_net(const struct tenant_net *net, manifest_t *m)
{
	if (!net->addr[0] && !net->host_if[0])
		return;
	Ferry__NetConfig *n = calloc(1, sizeof(*n));
	if (!n)
		return;
	ferry__net_config__init(n);
	manifest_set_str(&n->addr, net->addr);
	manifest_set_str(&n->host_if, net->host_if);
	manifest_set_str(&n->tenant_if, net->tenant_if);
	m->net = n;
}
