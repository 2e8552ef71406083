/* Framing, the top layer of a chan stack. Every frame starts with a fixed
 * 16-byte big-endian header:
 *   u32 magic "FRYF" | u8 frame version | u8 type | u16 stream | u32 length | u32 flags
 * followed by length payload bytes. Most payloads are one protobuf message of
 * proto/wire.proto; DATA payloads are a 16-byte binary header
 *   u32 file index | u32 raw length | u64 offset
 * and then the chunk's bytes, LZ4-compressed when flags has FRAME_F_LZ4.
 * Stream 0 is the session; other stream ids carry multiplexed streams (raw byte
 * relays, handover control: see docs/protocol.md). */
#ifndef FERRY_FRAME_H
#define FERRY_FRAME_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/chan.h"

#define FRAME_MAGIC	    0x46525946U /* "FRYF" */
#define FRAME_VERSION	    1U
#define FRAME_HDR_LEN	    16
#define FRAME_MAX	    (4U << 20) /* largest payload a receiver accepts */
#define FRAME_F_LZ4	    0x1U       /* DATA: the chunk is an LZ4 block */
#define FRAME_F_KNOWN	    FRAME_F_LZ4
#define DATA_HDR_LEN	    16
#define FRAME_DATA_HEADROOM (FRAME_HDR_LEN + DATA_HDR_LEN)

struct frame_hdr {
	uint8_t version;
	uint8_t type; /* enum wire_type (wire.h) */
	uint16_t stream;
	uint32_t len;
	uint32_t flags;
};

struct data_hdr {
	uint32_t index;
	uint32_t raw_len;
	uint64_t offset;
};

void frame_hdr_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_LEN]);
/* Checks magic, version, length <= max_len and flags. FX_INTEGRITY on failure. */
int frame_hdr_decode(const uint8_t in[FRAME_HDR_LEN], struct frame_hdr *h, uint32_t max_len,
		     ferr_t *err);
void data_hdr_encode(const struct data_hdr *d, uint8_t out[DATA_HDR_LEN]);
int data_hdr_decode(const uint8_t *in, size_t len, struct data_hdr *d, ferr_t *err);

/* Send one frame (header and payload coalesced into one write). Errors stick
 * to the chan. */
int frame_send(struct chan *c, uint8_t type, uint16_t stream, uint32_t flags, const void *payload,
	       size_t len);
/* Send a protobuf message as the payload of one frame on stream 0. */
int frame_send_pb(struct chan *c, uint8_t type, const ProtobufCMessage *m);
/* A DATA frame whose payload sits at buf + FRAME_DATA_HEADROOM (len bytes):
 * fills both headers in the headroom and sends it all in one write. */
int frame_send_data(struct chan *c, uint8_t *buf, const struct data_hdr *d, size_t len,
		    uint32_t flags);

/* Read the next frame header (validated against max_len). */
int frame_recv_hdr(struct chan *c, struct frame_hdr *h, uint32_t max_len, ferr_t *err);

/* A reusable receive buffer for whole frames. */
struct frame_buf {
	struct frame_hdr h;
	uint8_t *data;
	size_t cap;
};
/* Read the next frame and its payload into fb (grown up to FRAME_MAX). */
int frame_recv(struct chan *c, struct frame_buf *fb, ferr_t *err);
void frame_buf_free(struct frame_buf *fb);

#endif
