/* The agent's one reporter: every line `ferry serve` prints goes through it.
 *
 * Request handlers and the agent itself describe what happened as events
 * (lib/event.h); the reporter prints each as one text line, or with --json
 * as one JSON object per line ({"event": NAME, fields...}), on stdout, one
 * line at a time whatever thread reports. Status events (listening,
 * stopped, cleaned, reloaded) are written as text on stderr, the agent's log, in both
 * modes (and as JSON on stdout with --json).
 *
 * Events and their fields (docs/protocol.md, "Requests the agent serves"):
 *   listening   host, port, name, state_dir
 *   stopped
 *   cleaned     incoming_sets, older_than_h: abandoned sets removed at start
 *   reloaded    ok, what (config | crl | certificate), path, [rules | code,
 *               error]: one of them changed (agent/serve.h)
 *   transfer    ok, set_id, tenant, peer, peer_name, files, total_bytes,
 *               raw_bytes, resumed_from, wire_bytes, seconds, already_present
 *               [code, error]                    (OFFER, transport/xfer.h)
 *   migration   ok, migration_id, tenant, mode, pid, restore_ms, resume_ms,
 *               peer, peer_name                  (MIGRATE_BEGIN, migrate/dst.h)
 *   verdict     migration_id, verdict            (in doubt: the source's agent)
 *   query       migration_id, verdict, peer, peer_name  (MIG_REQ_QUERY)
 *   request     ok (false), request, peer, peer_name, code, error: a request
 *               that failed (its handler did not report it itself)
 *   connection  ok (false), peer, peer_name, code, error: failed before any
 *               request ran (TLS, HELLO, unknown or malformed request) */
#ifndef FERRY_AGENT_REPORT_H
#define FERRY_AGENT_REPORT_H

#include <pthread.h>
#include <stdbool.h>

#include "lib/event.h"

struct reporter {
	bool json;
	pthread_mutex_t lock; /* one line at a time on stdout and stderr */
	struct ev_sink sink;  /* {report_event, this}: give it to handlers */
};

void reporter_init(struct reporter *r, bool json);
void reporter_fini(struct reporter *r);
/* Print e (an ev_sink function; arg: the struct reporter). */
void report_event(const struct event *e, void *arg);

#endif
