/* Process trees of tenants, seen from the host: is a process alive, signal
 * or kill a process and every descendant of it. Shared by the tenant kinds
 * (kind.h) and the checkpoint backends (ckpt.h). */
#ifndef FERRY_KIND_TREE_H
#define FERRY_KIND_TREE_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/err.h"

/* pid exists and is not a zombie. */
bool ktree_alive(pid_t pid);
/* Send sig to pid and all its descendants, without waiting (a tree stopped
 * by a tracer dies only once the tracer lets go of it). */
int ktree_signal(pid_t pid, int sig, ferr_t *err);
/* End pid and every descendant of it: with SIGKILL the tree is stopped
 * first (nobody forks meanwhile), then killed; another signal goes to every
 * process of the tree. Waits up to timeout_ms until each of them is gone
 * (FX_FAIL naming one that is not). Nothing to do when pid is gone. */
int ktree_kill(pid_t pid, int sig, int timeout_ms, ferr_t *err);

#endif
