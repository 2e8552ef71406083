/* The in-doubt query, both ends (query.c, docs/migrate.md "Recovery"): a
 * destination asks the source host's agent for a migration's outcome, and
 * the agent (as the source host) answers.
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
#ifndef FERRY_QUERY_H
#define FERRY_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/chan.h"
#include "transport/request.h"
#include "migrate/dst_indoubt.h"
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

/* Destination: the source's agent from MIGRATE_BEGIN and the session. */
void hq_source_of(struct hq_source *q, const Ferry__Wire__MigrateBegin *b, struct chan *c);
/* One question, as ctx's host (its identity: ctx->tls_dir, ->host_name). */
int hq_ask(const struct hq_source *q, const struct req_ctx *ctx, const char *id,
	   enum mig_verdict *v, ferr_t *err);
/* In doubt: wait for MIGRATE_RESOLVE (recorded in t), asking the source's
 * agent meanwhile; each new answer of the agent is a "verdict" event on
 * ctx->events. 1 commit, 0 abort, -1 no decision within seconds. */
int hq_wait_decision(const struct hq_source *q, const struct req_ctx *ctx, struct indoubt *t,
		     const char *id, int seconds);

/* Source: the certificate name of the destination migration id went to
 * (STATE/migrations/ID.peer): only it may query the outcome. */
int query_bind_peer(const char *state_dir, const char *id, const char *peer_name, ferr_t *err);

/* Source host's agent: MIG_REQ_QUERY (req: MigrateStep with the migration
 * id) from a destination in doubt. Settles the migration (reconcile.h),
 * answers MIG_VERDICT, and reports a "query" event on ctx->events. Bound
 * like the other migration-scoped requests: only the certificate the
 * migration went to (query_bind_peer) gets an answer; FX_CONFLICT for
 * another peer, "unknown" for a migration without that record. */
int query_answer(struct chan *c, const struct frame_buf *req, const struct req_ctx *ctx,
		 ferr_t *err);

#endif
