/* Tenant drivers: how one kind of tenant is dumped, restored, resumed and
 * killed. A table of function pointers chosen by kind (like CRIU's struct
 * page_xfer or QEMU's MultiFDMethods), so that the dump / restore stages,
 * migration and snapshots run the same code for containers, plain process
 * trees and (later) VMs.
 *
 * Drivers do not touch the registry: the stages (dump.c, restore.c) own the
 * record, its lock and its state transitions. */
#ifndef FERRY_DRIVER_H
#define FERRY_DRIVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "criu/rpc.h"
#include "lib/err.h"
#include "tenant/registry.h"

/* Where a driver runs: the host's CRIU and where logs go. */
struct driver_env {
	const char *criu_path; /* from criu_locate() */
	const char *work_dir;  /* CRIU logs (and work files) go here */
	int log_level;	       /* CRIU log level 1..4, 0: criu_log_level()'s default */
};

struct driver_dump_opts {
	const char *images_dir;
	bool leave_running;
	bool tcp_established;
	bool pre_dump;
	struct criu_ps ps;	/* page server (ps.enabled false: images to disk) */
	const char *parent_img; /* incremental dumps: parent images, relative */
	bool track_mem;
	bool lazy_pages;
	criu_notify_fn notify; /* caller's hook on CRIU notifications, or NULL */
	void *notify_arg;
};

/* What a restore needs, from the manifest and the destination's choices. */
struct driver_restore_opts {
	const char *images_dir;
	const char *rootfs;	      /* containers: root file system directory */
	const struct tenant_net *net; /* NULL or addr "" : no network plumbing */
	bool tcp_established;
	bool lazy_pages;
	struct criu_ps ps;	/* lazy pages: the page server */
	struct criu_swrk *swrk; /* started ahead (criu.h), or NULL */
	criu_notify_fn notify;
	void *notify_arg;
};

struct tenant_driver {
	enum tenant_kind kind;
	const char *name; /* "container", "proctree" */
	/* Freeze and serialize rec's tree into o->images_dir. */
	int (*dump)(const struct driver_env *env, const struct tenant_rec *rec,
		    const struct driver_dump_opts *o, struct criu_dump_result *res, ferr_t *err);
	/* Bring a tree back from images, detached from ferry; *pid gets the new
	 * init pid. Network plumbing of the host side happens before the tree
	 * resumes. */
	int (*restore)(const struct driver_env *env, const struct driver_restore_opts *o,
		       pid_t *pid, ferr_t *err);
	/* Make a tenant that a dump stopped run again on this host: nothing when
	 * it still runs (leave-running), else a restore from rec->last_dump.
	 * Updates rec->init_pid. */
	int (*resume)(const struct driver_env *env, struct tenant_rec *rec, ferr_t *err);
	/* Kill the whole tree (and remove its host network plumbing). */
	int (*kill)(const struct driver_env *env, const struct tenant_rec *rec, ferr_t *err);
};

/* The driver of a kind, or NULL. */
const struct tenant_driver *driver_find(enum tenant_kind kind);

extern const struct tenant_driver driver_container;
extern const struct tenant_driver driver_proctree;

/* Helpers shared by the CRIU-based drivers (driver_common.c). */
bool driver_pid_alive(pid_t pid);
/* SIGKILL pid and all its descendants; waits (bounded) until pid is gone. */
int driver_kill_tree(pid_t pid, ferr_t *err);
/* Send sig to pid and all its descendants, without waiting (a tree stopped
 * by a tracer dies only once the tracer lets go of it). */
int driver_signal_tree(pid_t pid, int sig, ferr_t *err);
/* Translate the driver options into CRIU's, with what both CRIU drivers
 * share (file locks, nftables network lock, log files); drivers then add
 * their own (root, veths, shell_job, their notify hook). */
void driver_criu_dump_opts(const struct driver_env *env, const struct tenant_rec *rec,
			   const struct driver_dump_opts *o, struct criu_dump_opts *d);
void driver_criu_restore_opts(const struct driver_env *env, const struct driver_restore_opts *o,
			      struct criu_restore_opts *r);
/* Resume through restore from rec->last_dump with the driver's restore. */
int driver_resume_from_images(const struct tenant_driver *d, const struct driver_env *env,
			      struct tenant_rec *rec, ferr_t *err);

#endif
