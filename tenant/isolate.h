/* Isolation of container tenants as it travels: the registry's tenant_iso
 * (tenant/registry.h) to and from proto's Isolation (manifests and
 * MigrateBegin), and the destination's check that it can take it. */
#ifndef FERRY_ISOLATE_H
#define FERRY_ISOLATE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "proto/manifest.h"
#include "tenant/registry.h"

/* A malloc'd Isolation for iso (NULL when iso has nothing or out of memory;
 * freed with the manifest / message that holds it). */
Ferry__Isolation *iso_to_pb(const struct tenant_iso *iso);
/* p may be NULL (nothing). */
void iso_from_pb(const Ferry__Isolation *p, struct tenant_iso *iso);
/* Can this host take a tenant with iso: its user ID range is free here
 * (userns_check_free). FX_CONFLICT says which tenant holds it. */
int iso_precheck(const char *state_dir, const char *name, const struct tenant_iso *iso,
		 ferr_t *err);

/* ---- re-mapping: a tenant restored under another ID range ----
 * When another tenant of this host holds the range a tenant was dumped
 * with (a copy restored beside its original, or a migration to a host
 * where the range is taken), the restore gives it a free range of this
 * host instead: its CRIU images are rewritten (criu/idmap.h) into a
 * directory of their own, its files are shifted to the new range, its
 * record (and so every later dump's manifest) holds the new range. */
struct iso_remap {
	uint32_t from, to, count; /* to == 0: not re-mapped */
	char dir[4096];		  /* the image set to load ("": the one given) */
	char rootfs[4096];	  /* the tree shifted (for iso_remap_end) */
	bool tree;		  /* a --rootfs tree (not an image's own layer) */
	bool lazy;		  /* post-copy: the image set outlives the load */
	unsigned rewritten;	  /* IDs rewritten in the images */
};

/* Like iso_precheck, but a taken range is no refusal when the tenant may be
 * re-mapped (may_remap: its files are its own on this host, not storage it
 * shares with a source that keeps its range) and this host has a free one;
 * *remap says so then. */
int iso_precheck_remap(const char *state_dir, const char *name, const struct tenant_iso *iso,
		       bool may_remap, bool *remap, ferr_t *err);

/* Right before a restore's load (the image set dir verified): nothing when
 * rec's range is free here. Else a free range is allocated and claimed
 * (userns_alloc) and rec->iso.id_base set to it; dir's images under the new
 * range go to STATE/tenants/NAME/idmap-images (rm->dir, what to load);
 * rec's files are shifted (an image tenant's overlay is mounted for that).
 * Refused (FX_CONFLICT, nothing changed) when rec's --rootfs tree is the
 * root of the tenant holding the range: a copy cannot share its files. */
int iso_remap_restore(const char *state_dir, struct tenant_rec *rec, const char *dir, bool lazy,
		      struct iso_remap *rm, ferr_t *err);
/* After the load (ok: the tenant is registered): drop the claim and the
 * rewritten image set (kept for post-copy: its daemon reads the set); a
 * failed load shifts a tree back to the range it had. */
void iso_remap_end(const char *state_dir, struct iso_remap *rm, bool ok);

/* Post-copy: CRIU's restored tasks open userfaultfd themselves, which a
 * user namespace may only with vm.unprivileged_userfaultfd=1 (FX_HOST).
 * tune: this host's operator lets ferry set it (the agent's "tune-host
 * userfaultfd"); the old value is logged, as --tune-host does for the pipe
 * sysctls. */
int iso_precheck_lazy(const struct tenant_iso *iso, bool tune, ferr_t *err);

/* ---- host probes for `ferry check` (true: works; detail says what) ---- */
bool iso_probe_userns(char *detail, size_t len);
/* Can a mount of dir's file system be idmapped (open_tree + mount_setattr
 * MOUNT_ATTR_IDMAP to a fresh user namespace)? */
bool iso_probe_idmap(const char *dir, char *detail, size_t len);
bool iso_probe_seccomp(char *detail, size_t len);

/* ---- inside a container's init (tenant/container.c), --isolate ----
 * Each returns 0, or -errno with what failed in msg. */

/* A read-only sysfs at where (ROOTFS/sys): a user namespace may mount it
 * only while the host's is visible, before pivot_root. */
int iso_mount_sys(const char *where, char *msg, size_t len);
/* The usual masked and read-only paths (OCI defaults): /proc/kcore,
 * /proc/keys, /proc/timer_list, ... under /dev/null or an empty read-only
 * tmpfs; /proc/sys, /proc/sysrq-trigger, /proc/bus, /proc/fs, /proc/irq
 * read-only; a read-only /sys. After pivot_root, /proc and /dev mounted. */
int iso_mask_paths(char *msg, size_t len);
/* Right before exec: the OCI default capability bounding set, no ambient
 * or inheritable capabilities, no_new_privs, then the default seccomp
 * filter (iso_seccomp_load). */
int iso_restrict(char *msg, size_t len);
/* The filter alone: EPERM for module loading, kexec, new mounts and mount
 * API, keyrings, bpf, perf, swap, reboot, clock setting, open_by_handle_at,
 * userfaultfd, ... (docs/isolation.md lists them). */
int iso_seccomp_load(char *msg, size_t len);

#endif
