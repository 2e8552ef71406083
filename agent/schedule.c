/* Periodic snapshots run by the agent (schedule.h). */
#define LOG_PREFIX "schedule"
#include "agent/schedule.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "criu/locate.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "snapshot/snap.h"

static int sched_path(const char *state, const char *tenant, const char *ext, char *buf, size_t len,
		      ferr_t *err)
{
	if (!tenant_name_valid(tenant))
		return ferr_set(err, FX_USAGE, "invalid tenant name '%s'", tenant);
	return xsnprintf(buf, len, err, "%s/schedules/%s.%s", state, tenant, ext);
}

static json_t *keep_json(const struct keep_policy *k)
{
	return json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:I}", "last", k->last, "hourly", k->hourly,
			 "daily", k->daily, "weekly", k->weekly, "monthly", k->monthly, "yearly",
			 k->yearly, "within", (json_int_t)k->within);
}

int sched_save(const char *state_dir, const struct sched_entry *e, ferr_t *err)
{
	char path[4200], dir[4200];
	json_t *j;
	char *s;
	int rc;

	if (sched_path(state_dir, e->tenant, "json", path, sizeof(path), err) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/schedules", state_dir);
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	j = json_pack("{s:s,s:I,s:s,s:s,s:o,s:I,s:I,s:b,s:s,s:s,s:f,s:I,s:I}", "tenant", e->tenant,
		      "every", (json_int_t)e->every, "store", e->store, "key_file", e->key_file,
		      "keep", keep_json(&e->keep), "next_run", (json_int_t)e->next_run, "last_run",
		      (json_int_t)e->last_run, "last_ok", e->last_ok, "last_result", e->last_result,
		      "last_id", e->last_id, "last_frozen_ms", e->last_frozen_ms, "runs",
		      (json_int_t)e->runs, "failures", (json_int_t)e->failures);
	if (!j || !(s = json_dumps(j, JSON_INDENT(1)))) {
		json_decref(j);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	json_decref(j);
	rc = fs_write_atomic(path, s, strlen(s), 0600, err);
	free(s);
	return rc;
}

static void copy_str(char *dst, size_t len, json_t *j, const char *key)
{
	const char *v = json_string_value(json_object_get(j, key));

	snprintf(dst, len, "%s", v ? v : "");
}

static int64_t get_int(json_t *j, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(j, key));
}

static void parse_entry(json_t *j, struct sched_entry *e)
{
	json_t *k = json_object_get(j, "keep");

	memset(e, 0, sizeof(*e));
	copy_str(e->tenant, sizeof(e->tenant), j, "tenant");
	copy_str(e->store, sizeof(e->store), j, "store");
	copy_str(e->key_file, sizeof(e->key_file), j, "key_file");
	copy_str(e->last_result, sizeof(e->last_result), j, "last_result");
	copy_str(e->last_id, sizeof(e->last_id), j, "last_id");
	e->every = get_int(j, "every");
	e->next_run = get_int(j, "next_run");
	e->last_run = get_int(j, "last_run");
	e->runs = get_int(j, "runs");
	e->failures = get_int(j, "failures");
	e->last_ok = json_is_true(json_object_get(j, "last_ok"));
	e->last_frozen_ms = json_number_value(json_object_get(j, "last_frozen_ms"));
	e->keep.last = (int)get_int(k, "last");
	e->keep.hourly = (int)get_int(k, "hourly");
	e->keep.daily = (int)get_int(k, "daily");
	e->keep.weekly = (int)get_int(k, "weekly");
	e->keep.monthly = (int)get_int(k, "monthly");
	e->keep.yearly = (int)get_int(k, "yearly");
	e->keep.within = get_int(k, "within");
}

int sched_load(const char *state_dir, const char *tenant, struct sched_entry *e, ferr_t *err)
{
	char path[4200];
	json_error_t je;
	json_t *j;

	if (sched_path(state_dir, tenant, "json", path, sizeof(path), err) < 0)
		return -1;
	if (access(path, F_OK) < 0)
		return ferr_set(err, FX_NOTFOUND, "no schedule for %s", tenant);
	if (!(j = json_load_file(path, 0, &je)))
		return ferr_set(err, FX_INTEGRITY, "%s: %s", path, je.text);
	parse_entry(j, e);
	json_decref(j);
	if (strcmp(e->tenant, tenant) || e->every <= 0)
		return ferr_set(err, FX_INTEGRITY, "%s: not a schedule of %s", path, tenant);
	return 0;
}

static int by_tenant(const void *a, const void *b)
{
	return strcmp(((const struct sched_entry *)a)->tenant,
		      ((const struct sched_entry *)b)->tenant);
}

int sched_list(const char *state_dir, struct sched_entry **v, size_t *n, ferr_t *err)
{
	char dir[4200], name[64];
	struct dirent *de;
	DIR *d;

	*v = NULL;
	*n = 0;
	snprintf(dir, sizeof(dir), "%s/schedules", state_dir);
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : ferr_sys(err, FX_FAIL, "opendir %s", dir);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		struct sched_entry e;
		if (l < 6 || l - 5 >= sizeof(name) || strcmp(de->d_name + l - 5, ".json"))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(l - 5), de->d_name);
		ferr_t e2 = {0};
		if (sched_load(state_dir, name, &e, &e2) < 0) {
			pr_warn("%s", e2.msg);
			continue;
		}
		void *nv = realloc(*v, (*n + 1) * sizeof(**v));
		if (!nv)
			break;
		*v = nv;
		(*v)[(*n)++] = e;
	}
	closedir(d);
	if (*n)
		qsort(*v, *n, sizeof(**v), by_tenant);
	return 0;
}

