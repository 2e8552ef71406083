/* Pre-copy, destination side: one receiver of the tenant's checkpoint
 * backend (tenant/ckpt.h: for CRIU a `criu page-server`) per round of the
 * source's pre-dumps, each into its own directory linked to the round before
 * (precopy.h), then the final dump's pages into the migration's directory.
 * After that the handover goes on as in stop-copy (dst.c). */
#ifndef FERRY_DST_PRECOPY_H
#define FERRY_DST_PRECOPY_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/chan.h"
#include "lib/err.h"
#include "tenant/ckpt.h"

struct precopy_dst_opts {
	const struct ckpt_ops *ckpt; /* the tenant's checkpoint backend */
	const struct ckpt_env *env;
	const char *dir;	  /* the migration's directory: final images */
	const char *migration_id; /* for messages */
	bool lz4;		  /* the relay's chunks may be LZ4 */
	int timeout_ms;		  /* relay idle limit */
	/* test hook (FERRY_FAULT): page bytes received so far in this round */
	void (*on_rx)(uint64_t raw_rx, void *arg);
	void *on_rx_arg;
};

/* MIG_ACCEPT for the migration, then every round the source announces
 * (MIG_ROUND; MIG_ACCEPT once its page server runs; pages on stream 1) up
 * to and including the final dump's. The round directories stay in dir (the
 * restore reads pages from them through the parent links); removing dir
 * removes them. */
int precopy_receive(struct chan *c, const struct precopy_dst_opts *o, ferr_t *err);

#endif
