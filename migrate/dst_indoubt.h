/* Destination: the table of migrations waiting for the source's decision
 * (dst_indoubt.c). The agent owns one (struct mig_state, dst.h) and shares
 * it between its connection threads; every function is thread-safe (one
 * mutex inside the table protects all of it). */
#ifndef FERRY_DST_INDOUBT_H
#define FERRY_DST_INDOUBT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

enum indoubt_outcome {
	INDOUBT_UNKNOWN = 0,   /* never seen here, or forgotten */
	INDOUBT_RUNNING = 1,   /* committed: the tenant runs here */
	INDOUBT_DISCARDED = 2, /* aborted: nothing runs here */
};

/* How a tenant that runs here was re-mapped (tenant/isolate.h): count host
 * IDs from `from` are `to` here; to == 0: not re-mapped. Kept with its
 * outcome for a source that learns it from a later MIGRATE_RESOLVE. */
struct indoubt_remap {
	uint32_t from, to, count;
};

struct indoubt;

/* An empty table that remembers the last `remember` outcomes (for a source
 * that retries after a lost MIG_DONE). Migrations in doubt: any number. */
struct indoubt *indoubt_new(unsigned remember, ferr_t *err);
void indoubt_free(struct indoubt *t);

/* The holder: from MIG_RESTORED on, until indoubt_finish. fd is the session's
 * socket (shut down when a decision arrives from another connection). -1
 * when out of memory. */
int indoubt_register(struct indoubt *t, const char *id, int fd);
/* The holder's session dropped: wait up to seconds for a decision.
 * Returns 1 commit, 0 abort, -1 none (timeout). */
int indoubt_wait(struct indoubt *t, const char *id, int seconds);
/* A decision that arrived already (1, 0) or -1. */
int indoubt_peek(struct indoubt *t, const char *id);
/* The holder is done (or the agent settled a migration at its start): record
 * the outcome (and rm, may be NULL: none), drop the entry. */
void indoubt_finish(struct indoubt *t, const char *id, enum indoubt_outcome outcome,
		    const struct indoubt_remap *rm);
/* MIGRATE_RESOLVE: record the source's decision, wait (bounded) for the
 * outcome; rm (may be NULL) gets the re-map recorded with it. */
enum indoubt_outcome indoubt_decide(struct indoubt *t, const char *id, bool commit, int wait_s,
				    struct indoubt_remap *rm);

#endif
