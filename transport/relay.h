/* Page-server relay: CRIU's page-server protocol carried over an
 * authenticated chan. One end of a local socket pair is handed to CRIU (the
 * dumping CRIU on the source, `criu page-server` on the destination); the
 * relay copies bytes both ways between the other end and the chan, as
 * STREAM_DATA frames on one stream id (LZ4 per chunk when it shrinks), and
 * ends with STREAM_CLOSE in each direction. The page-server protocol is
 * two-way (the server answers flushes and page requests), hence both ways.
 *
 * Single-threaded (poll on both fds): the chan is used by the calling thread
 * only while the relay runs. */
#ifndef FERRY_RELAY_H
#define FERRY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/chan.h"
#include "lib/err.h"

#define RELAY_CHUNK (256U << 10)

struct relay_opts {
	uint16_t stream; /* stream id (not 0) */
	bool lz4;	 /* compress outgoing chunks */
	int idle_ms;	 /* nothing in either direction this long: failure */
	/* Stop reading the local socket once the peer closed its side (the
	 * source: CRIU may keep its end open after the last answer). */
	bool end_on_peer_close;
	/* Test hook (FERRY_FAULT): called with the bytes received so far. */
	void (*on_rx)(uint64_t raw_rx, void *arg);
	void *on_rx_arg;
};

struct relay_stats {
	uint64_t raw_tx, raw_rx;	 /* bytes read from / written to the local socket */
	uint64_t payload_tx, payload_rx; /* frame payload bytes (after LZ4) */
	double seconds;
};

/* Relay until both directions are closed (or, with end_on_peer_close, the
 * peer's direction). sk stays open (the caller closes it). */
int relay_run(struct chan *c, int sk, const struct relay_opts *o, struct relay_stats *st,
	      ferr_t *err);

#endif
