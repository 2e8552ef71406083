/* Frame header coding: round trip, bad magic, unknown version, oversize, flags. */
#include <string.h>

#include "transport/frame.h"
#include "unit.h"

static void test_roundtrip(void)
{
	struct frame_hdr h = {FRAME_VERSION, 5, 0x1234, 1000, FRAME_F_LZ4}, r;
	uint8_t raw[FRAME_HDR_LEN];
	ferr_t e = {0};

	frame_hdr_encode(&h, raw);
	CHECK(!memcmp(raw, "FRYF", 4));
	CHECK(frame_hdr_decode(raw, &r, FRAME_MAX, &e) == 0);
	CHECK(r.type == 5 && r.stream == 0x1234 && r.len == 1000 && r.flags == FRAME_F_LZ4);
}

static void test_rejects(void)
{
	struct frame_hdr h = {FRAME_VERSION, 2, 0, FRAME_MAX + 1, 0}, r;
	uint8_t raw[FRAME_HDR_LEN];
	ferr_t e = {0};

	frame_hdr_encode(&h, raw);
	CHECK(frame_hdr_decode(raw, &r, FRAME_MAX, &e) < 0 && e.code == FX_INTEGRITY);
	CHECK(strstr(e.msg, "oversize") != NULL);
	h.len = 10;
	h.version = 2;
	frame_hdr_encode(&h, raw);
	CHECK(frame_hdr_decode(raw, &r, FRAME_MAX, &e) < 0 && strstr(e.msg, "version"));
	h.version = FRAME_VERSION;
	h.flags = 0x80;
	frame_hdr_encode(&h, raw);
	CHECK(frame_hdr_decode(raw, &r, FRAME_MAX, &e) < 0 && strstr(e.msg, "flags"));
	h.flags = 0;
	frame_hdr_encode(&h, raw);
	raw[0] = 'X';
	CHECK(frame_hdr_decode(raw, &r, FRAME_MAX, &e) < 0 && strstr(e.msg, "magic"));
	memcpy(raw, "GET ", 4); /* a plaintext client */
	CHECK(frame_hdr_decode(raw, &r, FRAME_MAX, &e) < 0);
}

static void test_data_hdr(void)
{
	struct data_hdr d = {7, 262144, 0x123456789aULL}, r;
	uint8_t raw[DATA_HDR_LEN];
	ferr_t e = {0};

	data_hdr_encode(&d, raw);
	CHECK(data_hdr_decode(raw, sizeof(raw), &r, &e) == 0);
	CHECK(r.index == 7 && r.raw_len == 262144 && r.offset == 0x123456789aULL);
	CHECK(data_hdr_decode(raw, 10, &r, &e) < 0);
}

int main(void)
{
	RUN(test_roundtrip);
	RUN(test_rejects);
	RUN(test_data_hdr);
	UNIT_DONE();
}
