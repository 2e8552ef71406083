/* Recovery after a killed `ferry migrate` or a killed agent (reconcile.c,
 * docs/migrate.md "Recovery").
 *
 * Source side: every `ferry migrate` keeps STATE/migrations/ID.src (tenant,
 * its init, destination) flocked for its whole life. When the lock is free
 * but the file is still there, the migration's owner died. Its outcome is
 * then decided here, once CRIU has let go of the tenant:
 *   tenant alive              -> abort: ID.aborted, record running, network
 *                                plumbed again from the record
 *   tenant gone + ID.committed -> commit: the record is removed (it moved)
 *   tenant gone, no marker    -> abort (the tenant died by itself): gone
 * The decision files (ID.committed / ID.aborted) stay for a day, so that a
 * destination holding a copy in doubt gets the same answer every time.
 *
 * Destination side: a record whose last_dump lies in STATE/migrations/ID and
 * whose lock is free was registered by a migration that had not finished
 * when its agent died: init alive -> running; init dead -> removed. */
#ifndef FERRY_RECONCILE_H
#define FERRY_RECONCILE_H

#include <stdbool.h>

#include "lib/err.h"
#include "tenant/registry.h"

enum mig_verdict {
	MV_COMMIT = 1,	/* the tenant left this host: the destination resumes it */
	MV_ABORT = 2,	/* it stays (or died) here: the destination discards */
	MV_PENDING = 3, /* not final yet: its `ferry migrate` lives or CRIU holds it */
	MV_UNKNOWN = 4, /* no such migration here */
};
const char *mig_verdict_str(enum mig_verdict v);

/* Source: the in-flight file of a migration, locked until inflight_end
 * (returns the lock's fd, or -1). */
int inflight_begin(const char *state_dir, const char *id, const struct tenant_rec *rec,
		   const char *dest, const char *mode, ferr_t *err);
/* aborted: the destination may hold a copy and no commit marker exists:
 * record ID.aborted so that it can learn the outcome from our agent. */
void inflight_end(const char *state_dir, const char *id, int fd, bool aborted);

/* Decide one migration of this host as source (above). wait_ms bounds the
 * wait for CRIU to let go of the tenant. */
int reconcile_migration(const char *state_dir, const char *id, int wait_ms, enum mig_verdict *v,
			ferr_t *err);

/* Every stale state of this host: migrations whose owner died, incoming
 * migrations of a killed agent, records left "frozen" by a killed command,
 * old decision files (at_agent_start: louder about what it must leave).
 * Problems are logged, not returned: a stale state must never stop the
 * command that tidies up. */
void reconcile_all(const char *state_dir, bool at_agent_start);
/* The agent at its start: reconcile_all, and settled(id, running, arg) for
 * each incoming migration settled here (running: its tenant runs here), so
 * that the agent can answer a source that asks about it. */
typedef void (*reconcile_settled_fn)(const char *id, bool running, void *arg);
void reconcile_agent_start(const char *state_dir, reconcile_settled_fn settled, void *arg);

/* Testing hook (docs/migrate.md): FERRY_FAULT=what in this process's
 * environment -> SIGKILL to itself. */
void mig_fault_point(const char *what);

#endif
