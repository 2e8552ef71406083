/* Asking the source host's agent for a migration's outcome
 * (handover_query.c, docs/migrate.md "Recovery").
 *
 * A destination whose session dropped after MIG_RESTORED holds a restored,
 * stopped copy. Besides waiting for the source's `ferry migrate` to deliver
 * its decision (MIGRATE_RESOLVE), it now asks the source host's agent:
 *   D -> source agent: MIG_REQ_QUERY (MigrateStep: migration_id)
 *   source agent -> D: MIG_VERDICT (MigrateVerdict): commit / abort once the
 *                      outcome on the source is final (reconcile.h), pending
 *                      while its `ferry migrate` lives or CRIU holds the
 *                      tenant, unknown when it never heard of it.
 * The agent's address: MIGRATE_BEGIN carries its port (from
 * STATE/agent.addr, written by `ferry serve`) and, when it is not the
 * session's peer address, its host; it must present a certificate for the
 * name the source presented in the session. */
#ifndef FERRY_HANDOVER_QUERY_H
#define FERRY_HANDOVER_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/chan.h"
#include "migrate/handover.h"
#include "migrate/reconcile.h"
#include "proto/wire.pb-c.h"

/* Source: where the source host's agent can be reached. */
struct hq_source {
	bool known;
	char host[256];
	uint16_t port;
	char name[256]; /* its certificate name */
};

/* Agent: record where it listens (STATE/agent.addr); forget it at stop. */
int hq_record_agent(const char *state_dir, const char *host, uint16_t port, ferr_t *err);
void hq_forget_agent(const char *state_dir);

/* Source `ferry migrate`: MIGRATE_BEGIN's source agent fields, from explicit
 * ("HOST:PORT", may be NULL) or STATE/agent.addr. hostbuf keeps the string. */
void hq_fill_begin(Ferry__Wire__MigrateBegin *b, const char *state_dir, const char *explicit,
		   char *hostbuf, size_t len);

/* Destination: the source's agent from MIGRATE_BEGIN and the session. */
void hq_source_of(struct hq_source *q, const Ferry__Wire__MigrateBegin *b, struct chan *c);
/* One question. */
int hq_ask(const struct hq_source *q, const struct handover_opts *o, const char *id,
	   enum mig_verdict *v, ferr_t *err);
/* In doubt: wait for MIGRATE_RESOLVE, asking the source's agent meanwhile.
 * 1 commit, 0 abort, -1 no decision within seconds. */
int hq_wait_decision(const struct hq_source *q, const struct handover_opts *o, const char *id,
		     int seconds);

#endif
