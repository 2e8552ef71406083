/* Checkpoint backends: how the state of a tenant is saved and loaded again
 * (CRIU for process trees and containers; QEMU's migration stream for VMs
 * next). A tenant kind (kind.h) names its backend; the dump and restore
 * stages (snapshot/) and live migration (migrate/) call it through this
 * table with generic options and never see the backend's own types.
 *
 * The handover of a live migration runs inside a save and a load, at their
 * hold points (docs/migrate.md): the backend calls the caller's event
 * function there and its answer decides:
 *
 *   save  CKPT_EV_FROZEN   the tenant stopped (the downtime starts)
 *         CKPT_EV_SAVED    HOLD: state saved, tenant frozen. Full save:
 *                          0 = commit (the backend ends the source copy),
 *                          < 0 = abort (the tenant runs on). Lazy save: the
 *                          last moment before the memory is served; < 0
 *                          aborts.
 *         CKPT_EV_SERVING  lazy save only, HOLD: the memory is served, the
 *                          tenant frozen. 0 = commit: the backend ends the
 *                          source copy, then CKPT_EV_COMMITTED (or
 *                          CKPT_EV_ABORTED with the reason in err when it
 *                          could not); < 0 = abort (the caller already told
 *                          its peer; the tenant resumes here).
 *   load  CKPT_EV_TASK     a process of the tenant exists (pid)
 *         CKPT_EV_LOADED   HOLD: loaded, stopped, its network locked; pid its
 *                          init. 0 = commit: it resumes; < 0 = abort: the
 *                          backend discards it and the load fails.
 *         CKPT_EV_RUNNING  it runs (pid)
 *         CKPT_EV_PAGER    lazy load only, before the load: the process that
 *                          serves the memory from page_fd started (pid). The
 *                          caller owns it from now: it reaps it once all the
 *                          memory is in and kills it when the migration
 *                          fails; < 0 aborts (the backend kills it).
 *
 * Backend-private choices (for CRIU: the page-server socket, pre-dump and
 * parent images, memory tracking, lazy pages and the post-copy action
 * script, the `criu swrk` started ahead, the kernel-probe cache) stay inside
 * the backend (ckpt_criu.c). */
#ifndef FERRY_CKPT_H
#define FERRY_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "tenant/registry.h"

/* Where a backend runs. */
struct ckpt_env {
	const char *tool;     /* the backend's program (CRIU: from criu_locate()) */
	const char *work_dir; /* its logs and statistics go here */
	int log_level;	      /* 1..4, 0: the backend's default (CRIU: criu_log_level()) */
};

/* What a backend must know of the tenant: filled by its kind (kind.h). */
struct ckpt_target {
	pid_t pid;		      /* save: the tenant's root process */
	const char *root;	      /* load: its root directory (NULL: the host's) */
	const struct tenant_net *net; /* load: its interface to recreate (NULL: none) */
	bool host_session;	      /* lives in the host's session and namespaces */
	bool own_mounts;	      /* has a mount namespace of its own */
	const char *name;	      /* the tenant's name */
	int argc;		      /* its command (VM: its QEMU configuration) */
	char *const *argv;
	uint32_t userns_gid; /* load: in a user namespace whose root is this host
			      * GID (0: none); CRIU reads images as that root */
	/* load: the cgroup (per v1 hierarchy; ctrl "" for v2) that becomes the
	 * tree's cgroup root here, made and limited by the kind beforehand */
	struct {
		char ctrl[16];
		char path[256];
	} cg_root[6];
	int n_cg_root;
};

enum ckpt_event {
	CKPT_EV_FROZEN = 1,
	CKPT_EV_SAVED,
	CKPT_EV_SERVING,
	CKPT_EV_COMMITTED,
	CKPT_EV_ABORTED,
	CKPT_EV_TASK,
	CKPT_EV_LOADED,
	CKPT_EV_RUNNING,
	CKPT_EV_PAGER,
};

