/* File-system transfers over a migration session (fs_wire.h). */
#define LOG_PREFIX "migrate"
#include "migrate/fs_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lz4hc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/hash.h"
#include "lib/util.h"
#include "migrate/handover.h"
#include "transport/compress.h"
#include "transport/frame.h"
#include "transport/session.h"
#include "transport/wire.h"

#define FS_CHUNK (1U << 20)

struct fs_tx {
	struct chan *c;
	bool lz4;
	int hc;	   /* LZ4HC level for the chunks, 0: LZ4's fast mode */
	void *hcs; /* LZ4HC's state */
	uint8_t *buf, *z;
	uint64_t raw, wire;
};

/* The same block format either way (the receiver's LZ4_decompress_safe):
 * 0 when it does not shrink (sent raw). */
static size_t pack_chunk(struct fs_tx *t, size_t n)
{
	if (!t->lz4 || !n)
		return 0;
	if (!t->hc || !t->hcs)
		return lz4_pack(t->buf, n, t->z, lz4_bound(FS_CHUNK));
	int r = LZ4_compress_HC_extStateHC(t->hcs, (const char *)t->buf, (char *)t->z, (int)n,
					   (int)lz4_bound(FS_CHUNK), t->hc);
	return r > 0 && (size_t)r < n ? (size_t)r : 0;
}

/* One MIG_FS_CHUNK of file name at off: LZ4 when it shrinks. */
static void send_chunk(struct fs_tx *t, const char *name, uint64_t off, size_t n, bool last)
{
	Ferry__Wire__MigrateFsChunk ch = FERRY__WIRE__MIGRATE_FS_CHUNK__INIT;
	size_t z = pack_chunk(t, n);

	ch.name = (char *)name;
	ch.offset = off;
	ch.data.data = z ? t->z : t->buf;
	ch.data.len = z ? z : n;
	ch.has_raw_len = z != 0;
	ch.raw_len = (uint32_t)n;
	ch.has_last = true;
	ch.last = last;
	frame_send_pb(t->c, MIG_FS_CHUNK, &ch.base);
	t->raw += n;
	t->wire += ch.data.len;
}

struct fs_stream {
	struct fs_tx t;
	manifest_t *m;
	char name[64];
	struct sha256_ctx *h; /* of the current file */
	size_t fill;
	uint64_t off;
};

struct fs_stream *fs_stream_new(struct chan *c, const char *tenant, Ferry__TenantKind kind,
				bool lz4, ferr_t *err)
{
	struct fs_stream *s = calloc(1, sizeof(*s));

	if (s) {
		s->t = (struct fs_tx){.c = c, .lz4 = lz4};
		s->t.buf = malloc(FS_CHUNK);
		s->t.z = malloc(lz4_bound(FS_CHUNK));
		s->m = manifest_new(tenant, kind);
	}
	if (!s || !s->t.buf || !s->t.z || !s->m) {
		fs_stream_free(s);
		ferr_set(err, FX_FAIL, "out of memory");
		return NULL;
	}
	return s;
}

void fs_stream_level(struct fs_stream *s, int hc)
{
	if (hc > 0 && !s->t.hcs)
		s->t.hcs = malloc((size_t)LZ4_sizeofStateHC());
	s->t.hc = hc > 0 ? hc : 0;
}

int fs_stream_open(struct fs_stream *s, const char *name, ferr_t *err)
{
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->fill = 0;
	s->off = 0;
	if (!(s->h = sha256_new()))
		return ferr_set(err, FX_FAIL, "out of memory");
	return 0;
}

static void flush(struct fs_stream *s, bool last)
{
	sha256_update(s->h, s->t.buf, s->fill);
	send_chunk(&s->t, s->name, s->off, s->fill, last);
	s->off += s->fill;
	s->fill = 0;
}

