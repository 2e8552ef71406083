/* The host agent's listener: TLS with mutual authentication, a thread per
 * connection (bounded), HELLO, then the request frame that follows it,
 * dispatched through a table of handlers each layer exports
 * (transport/request.h; the list: docs/protocol.md, "Requests the agent
 * serves"). The agent owns the state the handlers share (migrate/dst.h) and
 * prints what they report through one reporter (agent/report.h). */
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
	bool json; /* one JSON object per event on stdout (agent/report.h) */
	int max_conns;
	int timeout_ms;	     /* a connection silent this long is dropped */
	int keep_incoming_h; /* incoming sets older than this are removed at start */
	int threads;	     /* receive pipeline threads (1 or 2) */
	const char *config;  /* the agent configuration file (agent/policy.h), or NULL */
};

/* Serve until SIGTERM or SIGINT. The configuration file, the CA's
 * revocation list (TLSDIR/crl.pem) and this host's certificate and key are
 * reloaded when they change (the configuration also on SIGHUP); a file that
 * does not load leaves the old one in force. */
int serve_run(const struct serve_opts *o, ferr_t *err);

#endif
