/* File locks a move cannot carry.
 *
 * CRIU saves a tenant's file locks (POSIX, OFD, flock) and takes them again
 * when it restores the tenant. With held handover the source copy stays
 * frozen, its locks held, until the destination has restored and the
 * decision is made. Where the destination sees the same file (shared
 * storage: NFS, a shared disk, or simply the same directory), its restore
 * waits for a lock the frozen source keeps: the migration stalls until it
 * times out. Releasing the source's locks before the decision is not safe (a
 * rollback would resume the tenant without them), so such a tenant is
 * refused before the freeze.
 *
 * A lock moves safely when its file lives on a file system mounted inside
 * the tenant only (a tmpfs of its own, saved with it). Any other file system
 * is visible outside the tenant on this host and may be shared with the
 * destination: ferry cannot tell, and refuses, unless FERRY_ALLOW_LOCKS=1
 * says the destination has its own copy of every locked file. */
#ifndef FERRY_LOCKCHECK_H
#define FERRY_LOCKCHECK_H

#include <sys/types.h>

#include "lib/err.h"

/* FX_CONFLICT naming the first such lock (process, file, kind) and what to
 * do; 0 when the tenant rooted at root holds none. */
int lock_check_movable(const char *name, pid_t root, ferr_t *err);

#endif
