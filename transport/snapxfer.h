/* `ferry snapshot restore ID --to HOST:PORT`: copy a snapshot into a peer's
 * store over a session (mutual TLS, like every request) and restore it
 * there. Only the chunks the peer's store lacks cross the wire: the peer
 * answers the offered manifest with the chunks it needs. Both stores must
 * share a key (the sealed chunks and manifest travel as stored; the peer
 * authenticates each with its own key and checks its name). The peer's
 * store is its agent's default one: STATE/snapshots with STATE/snapshot.key.
 *
 *   client                          agent
 *   SNAP_PUT (SnapPut)        ->    key proof, manifest opened
 *                             <-    SNAP_NEED (SnapNeed) | ERROR
 *   SNAP_CHUNK (id | sealed)  ->    each checked, stored  (one per need)
 *   SNAP_END                  ->    manifest stored, then restored
 *                             <-    SNAP_DONE (SnapDone) | ERROR */
#ifndef FERRY_SNAPXFER_H
#define FERRY_SNAPXFER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "transport/request.h"

enum {
	SNAP_REQ_PUT = 48, /* request */
	SNAP_NEED = 49,
	SNAP_CHUNK = 50,
	SNAP_END = 51,
	SNAP_DONE = 52,
};

struct snap_push_opts {
	const char *store, *key_file;
	const char *id; /* id or unique prefix */
	const char *host;
	uint16_t port;
	const char *tls_dir, *my_name, *peer; /* peer NULL: host */
	bool restore;
	const char *as_name; /* NULL: the snapshot's tenant */
	int timeout_ms;
};

struct snap_push_result {
	char id[32];
	uint32_t chunks;     /* distinct chunks of the snapshot */
	uint32_t sent;	     /* chunks the peer lacked */
	uint64_t sent_bytes; /* their sealed bytes */
	int pid;	     /* restored there */
	char name[64];
	bool replaced;
	double restore_ms, total_ms;
};

int snap_push(const struct snap_push_opts *o, struct snap_push_result *r, ferr_t *err);

extern const struct req_handler snap_requests[];

#endif
