/* Tenant registry: one record per tenant under STATE_DIR/tenants/NAME/.
 * Records are written atomically (write, fsync, rename). */
#ifndef FERRY_REGISTRY_H
#define FERRY_REGISTRY_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "proto/manifest.pb-c.h"

enum tenant_kind { TK_CONTAINER = 1, TK_PROCTREE = 2, TK_VM = 3 };
enum tenant_state { TS_RUNNING = 1, TS_FROZEN = 2, TS_DUMPED = 3, TS_GONE = 4 };

struct tenant_net {
	char addr[64];	    /* tenant address with prefix, "10.77.0.2/24"; "" = no network */
	char host_if[16];   /* host side of the veth pair */
	char tenant_if[16]; /* interface name inside the tenant ("eth0") */
};

/* Isolation of a container tenant (tenant/userns.h, tenant/cgroup.h):
 * zero fields mean "none". */
struct tenant_iso {
	uint32_t id_base;  /* user namespace: tenant ID 0 is host ID id_base */
	uint32_t id_count; /* 0: the host's user namespace (--privileged) */
	int64_t mem_max;   /* bytes */
	int64_t pids_max;
	int64_t cpu_milli; /* CPUs x 1000 (CFS quota) */
	int64_t io_weight; /* 10..1000 (blkio/io weight) */
	bool hardened;	   /* capabilities, no_new_privs, seccomp, masked /proc (--isolate) */
};

/* A tenant with any limit has a cgroup of its own (tenant/cgroup.h). */
static inline bool tenant_has_cgroup(const struct tenant_iso *iso)
{
	return iso->mem_max || iso->pids_max || iso->cpu_milli || iso->io_weight;
}

struct tenant_rec {
	char name[64];
	enum tenant_kind kind;
	enum tenant_state state;
	pid_t init_pid;	       /* in the host's PID namespace; 0 when not running */
	char rootfs[PATH_MAX]; /* containers: the root file system directory */
	/* containers from an image (tenant/image.h): its content id; rootfs is
	 * then the overlay of that image and the tenant's upper layer */
	char image[72];
	struct tenant_net net;
	int argc;
	char **argv;	 /* malloc'd, NULL-terminated; freed by tenant_rec_free */
	int64_t created; /* seconds since the epoch */
	int64_t updated;
	char last_dump[PATH_MAX]; /* directory of the last dump, if any */
	/* start time of init_pid (/proc/PID/stat field 22, clock ticks since
	 * boot): tells our init from a later process that reuses its PID */
	uint64_t init_start;
	struct tenant_iso iso;
};

const char *tenant_kind_str(enum tenant_kind k);
/* The kind as proto's TenantKind (proto/manifest.proto), which manifests and
 * MigrateBegin carry: the one place the two are mapped. from_pb: -1 for a
 * value this build does not know (TENANT_UNKNOWN included). */
Ferry__TenantKind tenant_kind_to_pb(enum tenant_kind k);
int tenant_kind_from_pb(Ferry__TenantKind p, enum tenant_kind *k);
const char *tenant_state_str(enum tenant_state s);
void tenant_rec_free(struct tenant_rec *r); /* frees argv only */
int tenant_rec_set_argv(struct tenant_rec *r, int argc, char *const *argv, ferr_t *err);

/* Paths: STATE_DIR/tenants/NAME (the tenant's own directory: record, log). */
int registry_tenant_dir(const char *state_dir, const char *name, char *out, size_t len,
			ferr_t *err);

/* Create STATE_DIR and its layout if missing. */
int registry_init(const char *state_dir, ferr_t *err);
/* FX_NOTFOUND if there is no such tenant. */
int registry_load(const char *state_dir, const char *name, struct tenant_rec *out, ferr_t *err);
int registry_save(const char *state_dir, const struct tenant_rec *rec, ferr_t *err);
int registry_remove(const char *state_dir, const char *name, ferr_t *err);
/* All records, sorted by name; *recs malloc'd (free each with tenant_rec_free). */
int registry_list(const char *state_dir, struct tenant_rec **recs, size_t *n, ferr_t *err);
/* Exclusive per-tenant lock (flock on a lock file) so that two commands do not
 * operate on one tenant at once. Returns an fd to close, or -1 (FX_CONFLICT
 * when another ferry holds it). */
int registry_lock(const char *state_dir, const char *name, ferr_t *err);
/* A record says running but its init is gone: mark it TS_GONE (saved). */
int registry_refresh(const char *state_dir, struct tenant_rec *rec, ferr_t *err);

/* Record file coding ("key=value" lines, values escaped): *buf is malloc'd.
 * Decoding fills out (free with tenant_rec_free); FX_INTEGRITY on bad input. */
int tenant_rec_encode(const struct tenant_rec *rec, char **buf, size_t *len, ferr_t *err);
int tenant_rec_decode(const char *buf, struct tenant_rec *out, ferr_t *err);
/* Start time of pid (see init_start); -1 (FX_NOTFOUND) when there is no such
 * process or it is a zombie. */
int proc_start_time(pid_t pid, uint64_t *start, ferr_t *err);
/* True when pid is alive (not a zombie) and, if start is not 0, started at start. */
bool tenant_pid_alive(pid_t pid, uint64_t start);
/* After CRIU let go of a tenant (a failed dump): is its init still alive?
 * A dying init (SIGKILL pending) or one CRIU still traces is given up to
 * wait_ms to settle; two free looks 50 ms apart make "alive". */
bool tenant_still_alive(pid_t pid, uint64_t start, int wait_ms);
/* The same look with its three answers: gone, alive and free, or still in
 * CRIU's hands (traced, stopped, SIGKILL pending) after wait_ms. */
enum tenant_settle { SETTLE_GONE, SETTLE_ALIVE, SETTLE_BUSY };
enum tenant_settle tenant_settle(pid_t pid, uint64_t start, int wait_ms);

#endif
