/* Frames over a real chan (a UNIX socketpair): protobuf and DATA frames round
 * trip, a bad header is reported, and an error sticks to the stream. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "transport/chan_sock.h"
#include "transport/frame.h"
#include "unit.h"
#include "transport/wire.h"

static struct chan *a, *b;

static void pair(void)
{
	int sv[2];
	ferr_t e = {0};

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	a = chan_fd_new(sv[0], "a", &e);
	b = chan_fd_new(sv[1], "b", &e);
	CHECK(a && b);
}

static void test_pb_roundtrip(void)
{
	Ferry__Wire__FileBegin fb = FERRY__WIRE__FILE_BEGIN__INIT, *r;
	struct frame_buf buf = {0};
	ferr_t e = {0};

	pair();
	fb.index = 3;
	fb.offset = 1ULL << 40;
	CHECK(frame_send_pb(a, WIRE_FILE_BEGIN, &fb.base) == 0);
	CHECK(frame_recv(b, &buf, &e) == 0);
	CHECK(buf.h.type == WIRE_FILE_BEGIN && buf.h.stream == 0);
	r = wire_unpack(&ferry__wire__file_begin__descriptor, buf.data, buf.h.len, &e);
	CHECK(r && r->index == 3 && r->offset == 1ULL << 40);
	wire_free(r);
	CHECK(chan_wire_tx(a) == FRAME_HDR_LEN + buf.h.len);
	frame_buf_free(&buf);
	chan_close(a);
	chan_close(b);
}

static void test_data_roundtrip(void)
{
	uint8_t *out = malloc(FRAME_DATA_HEADROOM + 1000), in[DATA_HDR_LEN + 1000];
	struct data_hdr d = {1, 1000, 4096}, rd;
	struct frame_hdr h;
	ferr_t e = {0};

	pair();
	memset(out + FRAME_DATA_HEADROOM, 0xab, 1000);
	CHECK(frame_send_data(a, out, &d, 1000, 0) == 0);
	CHECK(frame_recv_hdr(b, &h, FRAME_MAX, &e) == 0);
	CHECK(h.type == WIRE_DATA && h.len == DATA_HDR_LEN + 1000);
	CHECK(chan_read_full(b, in, h.len) == 0);
	CHECK(data_hdr_decode(in, h.len, &rd, &e) == 0);
	CHECK(rd.index == 1 && rd.raw_len == 1000 && rd.offset == 4096);
	CHECK(in[DATA_HDR_LEN] == 0xab && in[DATA_HDR_LEN + 999] == 0xab);
	free(out);
	chan_close(a);
	chan_close(b);
}

static void test_limits_and_sticky_error(void)
{
	struct frame_buf buf = {0};
	uint8_t junk[FRAME_HDR_LEN] = "GET / HTTP/1.0\r";
	ferr_t e = {0};

	pair();
	CHECK(chan_write_all(a, junk, sizeof(junk)) == 0);
	CHECK(frame_recv(b, &buf, &e) < 0 && e.code == FX_INTEGRITY);
	/* a frame announcing more than FRAME_MAX is refused before any read */
	CHECK(frame_send(a, WIRE_OFFER, 0, 0, NULL, 0) == 0);
	chan_close(b);
	/* the peer is gone: the first failing write sticks, later ones are no-ops */
	for (int i = 0; i < 64 && !chan_error(a); i++)
		chan_write_all(a, junk, sizeof(junk));
	CHECK(chan_error(a) != NULL && chan_error(a)->code == FX_PEER);
	CHECK(chan_write_all(a, junk, sizeof(junk)) < 0);
	CHECK(chan_take_error(a, &e) < 0 && e.code == FX_PEER);
	frame_buf_free(&buf);
	chan_close(a);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_pb_roundtrip);
	RUN(test_data_roundtrip);
	RUN(test_limits_and_sticky_error);
	UNIT_DONE();
}