int fs_stream_write(const void *buf, size_t len, void *arg)
{
	struct fs_stream *s = arg;
	const uint8_t *p = buf;

	while (len) {
		size_t n = FS_CHUNK - s->fill < len ? FS_CHUNK - s->fill : len;
		memcpy(s->t.buf + s->fill, p, n);
		s->fill += n;
		p += n;
		len -= n;
		if (s->fill == FS_CHUNK) {
			flush(s, false);
			if (chan_error(s->t.c))
				return -1;
		}
	}
	return 0;
}

/* The file's entry in the manifest: its size and SHA-256 as sent. */
static int add_entry(struct fs_stream *s, const uint8_t digest[SHA256_LEN], ferr_t *err)
{
	Ferry__ImageFile *f = malloc(sizeof(*f)), **nf;

	if (!f || !(nf = realloc(s->m->files, (s->m->n_files + 1) * sizeof(*nf)))) {
		free(f);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	s->m->files = nf;
	ferry__image_file__init(f);
	f->name = strdup(s->name);
	f->size = s->off;
	f->sha256.data = malloc(SHA256_LEN);
	f->has_mode = true;
	f->mode = 0600;
	if (!f->name || !f->sha256.data) {
		free(f->name);
		free(f->sha256.data);
		free(f);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	memcpy(f->sha256.data, digest, SHA256_LEN);
	f->sha256.len = SHA256_LEN;
	s->m->files[s->m->n_files++] = f;
	return 0;
}

int fs_stream_close(struct fs_stream *s, ferr_t *err)
{
	uint8_t digest[SHA256_LEN];

	flush(s, true);
	sha256_final(s->h, digest);
	s->h = NULL;
	if (chan_take_error(s->t.c, err) < 0)
		return -1;
	return add_entry(s, digest, err);
}

int fs_stream_end(struct fs_stream *s, uint64_t *raw, uint64_t *wire, ferr_t *err)
{
	Ferry__Wire__MigrateFsEnd end = FERRY__WIRE__MIGRATE_FS_END__INIT;
	uint8_t *mbuf = NULL;
	size_t mlen = 0;

	if (manifest_encode(s->m, &mbuf, &mlen, err) < 0)
		return -1;
	end.manifest.data = mbuf;
	end.manifest.len = mlen;
	frame_send_pb(s->t.c, MIG_FS_END, &end.base);
	chan_flush(s->t.c);
	free(mbuf);
	*raw = s->t.raw;
	*wire = s->t.wire;
	return chan_take_error(s->t.c, err);
}

int fs_stream_error(const struct fs_stream *s, ferr_t *err)
{
	return chan_error(s->t.c) ? chan_take_error(s->t.c, err) : -1;
}

void fs_stream_free(struct fs_stream *s)
{
	if (!s)
		return;
	if (s->h)
		sha256_free(s->h);
	manifest_free(s->m);
	free(s->t.hcs);
	free(s->t.buf);
	free(s->t.z);
	free(s);
}

struct fs_rx {
	void (*on_chunk)(uint64_t, void *);
	void *arg;
	const char *dir;
	int fd;
	char cur[256];
	uint64_t next_off;
	uint8_t *buf;
};

static int open_next(struct fs_rx *r, const Ferry__Wire__MigrateFsChunk *ch, ferr_t *err)
{
	char path[PATH_MAX];
	size_t len = strlen(ch->name);

	if (!len || len >= sizeof(r->cur) || !fs_name_is_safe(ch->name, len) ||
	    !strcmp(ch->name, MANIFEST_NAME))
		return ferr_set(err, FX_INTEGRITY, "refusing file name '%s' from the peer",
				ch->name);
	if (ch->offset != 0)
		return ferr_set(err, FX_INTEGRITY, "file %s starts at offset %llu", ch->name,
				(unsigned long long)ch->offset);
	if (xsnprintf(path, sizeof(path), err, "%s/%s", r->dir, ch->name) < 0)
		return -1;
	r->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (r->fd < 0)
		return ferr_sys(err, FX_INTEGRITY, "file %s (sent twice?)", path);
	snprintf(r->cur, sizeof(r->cur), "%s", ch->name);
	r->next_off = 0;
	return 0;
}

static int store(struct fs_rx *r, const Ferry__Wire__MigrateFsChunk *ch, uint64_t *raw, ferr_t *err)
{
	const void *data = ch->data.data;
	size_t n = ch->data.len;

	if (r->fd < 0 && open_next(r, ch, err) < 0)
		return -1;
	if (strcmp(r->cur, ch->name) || ch->offset != r->next_off)
		return ferr_set(err, FX_INTEGRITY, "file %s: chunk out of order", ch->name);
	if (ch->has_raw_len) {
		if (ch->raw_len > FS_CHUNK || lz4_unpack(data, n, r->buf, ch->raw_len, err) < 0)
			return ferr_set(err, FX_INTEGRITY, "file %s: bad LZ4 chunk", ch->name);
		data = r->buf;
		n = ch->raw_len;
	}
	for (size_t done = 0; done < n;) {
		ssize_t w = write(r->fd, (const char *)data + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return ferr_sys(err, FX_FAIL, "write %s/%s", r->dir, ch->name);
		done += (size_t)w;
	}
	r->next_off += n;
	*raw += n;
	if (ch->has_last && ch->last) {
		close(r->fd);
		r->fd = -1;
	}
	return 0;
}

static int finish(const char *dir, const struct frame_buf *fb, ferr_t *err)
{
	Ferry__Wire__MigrateFsEnd *end =
	    wire_unpack(&ferry__wire__migrate_fs_end__descriptor, fb->data, fb->h.len, err);
	manifest_t *m = NULL, *checked = NULL;
	int ret = -1;

	if (!end)
		return -1;
	if (wire_manifest_bounded(end->manifest.data, end->manifest.len, err) < 0 ||
	    manifest_decode(end->manifest.data, end->manifest.len, &m, err) < 0 ||
	    wire_check_manifest(end->manifest.data, end->manifest.len, m->set_id, &checked, err) <
		0)
		goto out;
	ret = manifest_verify_files(dir, checked, err);
out:
	manifest_free(m);
	manifest_free(checked);
	wire_free(end);
	return ret;
}

static int recv_loop(struct chan *c, struct fs_rx *r, uint64_t *raw, ferr_t *err)
{
	struct frame_buf fb = {0};
	int ret = -1;

	for (;;) {
		if (frame_recv(c, &fb, err) < 0)
			break;
		if (fb.h.type == WIRE_ERROR) {
			session_peer_error(&fb, chan_peer(c), err);
			break;
		}
		if (fb.h.type == MIG_FS_END) {
			ret = finish(r->dir, &fb, err);
			break;
		}
		if (fb.h.type != MIG_FS_CHUNK) {
			session_unexpected(&fb, chan_peer(c), "MIG_FS_CHUNK", err);
			break;
		}
		Ferry__Wire__MigrateFsChunk *ch =
		    wire_unpack(&ferry__wire__migrate_fs_chunk__descriptor, fb.data, fb.h.len, err);
		if (!ch)
			break;
		int s = store(r, ch, raw, err);
		wire_free(ch);
		if (s < 0)
			break;
		if (r->on_chunk)
			r->on_chunk(*raw, r->arg);
	}
	frame_buf_free(&fb);
	return ret;
}

int fs_wire_recv(struct chan *c, const char *dir, uint64_t *raw, ferr_t *err)
{
	return fs_wire_recv_cb(c, dir, NULL, NULL, raw, err);
}

int fs_wire_recv_cb(struct chan *c, const char *dir, void (*on_chunk)(uint64_t, void *), void *arg,
		    uint64_t *raw, ferr_t *err)
{
	struct fs_rx r = {
	    .on_chunk = on_chunk, .arg = arg, .dir = dir, .fd = -1, .buf = malloc(FS_CHUNK)};
	int ret;

	*raw = 0;
	if (!r.buf)
		return ferr_set(err, FX_FAIL, "out of memory");
	ret = recv_loop(c, &r, raw, err);
	if (r.fd >= 0)
		close(r.fd);
	free(r.buf);
	return ret;
}
