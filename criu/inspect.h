/* What a CRIU image set holds, decoded from its images (proto/
 * criu_images.proto), for `ferry inspect`: the process tree with PIDs,
 * names and command lines (read from the dumped memory at the mm's argument
 * area), each process's open files and sockets, the memory dumped. */
#ifndef FERRY_CRIU_INSPECT_H
#define FERRY_CRIU_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct insp_fd {
	uint32_t fd;
	char what[300]; /* "file /etc/x", "tcp 0.0.0.0:80 state 10", "unix @x", "pipe" */
};

struct insp_proc {
	uint32_t pid, ppid, pgid, sid, threads;
	char comm[32];
	char cmdline[512]; /* arguments separated by spaces; "" when not found */
	uint64_t vma_bytes;
	struct insp_fd *fds;
	size_t n_fds;
};

struct insp {
	struct insp_proc *procs;
	size_t n_procs;
	uint64_t pages_bytes; /* memory dumped (pages images) */
};

int criu_inspect(const char *dir, struct insp *out, ferr_t *err);
void criu_inspect_free(struct insp *in);

#endif
