/* CRIU's cache of its kernel probes for CRIU processes that run while a
 * tenant is down (post-copy: the restore and the lazy-pages daemon).
 *
 * Every CRIU start probes the kernel (here ~20 ms, mostly a test network
 * namespace with a veth pair that the kernel is slow to tear down). CRIU
 * keeps the result in /run/criu.kdat, but only when /run is a tmpfs (so that
 * it cannot outlive a reboot); on these hosts /run is not, and every start
 * pays. ferry runs CRIU once to get the probes of this boot (criu check,
 * before anything is frozen) and hands them to later CRIU processes in a
 * mount namespace of their own with a small tmpfs on /run. CRIU checks the
 * file itself (its build's magic) and probes again if it does not match.
 *
 * Only for CRIU processes whose tenant has its own mount namespace (a
 * container): a restored process tree without one would live on in CRIU's
 * private namespace. Never for dumps (CRIU compares its mount namespace
 * with the tenant's). */
#ifndef FERRY_CRIU_KDAT_H
#define FERRY_CRIU_KDAT_H

#include <stdbool.h>

#include "criu/spawn.h"
#include "lib/err.h"

/* Once per process (thread-safe; later calls return at once): run
 * `criu check` in a private mount namespace with a tmpfs /run and keep the
 * criu.kdat it wrote. Failure only means CRIU keeps probing. */
int criu_kdat_prepare(const char *criu_path, ferr_t *err);

/* A CRIU about to be started gets a private mount namespace with a tmpfs
 * /run holding the kept probes (criu/spawn.h private_run). Nothing when
 * nothing is kept, and when the namespace cannot be made: CRIU then simply
 * probes. */
void criu_kdat_use(struct criu_spawn_opts *o);

#endif