/* 0: go on (commit at a hold point); < 0 with err filled: abort. */
typedef int (*ckpt_event_fn)(enum ckpt_event ev, pid_t pid, void *arg, ferr_t *err);

enum ckpt_save_mode {
	CKPT_SAVE_FULL = 0, /* the tenant's whole state (stops it unless leave_running) */
	CKPT_SAVE_ROUND,    /* pre-copy round: memory only, the tenant runs on */
	CKPT_SAVE_LAZY,	    /* post-copy: memory served on demand after the handover */
};

struct ckpt_save_opts {
	enum ckpt_save_mode mode;
	const char *dir;  /* the state goes here (exists, empty) */
	int stream_fd;	  /* >= 0: memory as a page stream on this socket (the caller's) */
	const char *prev; /* an earlier round's dir relative to dir: only what changed */
	bool track;	  /* track changes for a later round or final save */
	bool leave_running;
	bool tcp_established;
	/* live (caps.live): a full save that copies memory while the tenant
	 * runs and stops it for the last pass only, keeping the stop within
	 * max_downtime_ms (0: the backend's default) */
	bool live;
	int max_downtime_ms;
	/* the tenant's volumes (kind.h) go inside the stream: a peer created
	 * them empty (QEMU: block migration) */
	bool copy_volumes;
	ckpt_event_fn on_event; /* NULL: no events */
	void *arg;
};

/* A backend's own figures of a save (QEMU: query-migrate); has: any. */
struct ckpt_backend_stats {
	bool has;
	double downtime_ms; /* the tenant stopped, as the backend counts it */
	double total_ms;
	uint64_t transferred;	    /* bytes of its stream */
	uint64_t passes;	    /* iterations over the memory */
	uint64_t dirty_rate;	    /* pages dirtied per second, last measured */
	uint64_t postcopy_requests; /* post-copy: pages the destination asked for */
};

struct ckpt_save_result {
	double ms;	     /* wall time of the save, the backend's start included */
	uint64_t t_frozen;   /* lazy: monotonic ns the tenant froze at (0: unknown) */
	bool has_stats;	     /* the backend's own figures (ms) below */
	double freeze_ms;    /* stopping the tenant */
	double frozen_ms;    /* stopped while its memory was collected */
	double mem_dump_ms;  /* collecting memory */
	double mem_write_ms; /* writing or streaming it */
	uint64_t pages;	     /* memory pages written */
	bool lost;	     /* lazy: after the commit not all of the memory went (the
			      * save failed): the tenant is lost (QEMU's post-copy) */
	struct ckpt_backend_stats backend;
};

struct ckpt_load_opts {
	const char *dir;
	bool lazy;   /* post-copy: memory arrives on demand after the resume */
	int page_fd; /* lazy: the socket the memory arrives on (the caller keeps
		      * its copy; the backend's pager inherits one) */
	bool tcp_established;
	void *prepared; /* from prepare_load, or NULL (not freed by the load) */
	ckpt_event_fn on_event;
	void *arg;
};

struct ckpt_load_result {
	pid_t pid;	/* the tenant's new init (in this host's PID namespace) */
	double load_ms; /* the backend's own figure of the load, 0 when none */
};

/* What a backend can do on this host (probe): set what you ask about to
 * true, the backend clears what it lacks. */
struct ckpt_caps {
	bool rounds; /* pre-copy rounds: tracking what changed since a save */
	bool lazy;   /* lazy saves and loads: memory served on demand */
	bool live;   /* live full saves: the backend iterates over the memory
		      * itself while the tenant runs (QEMU's pre-copy) */
	bool tune;   /* in: the backend may change host settings a capability
		      * needs (`--tune-host`) */
};

/* A receiver of a page stream on the destination (one per save streamed). */
struct ckpt_sink;

