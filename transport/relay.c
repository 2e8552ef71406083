/* Page-server relay between a local socket and a chan (relay.h). */
#define LOG_PREFIX "relay"
#include "transport/relay.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/be.h"
#include "transport/compress.h"
#include "transport/frame.h"
#include "lib/log.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"

#define RAWLEN_HDR 4

struct relay {
	struct chan *c;
	int sk;
	const struct relay_opts *o;
	struct relay_stats *st;
	uint8_t *in;  /* raw bytes read from sk */
	uint8_t *out; /* frame payload: u32 raw length + (LZ4) bytes */
	size_t out_cap;
	uint8_t *dec; /* decompressed incoming chunk */
	struct frame_buf fb;
	bool local_eof, peer_closed;
};

static int write_sk(int sk, const uint8_t *p, size_t n, ferr_t *err)
{
	while (n) {
		ssize_t w = send(sk, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return ferr_sys(err, FX_FAIL,
					"relay: writing to the local page server socket");
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Local socket -> chan. */
static int pump_out(struct relay *r, ferr_t *err)
{
	ssize_t n;

	do
		n = recv(r->sk, r->in, RELAY_CHUNK, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != ECONNRESET)
		return ferr_sys(err, FX_FAIL, "relay: reading the local page server socket");
	if (n <= 0) {
		r->local_eof = true;
		frame_send(r->c, WIRE_STREAM_CLOSE, r->o->stream, 0, NULL, 0);
		chan_flush(r->c);
		return chan_take_error(r->c, err);
	}
	size_t plen = 0;
	uint32_t flags = 0;
	if (r->o->lz4)
		plen = lz4_pack(r->in, (size_t)n, r->out + RAWLEN_HDR, r->out_cap - RAWLEN_HDR);
	if (plen)
		flags = FRAME_F_LZ4;
	else {
		memcpy(r->out + RAWLEN_HDR, r->in, (size_t)n);
		plen = (size_t)n;
	}
	be32_put(r->out, (uint32_t)n);
	frame_send(r->c, WIRE_STREAM_DATA, r->o->stream, flags, r->out, plen + RAWLEN_HDR);
	chan_flush(r->c);
	r->st->raw_tx += (uint64_t)n;
	r->st->payload_tx += plen + RAWLEN_HDR;
	return chan_take_error(r->c, err);
}

/* chan -> local socket. */
static int pump_in(struct relay *r, ferr_t *err)
{
	struct frame_buf *fb = &r->fb;

	if (frame_recv(r->c, fb, err) < 0)
		return ferr_wrap(err, "relay: peer %s", chan_peer(r->c));
	if (fb->h.type == WIRE_ERROR)
		return session_peer_error(fb, chan_peer(r->c), err);
	if (fb->h.stream != r->o->stream ||
	    (fb->h.type != WIRE_STREAM_DATA && fb->h.type != WIRE_STREAM_CLOSE))
		return ferr_set(err, FX_INTEGRITY, "relay: unexpected frame %s on stream %u",
				wire_type_name(fb->h.type), fb->h.stream);
	if (fb->h.type == WIRE_STREAM_CLOSE) {
		r->peer_closed = true;
		shutdown(r->sk, SHUT_WR);
		return 0;
	}
	if (fb->h.len < RAWLEN_HDR)
		return ferr_set(err, FX_INTEGRITY, "relay: short data frame");
	uint32_t raw = be32_get(fb->data);
	const uint8_t *p = fb->data + RAWLEN_HDR;
	size_t plen = fb->h.len - RAWLEN_HDR;
	if (raw > RELAY_CHUNK)
		return ferr_set(err, FX_INTEGRITY, "relay: chunk of %u bytes is too large", raw);
	if (fb->h.flags & FRAME_F_LZ4) {
		if (lz4_unpack(p, plen, r->dec, raw, err) < 0)
			return -1;
		p = r->dec;
	} else if (plen != raw) {
		return ferr_set(err, FX_INTEGRITY, "relay: chunk length mismatch");
	}
	if (write_sk(r->sk, p, raw, err) < 0)
		return -1;
	r->st->raw_rx += raw;
	r->st->payload_rx += fb->h.len;
	if (r->o->on_rx)
		r->o->on_rx(r->st->raw_rx, r->o->on_rx_arg);
	return 0;
}

static bool finished(const struct relay *r)
{
	if (r->o->end_on_peer_close && r->peer_closed)
		return true;
	return r->local_eof && r->peer_closed;
}

int relay_run(struct chan *c, int sk, const struct relay_opts *o, struct relay_stats *st,
	      ferr_t *err)
{
	struct relay r = {.c = c, .sk = sk, .o = o, .st = st};
	uint64_t t0 = now_ns(), last = now_ns();
	int ret = -1;

	memset(st, 0, sizeof(*st));
	r.out_cap = lz4_bound(RELAY_CHUNK) + RAWLEN_HDR;
	r.in = malloc(RELAY_CHUNK);
	r.out = malloc(r.out_cap);
	r.dec = malloc(RELAY_CHUNK);
	if (!r.in || !r.out || !r.dec) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	while (!finished(&r)) {
		int pending = r.peer_closed ? 0 : chan_poll(c, 0);
		struct pollfd p[2] = {
		    {.fd = r.local_eof ? -1 : sk, .events = POLLIN},
		    {.fd = r.peer_closed ? -1 : c->fd, .events = POLLIN},
		};
		int n = poll(p, 2, pending > 0 ? 0 : 200);
		if (n < 0 && errno != EINTR) {
			ferr_sys(err, FX_FAIL, "relay: poll");
			goto out;
		}
		if (n <= 0 && pending <= 0) {
			if (o->idle_ms > 0 && ms_since(last) > o->idle_ms) {
				ferr_set(err, FX_PEER,
					 "relay: nothing moved for %d s (peer %s unreachable?)",
					 o->idle_ms / 1000, chan_peer(c));
				goto out;
			}
			continue;
		}
		last = now_ns();
		if ((pending > 0 || p[1].revents) && !r.peer_closed && pump_in(&r, err) < 0)
			goto out;
		if (p[0].revents && !r.local_eof && !finished(&r) && pump_out(&r, err) < 0)
			goto out;
	}
	ret = 0;
out:
	st->seconds = ms_since(t0) / 1000.0;
	frame_buf_free(&r.fb);
	free(r.in);
	free(r.out);
	free(r.dec);
	return ret;
}
