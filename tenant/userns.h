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
 * the root directory is owned by base already. Depth first: the root
 * directory is the last to change, so an interrupted shift is done again. */
int userns_shift_rootfs(const char *rootfs, uint32_t base, uint32_t count, ferr_t *err);
/* The same for a tenant re-mapped from the range at from (isolate.h):
 * from..from+count-1 become base.. as well (FX_INTEGRITY if they overlap).
 * Always walks the whole tree (the root's owner proves nothing here). */
int userns_reshift_rootfs(const char *rootfs, uint32_t from, uint32_t base, uint32_t count,
			  ferr_t *err);

/* The minimal /dev of a tenant in a user namespace, as nodes in the root
 * file system under /.ferry/dev (a user namespace cannot mknod), owned by
 * base; the tenant binds them into a /dev tmpfs of its own. */
#define USERNS_DEV_NODES "null", "zero", "full", "random", "urandom", "tty"
int userns_make_dev(const char *rootfs, uint32_t base, ferr_t *err);

/* Ranges [a, a+n) and [b, b+m) overlap. */
bool userns_overlap(uint32_t a, uint32_t n, uint32_t b, uint32_t m);

/* The user namespace maps of pid, as "base count" of ID 0 (false when pid
 * lives in the host's user namespace, or its map is not a single range). */
bool userns_of_pid(pid_t pid, uint32_t *base, uint32_t *count);

/* Where name's search for a range starts: slot (FNV-1a of name) % SLOTS.
 * Hosts allocate on their own; tenants that move between them would
 * collide if every host handed out the lowest range first. */
uint32_t userns_first_slot(const char *name);

/* The first free range from name's slot on into *base, claimed for name: no record that is
 * not gone holds an overlapping one, and no live process claimed it
 * (STATE/userns-claims/BASE, written under a host-wide lock, so two
 * concurrent `ferry run`s never pick the same range). FX_HOST when all are
 * taken. The caller drops the claim (userns_unclaim) once the tenant's
 * record is saved, or when it gives up. */
int userns_alloc(const char *state_dir, const char *name, uint32_t *base, ferr_t *err);
void userns_unclaim(const char *state_dir, uint32_t base);

/* FX_CONFLICT (naming the holder) when a record other than name's holds a
 * range that overlaps [base, base+count). */
int userns_check_free(const char *state_dir, const char *name, uint32_t base, uint32_t count,
		      ferr_t *err);

#endif
