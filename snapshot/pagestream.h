/* A dump's memory streamed into the snapshot store (docs/snapshots.md,
 * "Streaming"): CRIU dumps with its page server pointed at a socket whose
 * other end ferry reads (criu/psread.h). The pages land in memory blocks
 * (a pool faulted in before the freeze), cut on page-aligned boundaries as
 * the staged path cuts pages-*.img (chunk.h: page_cuts), so both give the
 * same chunk names. Workers on both cores name each chunk (HMAC), count the
 * chunks the parent snapshot names, and compress, seal and write the new
 * ones (a chunk's file is looked for all the same: repo_put_chunk_named);
 * they start once the dump is over (the tenant runs again) or when the pool
 * is full, so the freeze holds CRIU's dump and a copy into memory.
 *
 * The manifest gets one file pages-N.img per pagemap image, with its chunk
 * list (no whole-file SHA-256: each chunk is authenticated and checked
 * against its keyed name, and the list is in the sealed manifest); the
 * pagemap images themselves are written into the stage directory, so a
 * restore rebuilds the image set CRIU reads. */
#ifndef FERRY_PAGESTREAM_H
#define FERRY_PAGESTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "snapshot/repo.h"

struct pstream_opts {
	struct repo *repo;
	const snapm_t *parent; /* its chunks are known to be stored (NULL: none) */
	const char *stage;     /* pagemap images go here */
	uint64_t mem_limit;    /* bytes of pages held at most (0: 1 GiB) */
	uint64_t prefault;     /* of which faulted in before the dump */
	int workers;	       /* 0: 2 */
};

struct pstream_stats {
	uint64_t pages, images, entries;
	uint64_t known; /* chunk references the parent named */
	unsigned hdr_len;
	double prefault_ms; /* before the dump */
	double drain_ms;    /* after the dump: until every chunk was stored */
	double held_mib;    /* most memory held at once */
};

struct pstream;

/* The pool, the reader and the workers: *criu_fd is the socket to hand to
 * CRIU (ckpt_save_opts.stream_fd); it stays the caller's until pstream_end. */
int pstream_start(const struct pstream_opts *o, struct pstream **out, int *criu_fd, ferr_t *err);
/* After CRIU's dump returned (dump_failed: it failed; the stream is cut):
 * wait for every chunk, then write the pagemaps into the stage and add the
 * pages files to m and their counts to st. Frees p. < 0 with err filled
 * when the stream failed (also when that made the dump fail: the cause);
 * < 0 with err untouched when only the dump failed. */
int pstream_end(struct pstream *p, bool dump_failed, snapm_t *m, struct repo_stats *st,
		struct pstream_stats *ps, ferr_t *err);

/* The parent's pages bytes: a hint for mem_limit and prefault. */
uint64_t pstream_parent_pages(const snapm_t *parent);

#endif
