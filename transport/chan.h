/* One stream interface for every transport layer (QEMU's QEMUFile, redis' rio):
 * a struct chan with an ops table, stacked layers (TCP / UNIX sockets at the
 * bottom, TLS above, framing on top: frame.h) and a sticky error. Once an
 * operation fails the error sticks: later writes do nothing and return -1, so a
 * hot path may write several times and check chan_error() once.
 *
 * A chan is used by one thread at a time (TLS cannot read and write from two
 * threads at once); pipelines hand work to the chan's owner through queues. */
#ifndef FERRY_CHAN_H
#define FERRY_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

struct chan;

struct chan_ops {
	/* Read up to len bytes; 0 at end of stream; -1 with err set. */
	ssize_t (*read)(struct chan *c, void *buf, size_t len, ferr_t *err);
	/* Write up to len bytes (at least 1); -1 with err set. */
	ssize_t (*write)(struct chan *c, const void *buf, size_t len, ferr_t *err);
	/* Push buffered bytes down to the kernel. May be NULL. */
	int (*flush)(struct chan *c, ferr_t *err);
	/* Send end-of-stream (TLS close_notify, TCP FIN). May be NULL. */
	int (*shutdown)(struct chan *c, ferr_t *err);
	/* > 0 when a read would not block for long, 0 on timeout. */
	int (*poll)(struct chan *c, int timeout_ms);
	/* Free the layer and the layers below it. */
	void (*close)(struct chan *c);
};

/* Layers embed struct chan first and allocate through chan_alloc. */
struct chan {
	const struct chan_ops *ops;
	struct chan *lower;	     /* layer below, owned; NULL at the bottom */
	int fd;			     /* socket of the bottom layer, -1 if none */
	char peer[128];		     /* "host:port" or a path, for messages */
	ferr_t err;		     /* sticky error, code 0 while healthy */
	uint64_t rx_bytes, tx_bytes; /* bytes through this layer */
};

/* Initialise the common part of a layer (peer name copied from lower if NULL). */
void chan_init(struct chan *c, const struct chan_ops *ops, struct chan *lower, int fd,
	       const char *peer);

/* The sticky error, or NULL while the stream is healthy. */
const ferr_t *chan_error(const struct chan *c);
/* Copy the sticky error into err and return -1 (0 when healthy). */
int chan_take_error(const struct chan *c, ferr_t *err);
/* Forget the sticky error, e.g. to read the peer's last words (an ERROR frame)
 * after a write failed. */
void chan_reset_error(struct chan *c);
/* Set the sticky error (the first one wins). Returns -1. */
int chan_fail(struct chan *c, const ferr_t *e);

/* Exactly len bytes or the sticky error (end of stream is an error here). */
int chan_read_full(struct chan *c, void *buf, size_t len);
/* All len bytes or the sticky error; does nothing once the error is set. */
int chan_write_all(struct chan *c, const void *buf, size_t len);
int chan_flush(struct chan *c);
int chan_shutdown(struct chan *c);
int chan_poll(struct chan *c, int timeout_ms);
/* Close this layer and every layer below; NULL is fine. */
void chan_close(struct chan *c);
const char *chan_peer(const struct chan *c);
/* Bytes that crossed the bottom layer (what went on the wire). */
uint64_t chan_wire_rx(const struct chan *c);
uint64_t chan_wire_tx(const struct chan *c);

#endif
