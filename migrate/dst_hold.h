/* Destination of a live migration, the held restore and the handover
 * (dst_hold.c, docs/migrate.md "Handover"): once the tenant's state is here
 * and the source said RESTORE, the backend loads it and stops at its hold
 * point; RESTORED goes to the source, whose COMMIT (or, the session lost,
 * its decision asked for: query.h) lets the tenant resume here; then the
 * network moves (MAC, gratuitous ARP) and DONE tells the source its
 * figures. dst.c runs the migration up to RESTORE and shares with this
 * module the state of one incoming migration (struct dst); nothing else
 * includes this header. */
#ifndef FERRY_DST_HOLD_H
#define FERRY_DST_HOLD_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/err.h"
#include "migrate/dst.h"
#include "migrate/dst_check.h"
#include "migrate/dst_fs.h"
#include "migrate/query.h"
#include "migrate/wire_enums.h"
#include "tenant/ckpt.h"
#include "tenant/kind.h"
#include "transport/chan.h"
#include "transport/request.h"
#include "transport/wire.h"

/* One incoming migration (MIGRATE_BEGIN), on its connection's thread. */
struct dst {
	struct chan *c;
	const struct req_ctx *o;
	struct mig_state *m; /* the agent's tables: in doubt, lazy pages */
	Ferry__Wire__MigrateBegin *b;
	enum tenant_kind kind; /* b's kind and mode (wire_enums.h) */
	enum mig_mode mode;
	const char *fault; /* FERRY_FAULT (testing hook, docs/migrate.md) */
	char dir[PATH_MAX];
	char criu[PATH_MAX];
	const struct tenant_kind_ops *ops; /* the kind's (tenant/kind.h) */
	struct ckpt_env env;		   /* the tenant's backend: CRIU's path */
	struct ckpt_sink *sink;		   /* stop-copy: the page stream's receiver */
	bool registered;		   /* in the in-doubt table */
	bool lazy;			   /* post-copy: registered in the lazy table */
	int lazy_sk;			   /* the daemon's end until it starts */
	void *prepared;			   /* post-copy: the backend's prepare_load, at BEGIN */
	bool restored_sent;		   /* MIG_RESTORED went out: the source may commit */
	struct hq_source src_agent;	   /* whom to ask when in doubt (query.h) */
	struct dst_policy pol;		   /* what peers may send, at BEGIN */
	struct dst_intake in;		   /* what we decided: root, host interface */
	uint64_t t_restore, t_commit, t_running; /* t_running: CRIU's post-resume */
	struct mfs_dst *fs;			 /* the tenant's files travel (dst_fs.h) */
	int n_made;				 /* volumes created here: */
	char made[TENANT_VOLUMES_MAX][PATH_MAX]; /* their paths, parent resolved */
	double net_ms;				 /* the gratuitous ARP, at t_running */
	struct indoubt_remap remap;		 /* its ID range re-mapped here (DONE says it) */
};

/* The testing hook FERRY_FAULT names this point (docs/migrate.md). */
static inline bool dst_fault(const struct dst *d, const char *what)
{
	return d->fault && !strcmp(d->fault, what);
}

static inline bool dst_post_copy(const struct dst *d)
{
	return d->mode == MIG_POST_COPY;
}

/* After RESTORE: the held restore of d->dir, the handover, DONE. 0: the
 * tenant runs here (registered); < 0: it does not (the backend discarded
 * what it loaded), and the source may or may not have committed (the
 * in-doubt table, d->registered, says what it decided). */
int dst_hold_restore(struct dst *d, ferr_t *err);

/* DONE's fields for rm (nothing when not re-mapped): the holder's, and
 * MIGRATE_RESOLVE's answer from the outcome remembered with it. */
void dst_step_remap(const struct indoubt_remap *rm, Ferry__Wire__MigrateStep *st);

#endif