struct ckpt_ops {
	const char *name; /* the manifest's image_format: "criu" */
	/* The backend takes the tenant's file locks again where it loads it
	 * (CRIU): a lock on storage the destination shares would stall the held
	 * handover, so a migration checks them first (tenant/lockcheck.h).
	 * QEMU hands its disk locks over itself. */
	bool moves_file_locks;
	/* The load reads a streamed save as it arrives (QEMU): a migration's
	 * destination calls prepare_load at MIGRATE_BEGIN (lazy for a
	 * post-copy), before the source stops the tenant, and hands what it
	 * got to sink_open, so that the load runs alongside the stream instead
	 * of after it. A lazy one's sink socket carries the stream both ways
	 * (the load asks the source for pages on it). */
	bool load_follows_stream;
	/* Find the backend's program on this host (ckpt_env.tool). */
	int (*locate)(char *out, size_t len, ferr_t *err);
	int (*save)(const struct ckpt_env *env, const struct ckpt_target *t,
		    const struct ckpt_save_opts *o, struct ckpt_save_result *res, ferr_t *err);
	int (*load)(const struct ckpt_env *env, const struct ckpt_target *t,
		    const struct ckpt_load_opts *o, struct ckpt_load_result *res, ferr_t *err);
	/* Ask the host (ckpt_caps). Fails when the backend cannot be asked, or
	 * (FX_HOST, saying what to change) when a host setting that the caller
	 * may not tune stands in the way of what it asked for. */
	int (*probe)(const struct ckpt_env *env, struct ckpt_caps *caps, ferr_t *err);
	/* After a full save, before its files are listed or leave the host:
	 * make the saved state loadable elsewhere (CRIU: image fix-ups). */
	int (*fixup)(const char *dir, ferr_t *err);
	/* Before the tenant goes down on the source: start what a later load
	 * needs (NULL: nothing, which is no error). With load_follows_stream:
	 * t has name, argc/argv, net, and env->work_dir the tenant's state
	 * directory; a failure is kept in what it returns and reported by
	 * sink_open. */
	void *(*prepare_load)(const struct ckpt_env *env, const struct ckpt_target *t, bool lazy);
	void (*prepared_free)(void *p);
	/* Destination of a streamed save: a receiver writing into dir (prev as
	 * in ckpt_save_opts), or into the load prepared ahead (prepared: from
	 * prepare_load, NULL: none); *fd is the socket to feed the stream into.
	 * *fd belongs to the sink: sink_close closes it (the caller never
	 * does), except for a lazy load prepared ahead (prepare_load with lazy:
	 * the stream goes both ways for as long as the memory arrives), whose
	 * *fd the caller owns from here and closes once the memory is in. */
	int (*sink_open)(const struct ckpt_env *env, const char *dir, const char *prev,
			 void *prepared, struct ckpt_sink **out, int *fd, ferr_t *err);
	/* End it (at once when failed) and close its *fd (see sink_open; a
	 * lazy load's *fd is left alone: its owner ends it, and may have
	 * closed it already); without failed, whether all of the stream was
	 * written. NULL is fine. */
	int (*sink_close)(struct ckpt_sink *s, bool failed, ferr_t *err);
	/* The owner of a save died before its decision and the tenant stays on
	 * this host (migrate/reconcile.c): make it run again. env->work_dir is
	 * the tenant's state directory. NULL: it resumes by itself (CRIU's
	 * trees do when their CRIU goes). QEMU: cancel its migration, `cont`. */
	int (*resume)(const struct ckpt_env *env, const struct ckpt_target *t, ferr_t *err);
	/* The tenant's process still exists here but its state went to the
	 * peer and it must never run here again (QEMU once its post-copy
	 * started: the commit did not end it, it serves the pages). Recovery
	 * then takes it as gone, never resumes it. NULL: never. */
	bool (*handed)(const struct ckpt_env *env, const struct ckpt_target *t);
};

extern const struct ckpt_ops ckpt_criu;
extern const struct ckpt_ops ckpt_qemu;

#endif
