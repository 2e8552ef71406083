/* Fix-ups of CRIU's images after a dump (imgfix.h). */
#define LOG_PREFIX "imgfix"
#include "criu/imgfix.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#include "proto/criu_files.pb-c.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"

/* files.img of a tenant with a million open files stays far below this */
#define IMGFIX_MAX_IMAGE (512U << 20)

/* Growing output image. */
struct obuf {
	uint8_t *p;
	size_t len, cap;
};

static int obuf_reserve(struct obuf *o, size_t more, ferr_t *err)
{
	size_t cap = o->cap ? o->cap : 4096;

	if (more > SIZE_MAX - o->len)
		return ferr_set(err, FX_FAIL, "files image too large");
	while (cap - o->len < more)
		cap *= 2;
	if (cap != o->cap) {
		uint8_t *np = realloc(o->p, cap);
		if (!np)
			return ferr_set(err, FX_FAIL, "out of memory rewriting the files image");
		o->p = np;
		o->cap = cap;
	}
	return 0;
}

static int obuf_put(struct obuf *o, const void *data, size_t len, ferr_t *err)
{
	if (obuf_reserve(o, len, err) < 0)
		return -1;
	memcpy(o->p + o->len, data, len);
	o->len += len;
	return 0;
}

/* A periodic, relative timer that expired and was not read: restored as it
 * stands, CRIU's timerfd_settime() with it_value 0 would disarm it. An
 * absolute timer is left alone: CRIU's restorer re-anchors it_value to the
 * current second, so it is armed (due at once) either way. A timer with no
 * pending tick and it_value 0 was disarmed by its tenant: left alone too. */
static bool expired_unread_periodic(const FerryCriu__TimerfdEntry *t)
{
	return t->ticks > 0 && t->vsec == 0 && t->vnsec == 0 && (t->isec || t->insec) &&
	       !(t->settime_flags & TFD_TIMER_ABSTIME);
}

/* The entry of `n` bytes at p, re-encoded if it needs the fix, into o. */
static int fix_entry(const uint8_t *p, uint32_t n, size_t off, struct obuf *o, bool *changed,
		     ferr_t *err)
{
	FerryCriu__FileEntry *fe = ferry_criu__file_entry__unpack(NULL, n, p);
	FerryCriu__TimerfdEntry *t;
	uint32_t size;
	int ret = -1;

	*changed = false;
	if (!fe)
		return ferr_set(err, FX_INTEGRITY, "entry at offset %zu does not decode", off);
	t = fe->tfd;
	if (fe->type != CRIU_FD_TYPE_TIMERFD || !t || !expired_unread_periodic(t)) {
		ret = o ? obuf_put(o, p - 4, (size_t)n + 4, err) : 0;
		goto out;
	}
	*changed = true;
	if (!o) { /* first pass: only say that it changes */
		ret = 0;
		goto out;
	}
	/* due one period after the restore; the pending ticks stay pending */
	t->has_vsec = t->has_vnsec = true;
	t->vsec = t->isec;
	t->vnsec = t->insec;
	size = (uint32_t)ferry_criu__file_entry__get_packed_size(fe);
	if (obuf_reserve(o, (size_t)size + 4, err) < 0)
		goto out;
	memcpy(o->p + o->len, &size, sizeof(size));
	ferry_criu__file_entry__pack(fe, o->p + o->len + 4);
	o->len += (size_t)size + 4;
	ret = 0;
out:
	ferry_criu__file_entry__free_unpacked(fe, NULL);
	return ret;
}

/* One walk over the entries after the header at hdr: with o NULL it only
 * counts entries that need the fix, else it writes every entry into o. */
static int walk(const uint8_t *in, size_t len, size_t hdr, struct obuf *o, unsigned *fixed,
		ferr_t *err)
{
	const uint8_t *e;
	size_t off = hdr;
	uint32_t n;
	int r;

	*fixed = 0;
	for (size_t at = off; (r = criu_img_next(in, len, &off, &e, &n, err)) > 0; at = off) {
		bool changed;
		if (fix_entry(e, n, at, o, &changed, err) < 0)
			return -1;
		*fixed += changed;
	}
	return r;
}

int imgfix_files_image(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
		       struct imgfix_stats *st, ferr_t *err)
{
	struct obuf o = {0};
	unsigned fixed = 0;
	size_t hdr;

	*out = NULL;
	*out_len = 0;
	if (criu_img_header(in, len, CRIU_FILES_MAGIC, "files", &hdr, err) < 0)
		return -1;
	if (walk(in, len, hdr, NULL, &fixed, err) < 0)
		return -1;
	if (fixed == 0)
		return 0;
	if (obuf_put(&o, in, hdr, err) < 0 || walk(in, len, hdr, &o, &fixed, err) < 0) {
		free(o.p);
		return -1;
	}
	if (st)
		st->timerfds_rearmed += fixed;
	*out = o.p;
	*out_len = o.len;
	return 0;
}

int imgfix_dir(const char *dir, struct imgfix_stats *st, ferr_t *err)
{
	char path[PATH_MAX];
	uint8_t *out = NULL;
	char *buf = NULL;
	size_t len = 0, out_len = 0;
	struct stat sb;
	int ret = -1;

	if (xsnprintf_path(path, sizeof(path), dir, IMGFIX_FILES_IMAGE) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s/%s", dir, IMGFIX_FILES_IMAGE);
	if (stat(path, &sb) < 0) {
		if (errno == ENOENT)
			return 0;
		return ferr_sys(err, FX_FAIL, "image %s", path);
	}
	if (fs_read_all(path, &buf, &len, IMGFIX_MAX_IMAGE, err) < 0)
		return -1;
	if (imgfix_files_image((const uint8_t *)buf, len, &out, &out_len, st, err) < 0) {
		ferr_wrap(err, "image %s", path);
		goto out;
	}
	if (out) {
		if (fs_write_atomic(path, out, out_len, sb.st_mode & 07777, err) < 0)
			goto out;
		pr_info("%s: re-armed the periodic timerfd(s) that had expired unread", path);
	}
	ret = 0;
out:
	free(buf);
	free(out);
	return ret;
}
