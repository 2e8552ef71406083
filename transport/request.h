/* Requests a host agent serves (docs/protocol.md, "Requests the agent
 * serves"). After HELLO the first frame's type selects a request. Each layer
 * that serves requests exports its handlers as a table ending with an entry
 * whose fn is NULL (transport/xfer.h: OFFER; migrate/dst.h: the migration
 * requests); the agent (agent/serve.c) assembles the tables, gives each
 * layer's handlers that layer's state, and dispatches.
 *
 * A handler owns the session from the request frame on; it reports what
 * happened as events (lib/event.h) through ctx->events, never by printing.
 * It returns 0 or a negative value with err set; the agent reports a failure
 * unless the entry says the handler reports its outcome itself. */
#ifndef FERRY_REQUEST_H
#define FERRY_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/event.h"
#include "transport/chan.h"
#include "transport/frame.h"

/* What the agent gives every handler, per connection. */
struct req_ctx {
	const char *state_dir;
	const char *host_name; /* our certificate name */
	const char *tls_dir;   /* our identity, to connect to other agents */
	int timeout_ms;	       /* the agent's idle limit for a connection */
	const char *peer;      /* the peer's address */
	const char *peer_name; /* the name in its certificate */
	/* One connection at a time per named object (e.g. an image set): lock
	 * takes it over from an older connection (FX_CONFLICT when it cannot). */
	int (*lock)(void *arg, const char *key, struct chan *c, ferr_t *err);
	void (*unlock)(void *arg, const char *key);
	void *lock_arg;
	const struct ev_sink *events; /* what happened: the agent prints it */
};

/* req: the request frame. state: what the layer registered the table with. */
typedef int (*req_fn)(struct chan *c, const struct frame_buf *req, const struct req_ctx *ctx,
		      void *state, ferr_t *err);

struct req_handler {
	uint8_t type;	  /* the request's frame type */
	const char *name; /* its name in reports and docs ("send-set", ...) */
	req_fn fn;
	bool reports_outcome; /* fn emits its own event on failure too */
};

#endif
