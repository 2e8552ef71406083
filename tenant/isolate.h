/* Isolation of container tenants as it travels: the registry's tenant_iso
 * (tenant/registry.h) to and from proto's Isolation (manifests and
 * MigrateBegin), and the destination's check that it can take it. */
#ifndef FERRY_ISOLATE_H
#define FERRY_ISOLATE_H

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
