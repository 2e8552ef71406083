/* CRIU's page server on the receiving host: `criu page-server -D DIR
 * --ps-socket FD [--prev-images-dir PARENT]`, fed by ferry's relay from the
 * other end of a socket pair (stop-copy's pages, each pre-copy round). */
#ifndef FERRY_PAGESERVER_H
#define FERRY_PAGESERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/err.h"

struct page_server {
	pid_t pid;
	int sk; /* our end; the page server has the other */
};

#define PAGE_SERVER_INIT                                                                           \
	{                                                                                          \
		.pid = -1, .sk = -1                                                                \
	}

/* Start it writing into DIR; PARENT (may be NULL or empty) is the previous
 * round's directory relative to DIR: CRIU links DIR/parent to it. */
int page_server_start(const char *criu, const char *dir, const char *parent, struct page_server *ps,
		      ferr_t *err);

/* Close our end and reap it (bounded; killed when it does not end, or at
 * once when KILL_IT). Without KILL_IT its exit status says whether every
 * page was written (else an error naming DIR's page-server.log). */
int page_server_stop(struct page_server *ps, bool kill_it, const char *dir, ferr_t *err);

#endif
