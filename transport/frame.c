/* Frame header coding and frame I/O over a chan. */
#include "transport/frame.h"

#include <stdlib.h>
#include <string.h>

#include "lib/be.h"

void frame_hdr_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_LEN])
{
	be32_put(out, FRAME_MAGIC);
	out[4] = h->version ? h->version : FRAME_VERSION;
	out[5] = h->type;
	out[6] = (uint8_t)(h->stream >> 8);
	out[7] = (uint8_t)h->stream;
	be32_put(out + 8, h->len);
	be32_put(out + 12, h->flags);
}

int frame_hdr_decode(const uint8_t in[FRAME_HDR_LEN], struct frame_hdr *h, uint32_t max_len,
		     ferr_t *err)
{
	uint32_t magic = be32_get(in);

	if (magic != FRAME_MAGIC)
		return ferr_set(err, FX_INTEGRITY,
				"not a ferry stream (bad frame magic 0x%08x): is the peer a "
				"ferry of a compatible version?",
				magic);
	h->version = in[4];
	h->type = in[5];
	h->stream = (uint16_t)(in[6] << 8 | in[7]);
	h->len = be32_get(in + 8);
	h->flags = be32_get(in + 12);
	if (h->version != FRAME_VERSION)
		return ferr_set(err, FX_INTEGRITY,
				"unsupported frame version %u (this ferry speaks %u): upgrade "
				"ferry on the older host",
				h->version, FRAME_VERSION);
	if (h->len > max_len)
		return ferr_set(err, FX_INTEGRITY, "oversize frame: %u bytes of type %u (limit %u)",
				h->len, h->type, max_len);
	if (h->flags & ~FRAME_F_KNOWN)
		return ferr_set(err, FX_INTEGRITY, "frame with unknown flags 0x%x", h->flags);
	return 0;
}

void data_hdr_encode(const struct data_hdr *d, uint8_t out[DATA_HDR_LEN])
{
	be32_put(out, d->index);
	be32_put(out + 4, d->raw_len);
	be32_put(out + 8, (uint32_t)(d->offset >> 32));
	be32_put(out + 12, (uint32_t)d->offset);
}

int data_hdr_decode(const uint8_t *in, size_t len, struct data_hdr *d, ferr_t *err)
{
	if (len < DATA_HDR_LEN)
		return ferr_set(err, FX_INTEGRITY, "DATA frame shorter than its header (%zu bytes)",
				len);
	d->index = be32_get(in);
	d->raw_len = be32_get(in + 4);
	d->offset = (uint64_t)be32_get(in + 8) << 32 | be32_get(in + 12);
	return 0;
}

int frame_send(struct chan *c, uint8_t type, uint16_t stream, uint32_t flags, const void *payload,
	       size_t len)
{
	struct frame_hdr h = {FRAME_VERSION, type, stream, (uint32_t)len, flags};
	uint8_t small[FRAME_HDR_LEN + 512];

	if (len > FRAME_MAX) {
		ferr_t e;
		ferr_set(&e, FX_FAIL, "frame of %zu bytes exceeds the limit", len);
		return chan_fail(c, &e);
	}
	frame_hdr_encode(&h, small);
	if (len <= sizeof(small) - FRAME_HDR_LEN) {
		if (len)
			memcpy(small + FRAME_HDR_LEN, payload, len);
		return chan_write_all(c, small, FRAME_HDR_LEN + len);
	}
	if (chan_write_all(c, small, FRAME_HDR_LEN) < 0)
		return -1;
	return chan_write_all(c, payload, len);
}

int frame_send_pb(struct chan *c, uint8_t type, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t stackbuf[512], *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
	int ret;

	if (!buf) {
		ferr_t e;
		ferr_set(&e, FX_FAIL, "out of memory");
		return chan_fail(c, &e);
	}
	protobuf_c_message_pack(m, buf);
	ret = frame_send(c, type, 0, 0, buf, len);
	if (buf != stackbuf)
		free(buf);
	return ret;
}

int frame_send_data(struct chan *c, uint8_t *buf, const struct data_hdr *d, size_t len,
		    uint32_t flags)
{
	/* type 5 is WIRE_DATA (wire.h); frame.h stays free of session types */
	struct frame_hdr h = {FRAME_VERSION, 5, 0, (uint32_t)(DATA_HDR_LEN + len), flags};

	frame_hdr_encode(&h, buf);
	data_hdr_encode(d, buf + FRAME_HDR_LEN);
	return chan_write_all(c, buf, FRAME_DATA_HEADROOM + len);
}

int frame_recv_hdr(struct chan *c, struct frame_hdr *h, uint32_t max_len, ferr_t *err)
{
	uint8_t raw[FRAME_HDR_LEN];

	if (chan_read_full(c, raw, sizeof(raw)) < 0)
		return chan_take_error(c, err);
	/* a bad header is a protocol error, not a broken stream: the caller
	 * may still answer with an ERROR frame */
	return frame_hdr_decode(raw, h, max_len, err);
}

int frame_recv(struct chan *c, struct frame_buf *fb, ferr_t *err)
{
	if (frame_recv_hdr(c, &fb->h, FRAME_MAX, err) < 0)
		return -1;
	if (fb->h.len > fb->cap) {
		uint8_t *n = realloc(fb->data, fb->h.len);
		if (!n)
			return ferr_set(err, FX_FAIL, "out of memory");
		fb->data = n;
		fb->cap = fb->h.len;
	}
	if (chan_read_full(c, fb->data, fb->h.len) < 0)
		return chan_take_error(c, err);
	return 0;
}

void frame_buf_free(struct frame_buf *fb)
{
	free(fb->data);
	fb->data = NULL;
	fb->cap = 0;
}
