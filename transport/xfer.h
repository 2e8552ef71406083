/* Image-set transfer over an authenticated session (session.h): the sending
 * side (xfer_send.c) and the receiving side (xfer_recv.c). Both pipeline
 * their work over two threads with bounded queues (memory stays bounded
 * whatever the set's size):
 *   sender:   reader thread (read, SHA-256, LZ4) -> queue -> main (frame, TLS, send)
 *   receiver: main (receive, TLS, parse) -> queue -> writer thread (LZ4, SHA-256, write)
 */
#ifndef FERRY_XFER_H
#define FERRY_XFER_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/chan.h"
#include "transport/frame.h"
#include "transport/request.h"

#define XFER_CHUNK	(256U << 10)  /* raw bytes per DATA chunk the sender makes */
#define XFER_CHUNK_MAX	(1U << 20)    /* largest raw chunk a receiver accepts */
#define XFER_QUEUE	8	      /* chunks in flight per queue */
#define XFER_SYNC_EVERY (64ULL << 20) /* receiver: fdatasync + ACK period in bytes */

struct xfer_stats {
	char set_id[65];
	char tenant[64];
	uint64_t total_bytes;	/* all files of the set */
	uint64_t skipped_bytes; /* already at the receiver (resume) */
	uint64_t raw_bytes;	/* file bytes sent/received in this run */
	uint64_t sent_bytes;	/* sender: file bytes sent on the current connection */
	uint64_t payload_bytes; /* DATA bytes after compression */
	uint64_t wire_bytes;	/* bytes through the socket, both directions, TLS included */
	uint64_t acked_bytes;	/* receiver's durable progress (sender side) */
	uint32_t n_files;
	uint32_t reconnects;
	bool have_set; /* receiver already had the whole set */
	double seconds;
};

typedef void (*xfer_progress_fn)(const struct xfer_stats *st, bool final, void *arg);

struct send_opts {
	const char *dir;  /* image set: a directory with manifest.ferry */
	const char *host; /* receiver */
	uint16_t port;
	const char *tls_dir; /* identity dir: ca.pem, NAME.pem, NAME.key */
	const char *name;    /* our certificate name */
	const char *peer;    /* expected server name (default: host) */
	bool compress;
	int retry_for_s; /* reconnect budget after a drop */
	int timeout_ms;	 /* a stalled connection counts as dropped */
	int threads;	 /* 2: pipelined (default); 1: single thread */
	xfer_progress_fn progress;
	void *progress_arg;
};

/* Stream the set; resumes after drops. Exit-code class in err->code. */
int xfer_send(const struct send_opts *o, struct xfer_stats *st, ferr_t *err);

/* Receiving side: after HELLO, when the request is an OFFER (in offer).
 * lock/unlock serialise connections that carry the same set. */
struct recv_opts {
	const char *state_dir;
	const char *peer_name; /* the certificate's name: the sets' scope (snapshot/store.h) */
	int threads;
	int (*lock)(void *arg, const char *set_id, struct chan *c, ferr_t *err);
	void (*unlock)(void *arg, const char *set_id);
	void *lock_arg;
};

int xfer_recv(struct chan *c, const struct frame_buf *offer, const struct recv_opts *o,
	      struct xfer_stats *st, ferr_t *err);

/* The agent's handler of OFFER (request.h): xfer_recv, then one "transfer"
 * event, success or failure. Its state: a struct xfer_serve_cfg. */
struct xfer_serve_cfg {
	int threads; /* receive pipeline threads (1 or 2) */
};
extern const struct req_handler xfer_requests[];

#endif
