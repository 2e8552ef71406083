/* A chan that reads a fuzzer's input and discards what is written: the
 * decoders run on it exactly as on a peer's socket. */
#ifndef FERRY_FUZZ_MEMCHAN_H
#define FERRY_FUZZ_MEMCHAN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/chan.h"

struct memchan {
	struct chan c;
	const uint8_t *p;
	size_t n, off;
};

static ssize_t mem_read(struct chan *c, void *buf, size_t len, ferr_t *err)
{
	struct memchan *m = (struct memchan *)c;
	size_t k = m->n - m->off < len ? m->n - m->off : len;

	(void)err;
	memcpy(buf, m->p + m->off, k);
	m->off += k;
	return (ssize_t)k;
}

static ssize_t mem_write(struct chan *c, const void *buf, size_t len, ferr_t *err)
{
	(void)c;
	(void)buf;
	(void)err;
	return (ssize_t)len;
}

static int mem_poll(struct chan *c, int timeout_ms)
{
	(void)c;
	(void)timeout_ms;
	return 1;
}

static void mem_close(struct chan *c)
{
	free(c);
}

static const struct chan_ops mem_ops = {
    .read = mem_read, .write = mem_write, .poll = mem_poll, .close = mem_close};

static struct chan *memchan_new(const uint8_t *p, size_t n)
{
	struct memchan *m = calloc(1, sizeof(*m));

	if (!m)
		abort();
	chan_init(&m->c, &mem_ops, NULL, -1, "fuzz");
	m->p = p;
	m->n = n;
	return &m->c;
}

#endif
