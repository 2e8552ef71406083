/* Non-page images over the migration session (migrate_files.h). */
#define LOG_PREFIX "migrate"
#include "migrate/migrate_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/frame.h"
#include "lib/fsutil.h"
#include "migrate/handover.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"

static int send_one(struct chan *c, const char *dir, const char *name, uint8_t *buf, uint64_t *raw,
		    ferr_t *err)
{
	Ferry__Wire__MigrateFile mf = FERRY__WIRE__MIGRATE_FILE__INIT;
	char path[4096];
	uint64_t off = 0;
	int fd;

	if (xsnprintf(path, sizeof(path), err, "%s/%s", dir, name) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "image %s", path);
	for (;;) {
		ssize_t n = read(fd, buf, MIG_FILE_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return ferr_sys(err, FX_FAIL, "reading image %s", path);
		}
		mf.name = (char *)name;
		mf.offset = off;
		mf.data.data = buf;
		mf.data.len = (size_t)n;
		mf.has_last = true;
		mf.last = n < (ssize_t)MIG_FILE_CHUNK;
		frame_send_pb(c, MIG_FILE, &mf.base);
		off += (uint64_t)n;
		*raw += (uint64_t)n;
		if (mf.last || chan_error(c))
			break;
	}
	close(fd);
	return chan_take_error(c, err);
}

int mig_files_send(struct chan *c, const char *dir, const manifest_t *m, uint64_t *raw, ferr_t *err)
{
	Ferry__Wire__MigrateFilesEnd end = FERRY__WIRE__MIGRATE_FILES_END__INIT;
	uint8_t *buf = malloc(MIG_FILE_CHUNK), *mbuf = NULL;
	size_t mlen = 0;
	int ret = -1;

	*raw = 0;
	if (!buf)
		return ferr_set(err, FX_FAIL, "out of memory");
	for (size_t i = 0; i < m->n_files; i++)
		if (send_one(c, dir, m->files[i]->name, buf, raw, err) < 0)
			goto out;
	if (manifest_encode(m, &mbuf, &mlen, err) < 0)
		goto out;
	end.manifest.data = mbuf;
	end.manifest.len = mlen;
	frame_send_pb(c, MIG_FILES_END, &end.base);
	chan_flush(c);
	ret = chan_take_error(c, err);
out:
	free(buf);
	free(mbuf);
	return ret;
}

/* A name from the peer: one flat component, not ours (manifest, .ferry-*). */
static bool name_ok(const char *n)
{
	size_t len = strlen(n);

	return len && fs_name_is_safe(n, len) && !strchr(n, '/') && strcmp(n, MANIFEST_NAME) &&
	       strncmp(n, ".ferry", 6);
}

static int store_chunk(const char *dir, const Ferry__Wire__MigrateFile *mf, int *fd, char *cur,
		       size_t cur_len, ferr_t *err)
{
	char path[4096];

	if (!name_ok(mf->name))
		return ferr_set(err, FX_INTEGRITY, "refusing image file name '%s' from the peer",
				mf->name);
	if (*fd < 0 || strcmp(cur, mf->name)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		if (mf->offset != 0)
			return ferr_set(err, FX_INTEGRITY, "image %s starts at offset %llu",
					mf->name, (unsigned long long)mf->offset);
		if (xsnprintf(path, sizeof(path), err, "%s/%s", dir, mf->name) < 0)
			return -1;
		*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (*fd < 0)
			return ferr_sys(err, FX_INTEGRITY,
					"image %s (sent twice, or clashes with "
					"a page image?)",
					path);
		snprintf(cur, cur_len, "%s", mf->name);
	}
	if (pwrite(*fd, mf->data.data, mf->data.len, (off_t)mf->offset) != (ssize_t)mf->data.len)
		return ferr_sys(err, FX_FAIL, "writing image %s", mf->name);
	if (mf->has_last && mf->last) {
		close(*fd);
		*fd = -1;
		cur[0] = '\0';
	}
	return 0;
}

static int finish(const char *dir, const struct frame_buf *fb, ferr_t *err)
{
	Ferry__Wire__MigrateFilesEnd *end =
	    wire_unpack(&ferry__wire__migrate_files_end__descriptor, fb->data, fb->h.len, err);
	manifest_t *m = NULL, *checked = NULL;
	int ret = -1;

	if (!end)
		return -1;
	if (wire_manifest_bounded(end->manifest.data, end->manifest.len, err) < 0 ||
	    manifest_decode(end->manifest.data, end->manifest.len, &m, err) < 0)
		goto out;
	if (wire_check_manifest(end->manifest.data, end->manifest.len, m->set_id, &checked, err) <
	    0)
		goto out;
	ret = manifest_write(dir, checked, err);
out:
	manifest_free(m);
	manifest_free(checked);
	wire_free(end);
	return ret;
}

int mig_files_recv(struct chan *c, const char *dir, uint64_t *raw, ferr_t *err)
{
	struct frame_buf fb = {0};
	char cur[256] = "";
	int fd = -1, ret = -1;

	*raw = 0;
	for (;;) {
		if (frame_recv(c, &fb, err) < 0)
			break;
		if (fb.h.type == WIRE_ERROR) {
			session_peer_error(&fb, chan_peer(c), err);
			break;
		}
		if (fb.h.type == MIG_FILES_END) {
			ret = finish(dir, &fb, err);
			break;
		}
		if (fb.h.type != MIG_FILE) {
			session_unexpected(&fb, chan_peer(c), "MIG_FILE", err);
			break;
		}
		Ferry__Wire__MigrateFile *mf =
		    wire_unpack(&ferry__wire__migrate_file__descriptor, fb.data, fb.h.len, err);
		if (!mf)
			break;
		int r = store_chunk(dir, mf, &fd, cur, sizeof(cur), err);
		*raw += mf->data.len;
		wire_free(mf);
		if (r < 0)
			break;
	}
	if (fd >= 0)
		close(fd);
	frame_buf_free(&fb);
	return ret;
}
