/* How the snapshot store cuts files into chunks (docs/snapshots.md).
 *
 * Memory: CRIU's pages images hold the pages of each run of its pagemap
 * image one after the other. They are cut where the virtual address is a
 * multiple of the page-chunk size and where a run starts or ends, so that a
 * dirtied page changes one chunk and a mapping that grows or appears shifts
 * nothing after it (page_cuts).
 *
 * Everything else: content-defined chunking with a gear rolling hash and
 * FastCDC's normalized cut masks (a harder mask before the average size, an
 * easier one after it, no cut before min, a forced one at max). The gear
 * table derives from the store's key (cdc_init's seed) so that chunk sizes
 * reveal nothing to whoever lacks it. Pure code, no I/O but pagemap_read. */
#ifndef FERRY_CHUNK_H
#define FERRY_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define CHUNK_PAGE 4096U

struct cdc {
	uint64_t gear[256];
	uint32_t min, avg, max;
	uint64_t mask_s, mask_l; /* before avg / after avg */
};

/* avg a power of two, min < avg < max. seed: any bytes (the store's). */
int cdc_init(struct cdc *c, uint32_t min, uint32_t avg, uint32_t max, const uint8_t *seed,
	     size_t seedlen, ferr_t *err);
/* Length of the chunk that starts at buf. n: bytes available; the caller
 * gives at least c->max unless the data ends within buf. */
size_t cdc_next(const struct cdc *c, const uint8_t *buf, size_t n);

struct page_run {
	uint64_t vaddr;
	uint32_t nr_pages;
};

/* Chunk lengths (bytes) of a pages image made of these runs, cut at
 * multiples of chunk (a multiple of CHUNK_PAGE) in the address space and at
 * run ends: *out malloc'd, *nout entries. */
int page_cuts(const struct page_run *runs, size_t n, uint32_t chunk, uint32_t **out, size_t *nout,
	      ferr_t *err);

/* The runs of a CRIU pagemap image whose pages are in its pages image
 * (present, not in a parent): *runs malloc'd, *pages_id the pages image's
 * number (pages-ID.img). */
int pagemap_read(const char *path, struct page_run **runs, size_t *n, uint32_t *pages_id,
		 ferr_t *err);

#endif
