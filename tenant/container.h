/* Container tenants: start an init in its own PID, mount, UTS, IPC and
 * network namespaces on a pivot_root'ed root file system, in the shape CRIU
 * can dump and restore (own /proc and /dev, stdio inside the rootfs, no
 * inherited fds, a session of its own), and stop it again. */
#ifndef FERRY_CONTAINER_H
#define FERRY_CONTAINER_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "tenant/cgroup.h"
#include "tenant/registry.h"

/* The console log of a container, relative to its root file system. */
#define CONTAINER_CONSOLE "/.ferry/console.log"

struct container_opts {
	const char *name;	    /* tenant name, also the hostname */
	const char *rootfs;	    /* root file system directory (absolute) */
	char *const *argv;	    /* init command, NULL-terminated, resolved inside rootfs */
	const char *net_addr;	    /* "ADDR/PREFIX" or NULL: no network besides lo */
	const char *host_if;	    /* host side of the veth pair (with net_addr) */
	const char *tenant_if;	    /* tenant side ("eth0") (with net_addr) */
	int timeout_ms;		    /* set-up deadline; 0 = 10 s */
	uint32_t id_base;	    /* user namespace: tenant IDs 0.. map to id_base.. */
	uint32_t id_count;	    /* 0: no user namespace (the host's) */
	bool harden;		    /* with id_count: capabilities, no_new_privs, seccomp,
				     * masked /proc, read-only /sys (tenant/isolate.h) */
	const struct tenant_cg *cg; /* its cgroup, made and limited (or NULL): the
				     * init enters it and a cgroup namespace */
};

struct container_info {
	pid_t pid;	/* the init, as seen from the host */
	uint64_t start; /* its start time (see proc_start_time) */
};

/* Start the container and return once its command runs (exec succeeded). The
 * init is not a child of the caller (it is reparented), so it outlives ferry.
 * Errors of the set-up inside the container (bad rootfs, missing command)
 * come back in err. */
int container_start(const struct container_opts *o, struct container_info *out, ferr_t *err);

/* Send sig to the init (if it is still the process that started at start)
 * and wait up to timeout_ms until it is gone; FX_FAIL when it outlives the
 * wait. A process that is already gone is success. */
int container_stop(pid_t pid, uint64_t start, int sig, int timeout_ms, ferr_t *err);

/* Before `criu restore` of a container (e.g. on another host): make sure
 * ROOTFS/.ferry/console.log exists. CRIU reopens the init's stdout/stderr by
 * that path and the restore fails when it is missing; its content and size
 * may differ from the dump's. Existing content is kept. */
int container_prepare_restore(const char *rootfs, ferr_t *err);

/* STATE_DIR/tenants/NAME/console.log -> ROOTFS/.ferry/console.log (replaced
 * if present), so operators find a container's output. */
int container_link_console(const char *state_dir, const char *name, const char *rootfs,
			   ferr_t *err);

#endif
