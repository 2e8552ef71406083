/* Reading CRIU's statistics images. */
#include "criu/stats.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "proto/criu_stats.pb-c.h"
#include "lib/fsutil.h"
#include "lib/util.h"

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int criu_stats_parse(const uint8_t *buf, size_t len, struct criu_stats *st, ferr_t *err)
{
	FerryCriu__Stats *s;
	size_t off = 0;
	uint32_t m, n;

	memset(st, 0, sizeof(*st));
	if (len < 12)
		return ferr_set(err, FX_INTEGRITY, "CRIU stats image too short (%zu bytes)", len);
	m = get_le32(buf);
	if (m == CRIU_IMG_SERVICE_MAGIC)
		off = 4;
	if (get_le32(buf + off) != CRIU_STATS_MAGIC)
		return ferr_set(err, FX_INTEGRITY, "not a CRIU stats image (magic 0x%08x)",
				get_le32(buf + off));
	off += 4;
	n = get_le32(buf + off);
	off += 4;
	if (n > len - off)
		return ferr_set(err, FX_INTEGRITY, "CRIU stats entry of %u bytes past the end", n);
	s = ferry_criu__stats__unpack(NULL, n, buf + off);
	if (!s)
		return ferr_set(err, FX_INTEGRITY, "CRIU stats entry does not decode");
	if (s->dump) {
		st->has_dump = true;
		st->freeze_ms = s->dump->freezing_time / 1000.0;
		st->frozen_ms = s->dump->frozen_time / 1000.0;
		st->mem_dump_ms = s->dump->memdump_time / 1000.0;
		st->mem_write_ms = s->dump->memwrite_time / 1000.0;
		st->pages_scanned = s->dump->pages_scanned;
		st->pages_written = s->dump->pages_written;
	}
	if (s->restore) {
		st->has_restore = true;
		st->forking_ms = s->restore->forking_time / 1000.0;
		st->restore_ms = s->restore->restore_time / 1000.0;
		st->pages_restored = s->restore->pages_restored;
	}
	ferry_criu__stats__free_unpacked(s, NULL);
	return 0;
}

int criu_stats_read(const char *dir, const char *name, struct criu_stats *st, ferr_t *err)
{
	char path[PATH_MAX];
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (xsnprintf_path(path, sizeof(path), dir, name) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s/%s", dir, name);
	if (fs_read_all(path, &buf, &len, 1 << 20, err) < 0)
		return -1;
	r = criu_stats_parse((const uint8_t *)buf, len, st, err);
	free(buf);
	if (r < 0)
		ferr_wrap(err, "%s", path);
	return r;
}
