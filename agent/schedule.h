/* Periodic snapshots (docs/snapshots.md), run by the agent (`ferry serve`).
 * One schedule per tenant, persisted as STATE/schedules/NAME.json (its
 * definition and the last run's result), so that it survives a restart of
 * the agent. A run takes STATE/schedules/NAME.lock (flock, not waiting):
 * never two runs at once for one tenant, even from two agents. A run is a
 * snapshot (snapshot/snap.h), then, when the schedule has a policy, a prune
 * and a gc; a failed run is recorded and logged, and the next one comes a
 * period later like any other. */
#ifndef FERRY_SCHEDULE_H
#define FERRY_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/event.h"
#include "snapshot/retention.h"

struct sched_entry {
	char tenant[64];
	int64_t every; /* seconds */
	char store[4096];
	char key_file[4096];
	struct keep_policy keep;
	int64_t next_run, last_run; /* seconds since the epoch (0: never) */
	bool last_ok;
	char last_result[512]; /* "ok" or the error */
	char last_id[32];
	double last_frozen_ms;
	int64_t runs, failures;
};

int sched_save(const char *state_dir, const struct sched_entry *e, ferr_t *err);
int sched_load(const char *state_dir, const char *tenant, struct sched_entry *e, ferr_t *err);
/* Every schedule, sorted by tenant; *v malloc'd. */
int sched_list(const char *state_dir, struct sched_entry **v, size_t *n, ferr_t *err);
int sched_remove(const char *state_dir, const char *tenant, ferr_t *err);

/* One run now (under the tenant's run lock: FX_CONFLICT when a run holds
 * it); the result is recorded in the schedule's file. */
int sched_run(const char *state_dir, const char *criu, const char *tenant,
	      const struct ev_sink *sink, ferr_t *err);

/* The agent's scheduler: a thread that runs every schedule when due. */
struct sched;
struct sched *sched_start(const char *state_dir, const struct ev_sink *sink, ferr_t *err);
void sched_stop(struct sched *s);

#endif