int sched_remove(const char *state_dir, const char *tenant, ferr_t *err)
{
	char path[4200];

	if (sched_path(state_dir, tenant, "json", path, sizeof(path), err) < 0)
		return -1;
	if (unlink(path) < 0)
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "schedule of %s",
				tenant);
	return 0;
}

static void emit(const struct ev_sink *sink, const struct sched_entry *e, int removed)
{
	struct event ev;

	if (!sink || !sink->fn)
		return;
	ev_init(&ev, "snapshot");
	ev_str(&ev, "tenant", e->tenant);
	ev_bool(&ev, "ok", e->last_ok);
	ev_str(&ev, "id", e->last_id);
	ev_double(&ev, "frozen_ms", e->last_frozen_ms);
	ev_int(&ev, "pruned", removed);
	ev_str(&ev, "result", e->last_result);
	ev_int(&ev, "next_run", e->next_run);
	sink->fn(&ev, sink->arg);
}

/* Prune by the schedule's policy, then gc. Returns how many were removed. */
static int prune_after(const struct sched_entry *e, ferr_t *err)
{
	struct repo_gc_stats st;
	struct repo r;
	int n;

	if (retention_empty(&e->keep))
		return 0;
	if (repo_open(&r, e->store, e->key_file, err) < 0)
		return -1;
	if (repo_lock(&r, true, err) < 0 ||
	    (n = snap_prune(&r, e->tenant, &e->keep, false, NULL, NULL, err)) < 0 ||
	    repo_gc(&r, &st, err) < 0)
		n = -1;
	repo_close(&r);
	return n < 0 ? ferr_wrap(err, "prune") : n;
}

static void record(const char *state_dir, const char *tenant, int64_t start, int rc,
		   const struct snap_create_result *r, const ferr_t *err, struct sched_entry *e)
{
	ferr_t e2 = {0};

	if (sched_load(state_dir, tenant, e, &e2) < 0) /* the definition may have changed */
		return;
	e->last_run = start;
	e->last_ok = rc >= 0;
	snprintf(e->last_result, sizeof(e->last_result), "%s", rc >= 0 ? "ok" : err->msg);
	snprintf(e->last_id, sizeof(e->last_id), "%s", r->id);
	e->last_frozen_ms = r->frozen_ms;
	e->runs++;
	if (rc < 0)
		e->failures++;
	e->next_run = start + e->every;
	if (e->next_run <= wall_time())
		e->next_run = wall_time() + e->every;
	if (sched_save(state_dir, e, &e2) < 0)
		pr_warn("%s", e2.msg);
}

static int run_locked(const char *state_dir, const char *criu, const char *tenant,
		      const struct ev_sink *sink, ferr_t *err)
{
	struct snap_create_result r = {0};
	struct sched_entry e;
	int64_t start = wall_time();
	int rc, removed = 0;

	if (sched_load(state_dir, tenant, &e, err) < 0)
		return -1;
	struct snap_create_opts o = {.state_dir = state_dir,
				     .criu_path = criu,
				     .store = e.store,
				     .key_file = e.key_file,
				     .name = tenant};
	const char *tag = "scheduled";
	o.tags = &tag;
	o.n_tags = 1;
	rc = criu ? snap_create(&o, &r, err) : ferr_set(err, FX_HOST, "no CRIU found");
	if (rc == 0 && (removed = prune_after(&e, err)) < 0)
		rc = -1;
	record(state_dir, tenant, start, rc, &r, err, &e);
	if (rc < 0)
		pr_warn("scheduled snapshot of %s failed (next in %llds): %s", tenant,
			(long long)e.every, err->msg);
	emit(sink, &e, removed);
	return rc;
}

int sched_run(const char *state_dir, const char *criu, const char *tenant,
	      const struct ev_sink *sink, ferr_t *err)
{
	char path[4200];
	int fd, rc;

	if (sched_path(state_dir, tenant, "lock", path, sizeof(path), err) < 0)
		return -1;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return ferr_sys(err, FX_FAIL, "open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return ferr_set(err, FX_CONFLICT, "a scheduled snapshot of %s is running", tenant);
	}
	rc = run_locked(state_dir, criu, tenant, sink, err);
	close(fd);
	return rc;
}

struct sched {
	char state_dir[4096];
	char criu[4096];
	bool have_criu;
	struct ev_sink sink;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

static void tick(struct sched *s)
{
	struct sched_entry *v;
	size_t n;
	ferr_t err = {0};

	if (sched_list(s->state_dir, &v, &n, &err) < 0) {
		pr_warn("%s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&s->lock);
		bool stop = s->stop;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		if (v[i].next_run > wall_time())
			continue;
		ferr_clear(&err);
		sched_run(s->state_dir, s->have_criu ? s->criu : NULL, v[i].tenant, &s->sink, &err);
	}
	free(v);
}

static void *sched_main(void *arg)
{
	struct sched *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		struct timespec ts;
		pthread_mutex_unlock(&s->lock);
		tick(s);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_mutex_lock(&s->lock);
		if (!s->stop)
			pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

struct sched *sched_start(const char *state_dir, const struct ev_sink *sink, ferr_t *err)
{
	struct sched *s = calloc(1, sizeof(*s));
	ferr_t e2 = {0};

	if (!s)
		return ferr_set(err, FX_FAIL, "out of memory"), NULL;
	snprintf(s->state_dir, sizeof(s->state_dir), "%s", state_dir);
	s->have_criu = criu_locate(NULL, s->criu, sizeof(s->criu), NULL, &e2) == 0;
	if (sink)
		s->sink = *sink;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (pthread_create(&s->th, NULL, sched_main, s) != 0) {
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
		free(s);
		return ferr_set(err, FX_FAIL, "cannot start the scheduler thread"), NULL;
	}
	return s;
}

void sched_stop(struct sched *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->th, NULL);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}
