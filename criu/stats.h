/* CRIU's statistics images (stats-dump, stats-restore): the timings CRIU
 * measured itself. Layout: u32 service magic, u32 stats magic, then one
 * entry (u32 length + protobuf, see proto/criu_stats.proto). */
#ifndef FERRY_CRIU_STATS_H
#define FERRY_CRIU_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define CRIU_IMG_SERVICE_MAGIC 0x55105940U
#define CRIU_STATS_MAGIC       0x57093306U

struct criu_stats {
	bool has_dump, has_restore;
	/* dump, milliseconds */
	double freeze_ms, frozen_ms, mem_dump_ms, mem_write_ms;
	uint64_t pages_scanned, pages_written;
	/* restore, milliseconds */
	double forking_ms, restore_ms;
	uint64_t pages_restored;
};

/* Parse an image held in memory. FX_INTEGRITY on a bad magic or entry. */
int criu_stats_parse(const uint8_t *buf, size_t len, struct criu_stats *st, ferr_t *err);
/* Read DIR/NAME ("stats-dump" or "stats-restore"). */
int criu_stats_read(const char *dir, const char *name, struct criu_stats *st, ferr_t *err);

#endif
