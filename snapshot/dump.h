/* Stage 1, dump: freeze a tenant, save it through its kind's checkpoint
 * backend (tenant/kind.h, tenant/ckpt.h; CRIU today) into a directory and
 * describe the result in a ferry manifest (manifest.ferry). */
#ifndef FERRY_DUMP_H
#define FERRY_DUMP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "proto/manifest.h"
#include "tenant/ckpt.h"
#include "tenant/registry.h"

struct dump_opts {
	const char *state_dir;	/* registry */
	const char *criu_path;	/* from criu_locate() */
	const char *name;	/* registered tenant; or, with pid, the name to register */
	pid_t pid;		/* > 0: a process tree not started by ferry */
	const char *images_dir; /* created if missing; must be empty */
	bool leave_running;
	bool tcp_established;
	int log_level;		/* the backend's log level (0: its default) */
	ckpt_event_fn on_event; /* optional: the backend's events (ckpt.h) */
	void *event_arg;
	bool stream; /* migration: memory as a page stream on stream_fd */
	int stream_fd;
	/* pre-copy's final dump: the last pre-dump round's images (relative to
	 * images_dir) and change tracking, so that only dirty pages go */
	const char *prev;
	bool track;
	/* a backend's live save (ckpt_save_opts.live) and its longest stop */
	bool live;
	int max_downtime_ms;
	bool copy_volumes; /* migration: the backend copies the tenant's volumes */
	/* image tenants: their own layer (and the image) into the set
	 * (snapshot/rootfs_set.h) */
	bool with_rootfs, with_image;
};

struct dump_result {
	char name[64];
	enum tenant_kind kind;
	enum tenant_state state; /* after the dump: dumped, or running */
	char dir[PATH_MAX];	 /* absolute */
	char set_id[40];
	uint64_t size; /* bytes of every listed file */
	size_t n_files;
	double freeze_ms, frozen_ms, mem_dump_ms, mem_write_ms; /* CRIU's stats */
	double criu_ms;						/* wall time of the CRIU request */
	double total_ms;					/* whole stage, manifest included */
	struct ckpt_backend_stats backend;			/* the backend's own figures */
};

int dump_tenant(const struct dump_opts *o, struct dump_result *r, ferr_t *err);

/* Checks that dir can receive a new image set: missing (created) or empty.
 * FX_CONFLICT when it holds anything, with a clearer message when that is a
 * manifest. */
int dump_prepare_dir(const char *dir, ferr_t *err);

/* A manifest describing REC's tenant (name, kind, rootfs, argv, network,
 * init pid, CRIU image format); the caller adds the files and the source.
 * NULL when out of memory. Used by `ferry dump` and by `ferry migrate`. */
manifest_t *dump_manifest_new(const struct tenant_rec *rec, bool tcp_established);

#endif
