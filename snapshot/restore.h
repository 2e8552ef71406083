/* Stage 3, restore: verify an image set against its manifest, bring the
 * tenant back through its driver, re-plumb its network and register it. */
#ifndef FERRY_RESTORE_H
#define FERRY_RESTORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "criu/rpc.h"
#include "lib/err.h"
#include "tenant/registry.h"

struct restore_opts {
	const char *state_dir;
	const char *criu_path;
	const char *images_dir;
	const char *name; /* NULL: the manifest's tenant name */
	int log_level;	  /* CRIU log level (0: criu_log_level()'s, 4) */
	/* The caller checked every file against the manifest already (e.g. the
	 * receiver verified each one as it arrived): only the manifest is read. */
	bool files_verified;
	criu_notify_fn notify; /* optional hook on CRIU's notifications */
	void *notify_arg;
	bool lazy_pages;	/* post-copy: a `criu lazy-pages` daemon serves the memory */
	struct criu_swrk *swrk; /* CRIU started ahead (criu.h), or NULL */
	/* Register the tenant at CRIU's post-restore, before it runs: state
	 * "frozen" with its pid (then "running" once CRIU returns). A caller
	 * that dies between resuming it and CRIU's return leaves a record of a
	 * live tenant, never a live tenant without a record. A failed restore
	 * puts back the previous record (or none). */
	bool register_held;
};

struct restore_result {
	char name[64];
	enum tenant_kind kind;
	pid_t pid; /* new init pid, host PID namespace */
	char dir[PATH_MAX];
	char set_id[40];
	uint64_t size;
	double verify_ms;	/* manifest and hashes */
	double criu_ms;		/* wall time of the CRIU restore request */
	double criu_restore_ms; /* CRIU's own restore time (stats-restore), 0 if none */
	double total_ms;	/* whole stage */
};

int restore_tenant(const struct restore_opts *o, struct restore_result *r, ferr_t *err);

/* Manifest checks only (magic, version, files' sizes and hashes). */
int restore_verify(const char *dir, ferr_t *err);

#endif
