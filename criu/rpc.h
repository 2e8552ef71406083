/* CRIU RPC client: ferry's own protobuf-c client of `criu swrk FD`.
 *
 * Each request spawns `CRIU swrk FD` on one end of a SOCK_SEQPACKET socket
 * pair, sends one packed CriuReq and reads CriuResp messages until the final
 * answer. Notifications (post-dump, network-lock, setup-namespaces,
 * post-restore, ...) are answered in between through the caller's callback.
 * Not libcriu: later stages need opts.ps.fd (a page-server socket handed to
 * CRIU), notifications, pre-dump and lazy pages.
 *
 * Every fd the caller lists (ps.fd, inherit fds) stays open in CRIU under the
 * same number; every other fd of ferry is closed in the CRIU child
 * (criu/spawn.h). CRIU logs at criu_log_level() (criu/log.h). */
#ifndef FERRY_CRIU_H
#define FERRY_CRIU_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "criu/log.h"
#include "lib/err.h"

/* How CRIU treats cgroups (--manage-cgroups MODE). */
enum criu_cg_mode {
	CRIU_CG_DEFAULT = 0, /* CRIU's default (soft) */
	CRIU_CG_IGNORE,
	CRIU_CG_NONE,
	CRIU_CG_PROPS,
	CRIU_CG_SOFT,
	CRIU_CG_FULL,
	CRIU_CG_STRICT,
};

/* A notification from CRIU: script is the action name ("post-dump",
 * "network-lock", "setup-namespaces", "post-restore", ...), pid the task it
 * concerns (0 if none). Return 0 to let CRIU go on; a negative value (with
 * err filled) makes CRIU abort the operation. */
typedef int (*criu_notify_fn)(const char *script, pid_t pid, void *arg, ferr_t *err);

/* Page server: either an address/port, or a connected socket (fd >= 0) that
 * CRIU uses instead of connecting itself. */
struct criu_ps {
	bool enabled;
	const char *address;
	int port;
	int fd; /* -1: none */
};

struct criu_inherit_fd {
	const char *key; /* e.g. "pipe:[12345]" or a file path, as CRIU expects */
	int fd;
};

/* Options common to every request. */
struct criu_common_opts {
	const char *criu_path;	/* from criu_locate() */
	const char *images_dir; /* images directory (opened by the client) */
	const char *work_dir;	/* log and stats go here; NULL: images_dir */
	const char *log_file;	/* name inside work_dir; NULL: no log */
	int log_level;		/* 1..4, 0: ferry's default (criu_log_level) */
	bool tcp_established;
	bool shell_job;
	bool ext_unix_sk;
	bool file_locks;
	bool orphan_pts_master;
	bool nftables_lock; /* network lock through nftables, not iptables */
	enum criu_cg_mode cg_mode;
	const char *const *external; /* NULL-terminated --external specs, or NULL */
	criu_notify_fn notify;	     /* NULL: notifications off */
	void *notify_arg;
};

/* Every dump skips in-flight connections (--skip-in-flight): a connection not
 * yet accepted at the freeze would otherwise fail it. */
struct criu_dump_opts {
	struct criu_common_opts c;
	pid_t pid;
	bool leave_running;
	bool pre_dump; /* CRIU_REQ_TYPE__SINGLE_PRE_DUMP instead of DUMP */
	struct criu_ps ps;
	const char *parent_img; /* relative to images_dir, e.g. "../pre1" */
	bool track_mem;
	bool lazy_pages;
};

struct criu_veth {
	const char *if_in;  /* inside the tenant, "eth0" */
	const char *if_out; /* host side name */
};

struct criu_swrk;

/* --cgroup-root [CTRL:]PATH: the tree's cgroup (its cgroup namespace's
 * root) goes to PATH in hierarchy CTRL (NULL: every hierarchy). */
struct criu_cg_root {
	const char *ctrl;
	const char *path;
};

#define CRIU_MAX_CG_ROOTS 8

struct criu_restore_opts {
	struct criu_common_opts c;
	struct criu_cg_root cg_roots[CRIU_MAX_CG_ROOTS];
	size_t n_cg_roots;
	const char *root; /* new root for the tree (containers: the rootfs) */
	const struct criu_veth *veths;
	size_t n_veths;
	bool rst_sibling; /* restored tree is detached from CRIU (survives ferry) */
	bool lazy_pages;
	bool kdat_ns;	   /* CRIU in a mount namespace with cached probes (criu_kdat.h) */
	struct criu_ps ps; /* lazy pages: where the page server is */
	/* a `criu swrk` started ahead (criu_swrk_start), or NULL; used (and
	 * emptied) when nothing is inherited and no page server is handed */
	struct criu_swrk *swrk;
	const struct criu_inherit_fd *inherit;
	size_t n_inherit;
};

struct criu_dump_result {
	double rpc_ms; /* wall time of the request, spawn of CRIU included */
	bool restored; /* CRIU's dump.restored flag */
};

struct criu_version {
	int major, minor, sublevel;
	char gitid[64];
	char text[96]; /* "4.1.1" (+ " (gitid)") */
};

struct criu_features {
	bool mem_track;
	bool lazy_pages;
	bool pidfd_store;
};

int criu_dump(const struct criu_dump_opts *o, struct criu_dump_result *res, ferr_t *err);
/* *pid gets the restored tree's root pid (in ferry's PID namespace). */
int criu_restore(const struct criu_restore_opts *o, pid_t *pid, ferr_t *err);
/* Start `criu swrk` now for a restore request later (its exec and library
 * loading then happen before the tenant is down); kdat_ns as in
 * criu_restore_opts. Free what no restore took with criu_swrk_free. */
struct criu_swrk *criu_swrk_start(const char *criu_path, bool kdat_ns, ferr_t *err);
void criu_swrk_free(struct criu_swrk *w);
int criu_get_version(const char *criu_path, struct criu_version *v, ferr_t *err);
/* Asks CRIU which of the features in *f (set to true) the kernel supports. */
int criu_check_features(const char *criu_path, struct criu_features *f, ferr_t *err);

#endif
