/* Destination-side table of migrations waiting for the source's decision
 * (handover_indoubt.c). Thread-safe. */
#ifndef FERRY_HANDOVER_INDOUBT_H
#define FERRY_HANDOVER_INDOUBT_H

#include <stdbool.h>

enum indoubt_outcome {
	INDOUBT_UNKNOWN = 0,   /* never seen here, or forgotten */
	INDOUBT_RUNNING = 1,   /* committed: the tenant runs here */
	INDOUBT_DISCARDED = 2, /* aborted: nothing runs here */
};

/* The holder: from MIG_RESTORED on, until indoubt_finish. fd is the session's
 * socket (shut down when a decision arrives from another connection). */
int indoubt_register(const char *id, int fd);
/* The holder's session dropped: wait up to seconds for a decision.
 * Returns 1 commit, 0 abort, -1 none (timeout). */
int indoubt_wait(const char *id, int seconds);
/* A decision that arrived already (1, 0) or -1. */
int indoubt_peek(const char *id);
/* The holder is done: record the outcome, drop the entry. */
void indoubt_finish(const char *id, enum indoubt_outcome outcome);
/* MIGRATE_RESOLVE: record the source's decision, wait (bounded) for the
 * outcome. */
enum indoubt_outcome indoubt_decide(const char *id, bool commit, int wait_s);

#endif
