/* ferry ps: list the tenants of this host, refreshing stale states. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "lib/json.h"
#include "migrate/reconcile.h"
#include "tenant/cgroup.h"
#include "tenant/registry.h"
#include "lib/util.h"

struct ps_args {
	bool json;
};

static const struct opt ps_opts[] = {
    {.name = "json",
     .type = OPT_FLAG,
     .off = offsetof(struct ps_args, json),
     .help = "print the tenants as one JSON object"},
    {0},
};

static const struct cmd_spec ps_spec = {
    .name = "ps",
    .about = "List tenants: name, kind, state (running, frozen, dumped, gone), init PID,\n"
	     "address, rootfs and age. A running tenant whose init has died shows as gone.\n"
	     "First settles what killed commands left: a migration whose `ferry migrate`\n"
	     "died (the tenant runs here again, or it moved), a stale frozen state.\n",
    .opts = ps_opts,
};

/* Re-read the record under its lock and mark it gone if its init died. A
 * tenant another ferry works on (lock busy) is shown as it is. */
static void refresh(const char *state_dir, struct tenant_rec *r)
{
	ferr_t e = {0};
	struct tenant_rec fresh;
	int lock = registry_lock(state_dir, r->name, &e);

	if (lock < 0)
		return;
	if (registry_load(state_dir, r->name, &fresh, &e) == 0) {
		if (registry_refresh(state_dir, &fresh, &e) < 0)
			fprintf(stderr, "ferry ps: %s\n", e.msg);
		tenant_rec_free(r);
		*r = fresh;
	}
	close(lock);
}

static const char *fmt_age(int64_t secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, len, "%llds", (long long)secs);
	else if (secs < 7200)
		snprintf(buf, len, "%lldm", (long long)secs / 60);
	else if (secs < 172800)
		snprintf(buf, len, "%lldh", (long long)secs / 3600);
	else
		snprintf(buf, len, "%lldd", (long long)secs / 86400);
	return buf;
}

static void jw_opt(struct jw *w, const char *k, int64_t v)
{
	if (v >= 0)
		jw_int(w, k, v);
	else
		jw_str(w, k, NULL);
}

void cmd_iso_json(struct jw *w, const struct tenant_iso *iso)
{
	jw_bool(w, "userns", iso->id_count > 0);
	jw_bool(w, "hardened", iso->hardened);
	jw_int(w, "id_base", iso->id_base);
	jw_int(w, "id_count", iso->id_count);
	jw_int(w, "memory_max", iso->mem_max);
	jw_int(w, "pids_max", iso->pids_max);
	jw_int(w, "cpu_milli", iso->cpu_milli);
	jw_int(w, "io_weight", iso->io_weight);
}

/* Its user namespace, limits and (running, with a cgroup) usage. */
static void print_iso(struct jw *w, const struct tenant_rec *r)
{
	const struct tenant_iso *iso = &r->iso;
	struct tenant_cg cg;
	struct cg_usage u;

	jw_obj_begin(w, "isolation");
	cmd_iso_json(w, iso);
	if (tenant_has_cgroup(iso) && r->state == TS_RUNNING &&
	    cgroup_locate(r->name, &cg, NULL) == 0 && cgroup_usage(&cg, &u, NULL) == 0) {
		jw_obj_begin(w, "cgroups"); /* hierarchy -> the tenant's cgroup in it */
		for (int i = 0; i < cg.n; i++)
			jw_str(w, cg.v2 ? "unified" : cg.h[i].ctrl, cg.h[i].rel);
		jw_obj_end(w);
		jw_obj_begin(w, "usage");
		jw_opt(w, "memory_bytes", u.mem_bytes);
		jw_opt(w, "memory_max", u.mem_max);
		jw_opt(w, "oom_kills", u.mem_oom_kills);
		jw_opt(w, "pids", u.pids);
		jw_opt(w, "pids_max", u.pids_max);
		jw_opt(w, "cpu_ns", u.cpu_usage_ns);
		jw_opt(w, "cpu_quota_us", u.cpu_quota_us);
		jw_opt(w, "cpu_period_us", u.cpu_period_us);
		jw_obj_end(w);
	}
	jw_obj_end(w);
}

static void print_json(const struct tenant_rec *v, size_t n, int64_t now)
{
	struct jw w;

	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_arr_begin(&w, "tenants");
	for (size_t i = 0; i < n; i++) {
		const struct tenant_rec *r = &v[i];
		jw_obj_begin(&w, NULL);
		jw_str(&w, "name", r->name);
		jw_str(&w, "kind", tenant_kind_str(r->kind));
		jw_str(&w, "state", tenant_state_str(r->state));
		jw_int(&w, "pid", r->init_pid);
		jw_str(&w, "address", r->net.addr[0] ? r->net.addr : NULL);
		jw_str(&w, "host_if", r->net.host_if[0] ? r->net.host_if : NULL);
		jw_str(&w, "rootfs", r->rootfs[0] ? r->rootfs : NULL);
		jw_int(&w, "created", r->created);
		jw_int(&w, "updated", r->updated);
		jw_int(&w, "age_s", now - r->created);
		jw_str(&w, "last_dump", r->last_dump[0] ? r->last_dump : NULL);
		jw_arr_begin(&w, "argv");
		for (int a = 0; a < r->argc; a++)
			jw_str(&w, NULL, r->argv[a]);
		jw_arr_end(&w);
		print_iso(&w, r);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_finish(&w);
}

static void print_table(const struct tenant_rec *v, size_t n, int64_t now)
{
	char age[32], pid[16];

	printf("%-20s %-9s %-8s %-8s %-18s %-5s %s\n", "NAME", "KIND", "STATE", "PID", "ADDRESS",
	       "AGE", "ROOTFS");
	for (size_t i = 0; i < n; i++) {
		const struct tenant_rec *r = &v[i];
		snprintf(pid, sizeof(pid), "%d", (int)r->init_pid);
		printf("%-20s %-9s %-8s %-8s %-18s %-5s %s\n", r->name, tenant_kind_str(r->kind),
		       tenant_state_str(r->state), r->init_pid ? pid : "-",
		       r->net.addr[0] ? r->net.addr : "-",
		       fmt_age(now - r->created, age, sizeof(age)), r->rootfs[0] ? r->rootfs : "-");
	}
}

int cmd_ps(int argc, char **argv, const struct global_opts *g)
{
	struct ps_args a = {0};
	struct tenant_rec *v;
	ferr_t err = {0};
	size_t n;
	int pos, rc;

	if ((rc = opts_parse(&ps_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	/* migrations and commands that were killed: settle their tenants first */
	reconcile_all(g->state_dir, false);
	if (registry_list(g->state_dir, &v, &n, &err) < 0)
		return cmd_report("ps", &err);
	for (size_t i = 0; i < n; i++)
		refresh(g->state_dir, &v[i]);
	if (a.json)
		print_json(v, n, wall_time());
	else
		print_table(v, n, wall_time());
	for (size_t i = 0; i < n; i++)
		tenant_rec_free(&v[i]);
	free(v);
	return 0;
}
