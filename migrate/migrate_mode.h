/* Choosing a migration mode for this host pair (migrate.h). stop-copy works
 * wherever CRIU does; pre-copy needs dirty memory tracking (soft-dirty);
 * post-copy needs userfaultfd and the pipe limits a lazy dump needs (the
 * tenant's checkpoint backend tells: ckpt_ops.probe). auto
 * picks the best safe mode: pre-copy where this (the source) host tracks
 * dirty memory, else stop-copy (post-copy is never chosen by itself: if the
 * source dies before every page arrived, the tenant is lost). */
#ifndef FERRY_MIGRATE_MODE_H
#define FERRY_MIGRATE_MODE_H

#include "lib/err.h"
#include "migrate/migrate.h"
#include "tenant/ckpt.h"

/* Post-copy (CRIU lazy pages over the session). */
#define MIG_HAVE_POST_COPY 1

struct src; /* one migration, source side (migrate_src.h) */

/* A migration mode, source side: run the whole migration of s after BEGIN
 * was accepted (freeze, stream, hand over, commit or abort, clean up). */
struct mig_mode_ops {
	enum mig_mode mode;
	int (*run)(struct src *s, ferr_t *err);
};

extern const struct mig_mode_ops mig_mode_stop_copy; /* migrate_stopcopy.c */
extern const struct mig_mode_ops mig_mode_pre_copy;  /* migrate_precopy.c */
extern const struct mig_mode_ops mig_mode_post_copy; /* migrate_postcopy.c */

/* The ops of a chosen mode (not MIG_AUTO: mig_mode_choose resolves it). */
const struct mig_mode_ops *mig_mode_ops(enum mig_mode m);

/* o->mode resolved into *mode for a tenant saved by ckpt (its probe says
 * what this host can do), or FX_HOST saying what this host lacks. With
 * o->tune_host, post-copy's sysctls are set (and said so on stderr). */
int mig_mode_choose(const struct migrate_opts *o, const struct ckpt_ops *ckpt, enum mig_mode *mode,
		    ferr_t *err);
/* Does ckpt pre-copy by itself (ckpt_caps.live: one live save, e.g.
 * QEMU's iterative passes) rather than through rounds? Then pre-copy is
 * one stream on the wire, as stop-copy's. */
bool mig_mode_backend_live(const struct ckpt_ops *ckpt);

#endif
