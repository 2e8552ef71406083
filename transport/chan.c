/* The stream interface: dispatch to the layer's ops, keep the sticky error. */
#include "transport/chan.h"

#include <stdio.h>
#include <string.h>

void chan_init(struct chan *c, const struct chan_ops *ops, struct chan *lower, int fd,
	       const char *peer)
{
	c->ops = ops;
	c->lower = lower;
	c->fd = fd;
	ferr_clear(&c->err);
	c->rx_bytes = c->tx_bytes = 0;
	if (!peer && lower)
		peer = lower->peer;
	snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "?");
}

const ferr_t *chan_error(const struct chan *c)
{
	return c->err.code ? &c->err : NULL;
}

int chan_take_error(const struct chan *c, ferr_t *err)
{
	if (!c->err.code)
		return 0;
	if (err)
		*err = c->err;
	return -1;
}

void chan_reset_error(struct chan *c)
{
	ferr_clear(&c->err);
}

int chan_fail(struct chan *c, const ferr_t *e)
{
	if (!c->err.code)
		c->err = *e;
	return -1;
}

int chan_read_full(struct chan *c, void *buf, size_t len)
{
	uint8_t *p = buf;
	ferr_t e = {0};

	if (c->err.code)
		return -1;
	while (len) {
		ssize_t n = c->ops->read(c, p, len, &e);
		if (n < 0)
			return chan_fail(c, &e);
		if (n == 0) {
			ferr_set(&e, FX_PEER, "connection to %s closed unexpectedly", c->peer);
			return chan_fail(c, &e);
		}
		p += n;
		len -= (size_t)n;
		c->rx_bytes += (uint64_t)n;
	}
	return 0;
}

int chan_write_all(struct chan *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ferr_t e = {0};

	if (c->err.code)
		return -1;
	while (len) {
		ssize_t n = c->ops->write(c, p, len, &e);
		if (n < 0)
			return chan_fail(c, &e);
		p += n;
		len -= (size_t)n;
		c->tx_bytes += (uint64_t)n;
	}
	return 0;
}

int chan_flush(struct chan *c)
{
	ferr_t e = {0};

	if (c->err.code)
		return -1;
	if (c->ops->flush && c->ops->flush(c, &e) < 0)
		return chan_fail(c, &e);
	return 0;
}

int chan_shutdown(struct chan *c)
{
	ferr_t e = {0};

	if (c->err.code)
		return -1;
	if (c->ops->shutdown && c->ops->shutdown(c, &e) < 0)
		return chan_fail(c, &e);
	return 0;
}

int chan_poll(struct chan *c, int timeout_ms)
{
	if (c->err.code)
		return 1; /* the next read reports the error at once */
	return c->ops->poll ? c->ops->poll(c, timeout_ms) : 1;
}

void chan_close(struct chan *c)
{
	if (c)
		c->ops->close(c);
}

const char *chan_peer(const struct chan *c)
{
	return c->peer;
}

uint64_t chan_wire_rx(const struct chan *c)
{
	while (c->lower)
		c = c->lower;
	return c->rx_bytes;
}

uint64_t chan_wire_tx(const struct chan *c)
{
	while (c->lower)
		c = c->lower;
	return c->tx_bytes;
}
