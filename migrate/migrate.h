/* Live migration, source side: the three stages chained and overlapped
 * against a destination's `ferry serve` (handover.h, docs/migrate.md).
 *
 * Stop-and-copy: the tenant is frozen by a CRIU dump whose pages stream
 * through a page-server relay over the TLS session as they are dumped (no
 * staging of memory on the source); the small images follow; the destination
 * restores and holds the tenant stopped; then the source decides (commit:
 * CRIU kills the source copy, the destination resumes; abort: the tenant
 * resumes on the source). */
#ifndef FERRY_MIGRATE_H
#define FERRY_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "tenant/ckpt.h"

enum mig_mode { MIG_AUTO = 0, MIG_STOP_COPY, MIG_PRE_COPY, MIG_POST_COPY };

const char *mig_mode_str(enum mig_mode m);
/* "auto", "stop-copy", "pre-copy", "post-copy"; -1 (FX_USAGE) otherwise. */
int mig_mode_parse(const char *s, enum mig_mode *m, ferr_t *err);

/* Pre-copy: one pre-dump round (the tenant running) or the final dump. */
struct mig_round {
	double ms;	  /* the round, CRIU's pre-dump and its page stream */
	double frozen_ms; /* CRIU: tasks frozen while their pages were collected */
	uint64_t pages;	  /* pages CRIU wrote (0 when it kept no statistics) */
	uint64_t raw;	  /* page-server bytes relayed */
	uint64_t payload; /* after LZ4 */
};

#define MIG_ROUNDS_MAX 16 /* PRECOPY_ROUNDS_MAX */

struct migrate_result;
typedef void (*migrate_progress_fn)(const char *stage, const struct migrate_result *r, void *arg);

struct migrate_opts {
	const char *state_dir;
	const char *criu_path;
	const char *tenant;
	const char *host; /* destination agent */
	uint16_t port;
	const char *tls_dir; /* ca.pem, NAME.pem, NAME.key */
	const char *name;    /* our certificate name */
	const char *peer;    /* destination's certificate name (default: host) */
	/* this host's agent, for a destination in doubt ("HOST:PORT"; NULL:
	 * STATE/agent.addr, written by `ferry serve`) */
	const char *source_agent;
	enum mig_mode mode;
	bool tune_host;	  /* post-copy: set the pipe sysctls it needs */
	bool compress;	  /* LZ4 on the relay */
	bool copy_rootfs; /* a --rootfs DIR tenant: copy DIR (docs/rootfs.md) */
	int timeout_ms;	  /* one read or write on the session (restore included) */
	int retry_for_s;  /* reconnecting to deliver the decision after a drop */
	/* pre-copy: pre-dump rounds at most, and the shrink a round must reach
	 * to go on (percent of the previous round); 0: defaults (precopy.h) */
	unsigned precopy_rounds;
	unsigned precopy_shrink_pct;
	/* a backend's live pre-copy (QEMU): the longest stop it may plan for
	 * (0: its default) */
	int max_downtime_ms;
	/* its volumes (tenant/kind.h: a VM's disks) are on storage the
	 * destination shares: not copied */
	bool shared_storage;
	migrate_progress_fn progress;
	void *progress_arg;
};

struct migrate_result {
	char tenant[64];
	char migration_id[40];
	char dest[300];
	enum mig_mode mode;
	bool moved;	    /* the tenant runs on the destination */
	bool on_source;	    /* failure: the tenant still (again) runs here */
	pid_t dest_pid;	    /* init pid on the destination */
	double downtime_ms; /* frozen on the source -> running on the destination */
	double total_ms;    /* whole command */
	double freeze_ms;   /* CRIU: stopping every task */
	double dump_ms;	    /* frozen -> CRIU dump done (pages streamed meanwhile) */
	double transfer_ms; /* non-page images after the dump */
	double restore_ms;  /* destination restore (until held) */
	double handover_ms; /* RESTORED -> COMMIT sent (source copy killed) */
	double resume_ms;   /* COMMIT -> running on the destination */
	double net_ms;	    /* destination: network switch announcement */
	double cleanup_ms;  /* source cleanup */
	/* TCP segments held during the freeze and replayed to the destination
	 * (tenant/pkthold.h); -1: none held (no address, or replay off) */
	int replayed;
	unsigned replay_lost; /* not replayed: no room in the hold, or not sent */
	unsigned held;	      /* segments the hold copied (repeated copies included) */
	double pages_done_ms; /* post-copy: running on the destination -> last page sent */
	uint64_t pages_raw;   /* page-server bytes relayed */
	uint64_t pages_payload;
	uint64_t files_raw;  /* other image bytes */
	uint64_t wire_bytes; /* bytes through the socket, both directions */
	/* pre-copy: the rounds before the final dump, and why they stopped;
	 * pages_raw / pages_payload above count every round and the final */
	unsigned n_rounds;
	struct mig_round rounds[MIG_ROUNDS_MAX];
	struct mig_round final_round;
	char precopy_stop[24];
	struct ckpt_backend_stats backend; /* the backend's own figures (QEMU's) */
	/* an image tenant's files (docs/rootfs.md): sent while it ran (the
	 * image too when the destination lacked it), and the change sent while
	 * it was frozen (fs_delta_ms is part of the downtime) */
	bool fs_carried, fs_image_sent;
	uint64_t fs_raw, fs_wire, fs_delta_raw, fs_delta_wire, fs_delta_entries, fs_deleted;
	double fs_first_ms, fs_delta_ms;
	/* the destination re-mapped the tenant's user-namespace ID range (its
	 * range was taken there, tenant/isolate.h): count host IDs from `from`
	 * (the source's) are `to` there; to == 0: not re-mapped, or not said
	 * (an older destination, or DONE lost and the decision resolved) */
	struct {
		uint32_t from, to, count;
	} id_remap;
};

int migrate_tenant(const struct migrate_opts *o, struct migrate_result *r, ferr_t *err);

#endif
