/* ferry evacuate: migrate every running tenant of this host to one peer. */
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "criu/locate.h"
#include "lib/json.h"
#include "migrate/migrate.h"
#include "cmd/migrate_report.h"
#include "migrate/reconcile.h"
#include "tenant/registry.h"
#include "lib/util.h"

struct evacuate_args {
	struct migrate_opts o;
	const char *to;
	bool json;
	int parallel;
};

static const struct opt evacuate_opts[] = {
    OPTS_PEER(struct evacuate_args, to, o),
    {.name = "parallel",
     .type = OPT_INT,
     .off = offsetof(struct evacuate_args, parallel),
     .arg = "N",
     .min = 1,
     .max = 64,
     .flags = OPT_SHOW_RANGE | OPT_SHOW_DEFAULT,
     .help = "migrate N tenants at a time"},
    {.name = "mode",
     .type = OPT_FN,
     .off = offsetof(struct evacuate_args, o.mode),
     .arg = "MODE",
     .parse = migrate_opt_mode,
     .help = "as `ferry migrate --mode`, for every tenant (default auto)"},
    {.name = "timeout",
     .type = OPT_INT,
     .off = offsetof(struct evacuate_args, o.timeout_ms),
     .arg = "SECONDS",
     .min = 1,
     .max = INT_MAX / 1000,
     .scale = 1000,
     .flags = OPT_SHOW_DEFAULT,
     .help = "one step of a migration's session may take this long"},
    {.name = "shared-storage",
     .type = OPT_FLAG,
     .off = offsetof(struct evacuate_args, o.shared_storage),
     .help = "as `ferry migrate --shared-storage`, for every VM: the destination sees the "
	     "same disk images, they are not copied"},
    OPTS_JSON(struct evacuate_args, json),
    {0},
};

static const struct cmd_spec evacuate_spec = {
    .name = "evacuate",
    .about = "Live-migrate every running tenant of this host to HOST:PORT (see `ferry\n"
	     "migrate --help`), N at a time. One tenant's failure does not stop the\n"
	     "others; each is reported (a failed one keeps running here).\n",
    .notes = "Exit codes: 0 every tenant moved, 1 at least one did not, 2 usage.\n",
    .opts = evacuate_opts,
};

struct job {
	char name[64];
	struct migrate_result r;
	ferr_t err;
	int rc;
};

/* Everything below lock is protected by it. */
struct pool {
	const struct migrate_opts *base;
	struct job *jobs;
	size_t n, next;
	bool json;
	pthread_mutex_t lock;
};

static void *worker(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		size_t i = p->next++;
		pthread_mutex_unlock(&p->lock);
		if (i >= p->n)
			return NULL;
		struct job *j = &p->jobs[i];
		struct migrate_opts o = *p->base;
		o.tenant = j->name;
		j->rc = migrate_tenant(&o, &j->r, &j->err);
		pthread_mutex_lock(&p->lock);
		if (!p->json) {
			if (j->rc == 0) {
				printf("moved  %-20s downtime %.1f ms, total %.1f ms\n", j->name,
				       j->r.downtime_ms, j->r.total_ms);
				migrate_report_remap(&j->r);
			} else
				printf("FAILED %-20s %s\n", j->name, j->err.msg);
			fflush(stdout);
		}
		pthread_mutex_unlock(&p->lock);
	}
}

static int collect(const char *state_dir, struct job **jobs, size_t *n, ferr_t *err)
{
	struct tenant_rec *recs = NULL;
	size_t nr = 0;

	*n = 0;
	/* a tenant an interrupted migration left "frozen" is running: take it */
	reconcile_all(state_dir, false);
	if (registry_list(state_dir, &recs, &nr, err) < 0)
		return -1;
	*jobs = calloc(nr ? nr : 1, sizeof(**jobs));
	for (size_t i = 0; i < nr; i++) {
		registry_refresh(state_dir, &recs[i], NULL);
		if (*jobs && recs[i].state == TS_RUNNING)
			snprintf((*jobs)[(*n)++].name, sizeof((*jobs)[0].name), "%s", recs[i].name);
		tenant_rec_free(&recs[i]);
	}
	free(recs);
	return *jobs ? 0 : ferr_set(err, FX_FAIL, "out of memory");
}

static int run_pool(struct pool *p, int parallel)
{
	pthread_t *t = calloc((size_t)parallel, sizeof(*t));
	int started = 0;

	if (!t)
		return -1;
	pthread_mutex_init(&p->lock, NULL);
	for (int i = 0; i < parallel; i++)
		if (pthread_create(&t[i], NULL, worker, p) == 0)
			started++;
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&p->lock);
	free(t);
	return started ? 0 : -1;
}

static void print_json(const struct pool *p, const char *to, int moved)
{
	struct jw w;

	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "destination", to);
	jw_uint(&w, "tenants", p->n);
	jw_uint(&w, "moved", (uint64_t)moved);
	jw_uint(&w, "failed", p->n - (size_t)moved);
	jw_arr_begin(&w, "results");
	for (size_t i = 0; i < p->n; i++)
		migrate_report_json(&w, NULL, &p->jobs[i].r, p->jobs[i].rc, &p->jobs[i].err);
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_finish(&w);
}

int cmd_evacuate(int argc, char **argv, const struct global_opts *g)
{
	struct evacuate_args a = {.o = {.state_dir = g->state_dir,
					.compress = true,
					.timeout_ms = 60000,
					.retry_for_s = 30},
				  .parallel = 1};
	struct pool p = {.base = &a.o};
	char host[256], criu[4096];
	int pos, rc, moved = 0;
	ferr_t err = {0};

	if ((rc = opts_parse(&evacuate_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	p.json = a.json;
	if (parse_hostport(a.to, host, sizeof(host), &a.o.port, &err) < 0 ||
	    criu_locate(g->criu, criu, sizeof(criu), NULL, &err) < 0 ||
	    collect(g->state_dir, &p.jobs, &p.n, &err) < 0)
		return cmd_report("evacuate", &err);
	a.o.host = host;
	a.o.criu_path = criu;
	if (p.n && run_pool(&p, a.parallel) < 0) {
		free(p.jobs);
		ferr_set(&err, FX_FAIL, "cannot start migration threads");
		return cmd_report("evacuate", &err);
	}
	for (size_t i = 0; i < p.n; i++)
		moved += p.jobs[i].rc == 0;
	if (p.json)
		print_json(&p, a.to, moved);
	else
		printf("evacuate: %d of %zu tenant(s) moved to %s\n", moved, p.n, a.to);
	free(p.jobs);
	return (size_t)moved == p.n ? FX_OK : FX_FAIL;
}
