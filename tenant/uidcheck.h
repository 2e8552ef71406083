/* Processes of other users: can this host dump them?
 *
 * CRIU reads the rlimits of every task it dumps (prlimit). For a task whose
 * real, effective or saved UID or GID differs from ferry's, the kernel wants
 * CAP_SYS_RESOURCE in the task's user namespace; where ferry's root lacks it
 * (containers, hardened hosts) such a dump fails with "Can't get rlimit ...:
 * Operation not permitted" after the freeze. These checks find it before:
 * a probe (prlimit on a child that switched to another UID), and a walk of
 * a tenant's process tree. A tenant in a user namespace of its own would not
 * be affected (ferry does not make them yet). */
#ifndef FERRY_UIDCHECK_H
#define FERRY_UIDCHECK_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/err.h"

/* Whether prlimit works on a process of another UID (measured once, then
 * cached; false when the probe itself cannot run). */
bool uid_other_dumpable(void);

/* The first process of root's tree (threads' children included) in ferry's
 * user namespace whose UIDs or GIDs are not all ferry's: 1 with its pid and
 * real UID in *who and *uid, 0 when none (or root is gone). */
int uid_tree_other(pid_t root, pid_t *who, uid_t *uid);

/* Refuse before the freeze a tenant this host cannot dump: FX_HOST with the
 * reason and what would fix it; 0 when it can be dumped. */
int uid_check_dumpable(const char *name, pid_t root, ferr_t *err);

#endif
