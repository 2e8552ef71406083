/* libFuzzer target: the frame decoder as a receiver runs it on a peer's
 * bytes (HELLO, then frames: headers, payloads grown up to FRAME_MAX, DATA
 * headers and LZ4 chunks, the send-set state machine). */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz/memchan.h"
#include "transport/compress.h"
#include "transport/frame.h"
#include "transport/relay.h"
#include "transport/session.h"
#include "transport/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_frame(const struct frame_buf *fb, enum wire_state *st)
{
	static uint8_t raw[RELAY_CHUNK];
	struct data_hdr d;
	ferr_t e = {0};

	wire_rx_step(st, fb->h.type, &e);
	if ((fb->h.type != WIRE_DATA && fb->h.type != WIRE_STREAM_DATA) ||
	    data_hdr_decode(fb->data, fb->h.len, &d, &e) < 0)
		return;
	if ((fb->h.flags & FRAME_F_LZ4) && d.raw_len <= sizeof(raw))
		lz4_unpack(fb->data + DATA_HDR_LEN, fb->h.len - DATA_HDR_LEN, raw, d.raw_len, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chan *c = memchan_new(data, size);
	struct frame_buf fb = {0};
	struct session_info si;
	enum wire_state st = WS_REQUEST;
	ferr_t e = {0};

	/* the first byte: whether the stream starts with a HELLO */
	if (size > 0 && (data[0] & 1)) {
		((struct memchan *)c)->off = 1;
		if (session_hello_server(c, "fuzz", &si, &e) < 0)
			goto out;
	}
	for (int i = 0; i < 64 && frame_recv(c, &fb, &e) == 0; i++)
		one_frame(&fb, &st);
out:
	frame_buf_free(&fb);
	chan_close(c);
	return 0;
}
