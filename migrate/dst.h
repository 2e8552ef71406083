/* Destination side of a live migration (dst.c, docs/migrate.md), and the
 * migration requests a host agent serves (transport/request.h):
 *   MIGRATE_BEGIN    a migration to this host: checks, pages, files, the
 *                    held restore, the handover (dst.c, dst_precopy.c)
 *   MIGRATE_RESOLVE  the source's decision for a migration in doubt here
 *                    (dst_indoubt.c)
 *   MIG_REQ_PAGES    post-copy: the page relay of a migration (dst_lazy.c)
 *   MIG_REQ_QUERY    this host was a migration's source: its outcome, for a
 *                    destination in doubt (query.c)
 * The agent owns the state these requests share (struct mig_state) and
 * passes it as the handlers' state. */
#ifndef FERRY_DST_H
#define FERRY_DST_H

#include <pthread.h>

#include "lib/err.h"
#include "migrate/dst_check.h"
#include "migrate/dst_indoubt.h"
#include "migrate/dst_lazy.h"
#include "transport/request.h"

/* The agent's migration state. Each table has its own lock inside (see its
 * header); the pointers themselves do not change between mig_state_new and
 * mig_state_free. */
struct mig_state {
	struct indoubt *indoubt; /* migrations waiting for the source's decision */
	struct lazy_tab *lazy;	 /* post-copy migrations and their lazy-pages daemons */
	pthread_mutex_t lock;	 /* protects intake */
	struct dst_policy intake; /* what peers may send (dst_check.h) */
};

/* conns: the agent's connection limit (sizes what is remembered). */
struct mig_state *mig_state_new(unsigned conns, ferr_t *err);
/* When no connection runs any more. */
void mig_state_free(struct mig_state *m);
/* At agent start, before the first connection: settle what killed commands
 * and a killed agent left (reconcile.h; the outcomes of incoming migrations
 * settled here are remembered for a source that asks), then remove the
 * directories of incoming migrations an earlier agent left. */
int mig_state_start(struct mig_state *m, const char *state_dir, ferr_t *err);

/* The agent's configuration changed: what peers may send from now on (a
 * migration takes a copy at its BEGIN). */
void mig_state_set_intake(struct mig_state *m, const struct dst_policy *p);

/* The handlers, state: a struct mig_state. Ends with fn NULL. */
extern const struct req_handler mig_requests[];

#endif
