/* Mode choice and host requirements of each mode (migrate_mode.h). */
#define LOG_PREFIX "migrate"
#include "migrate/migrate_mode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fsutil.h"
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

static int write_str(const char *path, const char *val, ferr_t *err)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(val, f) < 0 || fclose(f) != 0) {
		if (f)
			fclose(f);
		return ferr_sys(err, FX_HOST, "setting %s", path);
	}
	return 0;
}

/* fs.pipe-user-pages-soft=0 and fs.pipe-max-size >= 16 MiB: CRIU's lazy dump
 * keeps every page in pipes (without CAP_SYS_RESOURCE the per-user limit
 * applies). A host setting: only with --tune-host. */
static int post_copy_pipes(bool tune, ferr_t *err)
{
	long soft = fs_read_long("/proc/sys/fs/pipe-user-pages-soft");
	long max = fs_read_long("/proc/sys/fs/pipe-max-size");
	char v[32];

	if (soft == 0 && max >= (long)MIG_PIPE_MAX)
		return 0;
	if (!tune)
		return ferr_set(err, FX_HOST,
				"post-copy needs fs.pipe-user-pages-soft=0 and fs.pipe-max-size >= "
				"%u on this host (now %ld and %ld): run with --tune-host to set "
				"them, or use --mode stop-copy",
				MIG_PIPE_MAX, soft, max);
	snprintf(v, sizeof(v), "%u", MIG_PIPE_MAX);
	if (write_str("/proc/sys/fs/pipe-user-pages-soft", "0", err) < 0 ||
	    (max < (long)MIG_PIPE_MAX && write_str("/proc/sys/fs/pipe-max-size", v, err) < 0))
		return -1;
	fprintf(stderr,
		"ferry migrate: --tune-host: set fs.pipe-user-pages-soft=0 (was %ld) and "
		"fs.pipe-max-size=%ld (was %ld) on this host\n",
		soft, max < (long)MIG_PIPE_MAX ? (long)MIG_PIPE_MAX : max, max);
	return 0;
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
		f.rounds = true;
		if (ckpt->probe(&env, &f, &e) < 0) {
			pr_info("auto: no %s feature check (%s): stop-copy", ckpt->name, e.msg);
			f.rounds = false;
		}
		*mode = f.rounds ? MIG_PRE_COPY : MIG_STOP_COPY;
		return 0;
	}
	case MIG_STOP_COPY:
		*mode = MIG_STOP_COPY;
		return 0;
	case MIG_PRE_COPY:
		f.rounds = true;
		if (ckpt->probe(&env, &f, err) < 0)
			return -1;
		if (!f.rounds && !skip_check())
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
		if (ckpt->probe(&env, &f, err) < 0)
			return -1;
		if (!f.lazy)
			return ferr_set(err, FX_HOST,
					"post-copy needs userfaultfd (lazy pages), which this "
					"kernel lacks: use --mode stop-copy");
		if (post_copy_pipes(o->tune_host, err) < 0)
			return -1;
		*mode = MIG_POST_COPY;
		return 0;
	}
	return ferr_set(err, FX_USAGE, "unknown mode");
}
