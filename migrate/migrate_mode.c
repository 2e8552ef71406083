/* Mode choice and host requirements of each mode (migrate_mode.h). */
#define LOG_PREFIX "migrate"
#include "migrate/migrate_mode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

static const char *const names[] = {"auto", "stop-copy", "pre-copy", "post-copy"};

const char *mig_mode_str(enum mig_mode m)
{
	return (unsigned)m < 4 ? names[m] : "?";
}

int mig_mode_parse(const char *s, enum mig_mode *m, ferr_t *err)
{
	for (int i = 0; i < 4; i++) {
		if (!strcmp(s, names[i])) {
			*m = (enum mig_mode)i;
			return 0;
		}
	}
	return ferr_set(err, FX_USAGE, "unknown mode '%s' (auto, stop-copy, pre-copy, post-copy)",
			s);
}

const struct mig_mode_ops *mig_mode_ops(enum mig_mode m)
{
	switch (m) {
	case MIG_PRE_COPY:
		return &mig_mode_pre_copy;
	case MIG_POST_COPY:
		return &mig_mode_post_copy;
	default:
		return &mig_mode_stop_copy;
	}
}

/* Test hook (docs/migrate.md): FERRY_FAULT=precopy-skip-check lets an
 * explicit pre-copy go on without soft-dirty, so that CRIU itself refuses the
 * first round ("Tracking memory is not available") and the failure path of
 * a round runs on hosts that cannot run the rounds. */
static bool skip_check(void)
{
	const char *f = getenv("FERRY_FAULT");

	return f && !strcmp(f, "precopy-skip-check");
}

bool mig_mode_backend_live(const struct ckpt_ops *ckpt)
{
	struct ckpt_env env = {0};
	struct ckpt_caps f = {.live = true};

	return ckpt->probe(&env, &f, NULL) == 0 && f.live;
}

int mig_mode_choose(const struct migrate_opts *o, const struct ckpt_ops *ckpt, enum mig_mode *mode,
		    ferr_t *err)
{
	struct ckpt_env env = {.tool = o->criu_path};
	struct ckpt_caps f = {0};

	switch (o->mode) {
	case MIG_AUTO: {
		/* pre-copy is safe (the tenant runs here until the final
		 * handover) and shortens the freeze: take it where this host
		 * tracks dirty memory */
		ferr_t e = {0};
		f.rounds = f.live = true;
		if (ckpt->probe(&env, &f, &e) < 0) {
			pr_info("auto: no %s feature check (%s): stop-copy", ckpt->name, e.msg);
			f.rounds = f.live = false;
		}
		*mode = f.rounds || f.live ? MIG_PRE_COPY : MIG_STOP_COPY;
		return 0;
	}
	case MIG_STOP_COPY:
		*mode = MIG_STOP_COPY;
		return 0;
	case MIG_PRE_COPY:
		f.rounds = f.live = true;
		if (ckpt->probe(&env, &f, err) < 0)
			return -1;
		if (!f.rounds && !f.live && !skip_check())
			return ferr_set(
			    err, FX_HOST,
			    "pre-copy needs dirty memory tracking (soft-dirty), which "
			    "this kernel lacks (see `ferry check`): use --mode stop-copy "
			    "or auto");
		*mode = MIG_PRE_COPY;
		return 0;
	case MIG_POST_COPY:
		if (!MIG_HAVE_POST_COPY)
			return ferr_set(
			    err, FX_HOST,
			    "post-copy is not implemented in this ferry yet (nothing was "
			    "changed on this host): use --mode stop-copy or auto");
		f.lazy = true;
		f.tune = o->tune_host;
		if (ckpt->probe(&env, &f, err) < 0)
			return -1;
		if (!f.lazy)
			return ferr_set(err, FX_HOST,
					"post-copy needs userfaultfd (lazy pages), which this "
					"kernel lacks: use --mode stop-copy");
		*mode = MIG_POST_COPY;
		return 0;
	}
	return ferr_set(err, FX_USAGE, "unknown mode");
}
