/* A hand encoder of protobuf entries and CRIU image framing for unit tests:
 * written field by field, independent of protobuf-c, so a test also checks
 * ferry's partial schemas against the layout CRIU writes. */
#ifndef FERRY_TEST_PBWIRE_H
#define FERRY_TEST_PBWIRE_H

#include <stdint.h>
#include <string.h>

struct pb {
	uint8_t b[4096];
	size_t n;
};

static inline void pb_varint(struct pb *p, uint64_t v)
{
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		p->b[p->n++] = c | (v ? 0x80 : 0);
	} while (v);
}

static inline void pb_u64(struct pb *p, unsigned field, uint64_t v)
{
	pb_varint(p, (uint64_t)field << 3);
	pb_varint(p, v);
}

static inline void pb_bytes(struct pb *p, unsigned field, const void *d, size_t n)
{
	pb_varint(p, (uint64_t)field << 3 | 2);
	pb_varint(p, n);
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

/* CRIU's framing: magics and entry lengths in the host's byte order */
static inline void put_u32(struct pb *img, uint32_t v)
{
	memcpy(img->b + img->n, &v, 4);
	img->n += 4;
}

static inline void add_entry(struct pb *img, const struct pb *e)
{
	put_u32(img, (uint32_t)e->n);
	memcpy(img->b + img->n, e->b, e->n);
	img->n += e->n;
}

#endif
