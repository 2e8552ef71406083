/* Stage 3, restore: verify an image set against its manifest, bring the
 * tenant back through its kind and checkpoint backend (tenant/kind.h),
 * re-plumb its network and register it. */
#ifndef FERRY_RESTORE_H
#define FERRY_RESTORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "tenant/ckpt.h"
#include "tenant/registry.h"

struct restore_opts {
	const char *state_dir;
	const char *criu_path;
	const char *images_dir;
	const char *name; /* NULL: the manifest's tenant name */
	int log_level;	  /* the backend's log level (0: its default) */
	/* The caller checked every file against the manifest already (e.g. the
	 * receiver verified each one as it arrived): only the manifest is read. */
	bool files_verified;
	ckpt_event_fn on_event; /* optional: the backend's events (ckpt.h) */
	void *event_arg;
	bool lazy;	/* post-copy: the memory is served on demand (ckpt_load_opts) */
	int page_fd;	/* lazy: the socket the memory arrives on (ckpt_load_opts) */
	void *prepared; /* the backend's prepare_load, or NULL (not freed here) */
	/* Register the tenant at the load's hold point, before it runs: state
	 * "frozen" with its pid (then "running" once the load returns). A
	 * caller that dies between resuming it and the load's return leaves a
	 * record of a live tenant, never a live tenant without a record. A
	 * failed restore puts back the previous record (or none). */
	bool register_held;
	/* What the caller decided, in place of the manifest's (a destination
	 * never takes a peer's path or interface name): the tenant's root, its
	 * host interface; NULL or "": the manifest's. */
	const char *rootfs;
	const char *host_if;
};

struct restore_result {
	char name[64];
	enum tenant_kind kind;
	pid_t pid; /* new init pid, host PID namespace */
	char dir[PATH_MAX];
	char set_id[40];
	uint64_t size;
	double verify_ms;	/* manifest and hashes */
	double criu_ms;		/* wall time of the backend's load */
	double criu_restore_ms; /* CRIU's own restore time (stats-restore), 0 if none */
	double total_ms;	/* whole stage */
	/* its user-namespace ID range was taken here: re-mapped (isolate.h)
	 * from host IDs id_from.. to id_to.. (both 0: not re-mapped) */
	uint32_t id_from, id_to;
};

int restore_tenant(const struct restore_opts *o, struct restore_result *r, ferr_t *err);

/* Manifest checks only (magic, version, files' sizes and hashes). */
int restore_verify(const char *dir, ferr_t *err);

#endif
