/* User namespaces of container tenants: the tenant's IDs 0..count-1 map to
 * host IDs base..base+count-1, a range of its own (allocated from the
 * registry, carried by migration). Its root file system is owned by that
 * range: a one-time shift of the owners (lchown) when the tenant is created
 * (docs/isolation.md says why not idmapped mounts). */
#ifndef FERRY_USERNS_H
#define FERRY_USERNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

#define USERNS_FIRST 100000u /* first range's base on the host */
#define USERNS_SIZE  65536u  /* IDs per tenant */
#define USERNS_SLOTS 1024u   /* ranges ferry hands out: 100000 .. 67208863 */

/* Write "0 base count" into /proc/PID/uid_map and gid_map (pid: a process
 * that just unshared its user namespace; we hold CAP_SETUID above it). */
int userns_write_maps(pid_t pid, uint32_t base, uint32_t count, ferr_t *err);

/* Shift the owners of every file under rootfs (not crossing mounts) from
 * 0..count-1 to base..; IDs already in [base, base+count) stay. No-op when
 * the root directory is owned by base already. */
int userns_shift_rootfs(const char *rootfs, uint32_t base, uint32_t count, ferr_t *err);

/* The minimal /dev of a tenant in a user namespace, as nodes in the root
 * file system (a user namespace cannot mknod): null zero full random
 * urandom tty, owned by base. */
int userns_make_dev(const char *rootfs, uint32_t base, ferr_t *err);

/* Ranges [a, a+n) and [b, b+m) overlap. */
bool userns_overlap(uint32_t a, uint32_t n, uint32_t b, uint32_t m);

/* The user namespace maps of pid, as "base count" of ID 0 (false when pid
 * lives in the host's user namespace, or its map is not a single range). */
bool userns_of_pid(pid_t pid, uint32_t *base, uint32_t *count);

/* The lowest free range (no record that is not gone holds an overlapping
 * one) into *base; FX_HOST when all are taken. Call under the new tenant's
 * lock; two concurrent `ferry run`s may pick the same range (the second
 * sees the first's record only once it is saved). */
int userns_alloc(const char *state_dir, uint32_t *base, ferr_t *err);

/* FX_CONFLICT (naming the holder) when a record other than name's holds a
 * range that overlaps [base, base+count). */
int userns_check_free(const char *state_dir, const char *name, uint32_t base, uint32_t count,
		      ferr_t *err);

#endif
