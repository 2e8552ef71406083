/* The host agent's listener: TLS with mutual authentication, a thread per
 * connection (bounded), HELLO, then a dispatch on the request frame that
 * follows it. Today's request: OFFER (receive an image set, xfer.h); later
 * issues add theirs (restore a set, migration handover) in dispatch(). */
#ifndef FERRY_SERVE_H
#define FERRY_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct serve_opts {
	const char *host; /* listen address */
	uint16_t port;
	const char *tls_dir;
	const char *name;
	const char *state_dir;
	bool json; /* one JSON object per transfer on stdout */
	int max_conns;
	int timeout_ms;	     /* a connection silent this long is dropped */
	int keep_incoming_h; /* incoming sets older than this are removed at start */
	int threads;	     /* receive pipeline threads (1 or 2) */
};

/* Serve until SIGTERM or SIGINT. */
int serve_run(const struct serve_opts *o, ferr_t *err);

#endif
