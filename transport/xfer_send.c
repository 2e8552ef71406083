/* Sending an image set. A reader thread reads each file in chunks, hashes it
 * (checking it against the manifest) and compresses it; the calling thread
 * frames, encrypts and sends. Items cycle free -> work -> free through two
 * bounded queues. After a dropped connection xfer_send reconnects with backoff
 * and continues from the receiver's durable progress. */
#define LOG_PREFIX "send"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/bqueue.h"
#include "transport/chan_sock.h"
#include "transport/chan_tls.h"
#include "transport/compress.h"
#include "lib/fsutil.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"
#include "transport/xfer.h"

enum tx_kind { TX_BEGIN, TX_DATA, TX_END, TX_FAIL, TX_DONE };

struct tx_item {
	enum tx_kind kind;
	struct data_hdr d; /* BEGIN: index, offset; END: index, offset = size */
	uint32_t flags;
	uint8_t *buf; /* FRAME_DATA_HEADROOM + payload */
	size_t len;   /* payload bytes */
	ferr_t err;   /* TX_FAIL */
};

struct sender {
	const struct send_opts *o;
	const manifest_t *m;
	uint64_t *start; /* per file: where this attempt starts; UINT64_MAX: skip */
	struct bqueue *free_q, *work_q;
	struct tx_item items[XFER_QUEUE];
	uint8_t *zbuf;	    /* reader: compression scratch, swapped with item buffers */
	uint8_t *mzbuf;	    /* main thread: the same when it compresses */
	bool lz4_in_reader; /* which thread compresses (docs/transport.md) */
	uint8_t *hbuf;	    /* reader: buffer for hashing a resumed prefix */
	size_t bufcap;
	bool compress;	    /* this attempt: LZ4 when both ends can */
	uint64_t wire_prev; /* socket bytes of earlier connections */
	uint64_t *acked;    /* per file: receiver's durable offset (acks) */
	volatile int stop;  /* main -> reader: give up */
};

/* LZ4 the item's chunk into *scratch; when it shrinks, the item and the
 * scratch swap buffers (both bufcap bytes), so nothing is copied. */
static void compress_item(struct tx_item *it, uint8_t **scratch, size_t bufcap)
{
	size_t z = lz4_pack(it->buf + FRAME_DATA_HEADROOM, it->len, *scratch + FRAME_DATA_HEADROOM,
			    bufcap - FRAME_DATA_HEADROOM);

	if (z) {
		uint8_t *t = it->buf;
		it->buf = *scratch;
		*scratch = t;
		it->len = z;
		it->flags = FRAME_F_LZ4;
	}
}

static int emit(struct sender *s, struct tx_item *it)
{
	return bq_push(s->work_q, it) ? 0 : -1;
}

static struct tx_item *take(struct sender *s)
{
	return s->stop ? NULL : bq_pop(s->free_q);
}

static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (uint8_t *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Hash the first start bytes of fd, which the receiver already has (a
 * resumed transfer). */
static int hash_prefix(struct sender *s, int fd, const char *path, uint64_t start,
		       struct sha256_ctx *sha, ferr_t *err)
{
	uint64_t off = 0;

	while (off < start) {
		size_t want = start - off < s->bufcap ? (size_t)(start - off) : s->bufcap;
		ssize_t n = read_full(fd, s->hbuf, want);
		if (n <= 0)
			return ferr_set(err, FX_INTEGRITY,
					"%s: file is shorter than the manifest says", path);
		sha256_update(sha, s->hbuf, (size_t)n);
		off += (uint64_t)n;
	}
	return 0;
}

/* Queue file i's chunks from *off to its end (or to the manifest's size, if
 * the file grew), hashing them. 0 done, 1 stopped, -1 read error. */
static int stream_chunks(struct sender *s, int fd, uint32_t i, const char *path,
			 struct sha256_ctx *sha, uint64_t *off, ferr_t *err)
{
	const Ferry__ImageFile *f = s->m->files[i];
	struct tx_item *it;

	for (;;) {
		ssize_t n;
		if (!(it = take(s)))
			return 1;
		n = read_full(fd, it->buf + FRAME_DATA_HEADROOM, XFER_CHUNK);
		if (n < 0) {
			ferr_sys(err, FX_FAIL, "read %s", path);
			bq_push(s->free_q, it);
			return -1;
		}
		if (n == 0 || *off + (uint64_t)n > f->size) {
			bq_push(s->free_q, it);
			*off += (uint64_t)n;
			return 0;
		}
		sha256_update(sha, it->buf + FRAME_DATA_HEADROOM, (size_t)n);
		it->kind = TX_DATA;
		it->d = (struct data_hdr){.index = i, .raw_len = (uint32_t)n, .offset = *off};
		it->flags = 0;
		it->len = (size_t)n;
		if (s->compress && s->lz4_in_reader)
			compress_item(it, &s->zbuf, s->bufcap);
		*off += (uint64_t)n;
		emit(s, it);
	}
}

/* The file as read (size off, digest) against its manifest entry. */
static int check_read(const char *path, const Ferry__ImageFile *f, uint64_t off,
		      const uint8_t *digest, ferr_t *err)
{
	if (off != f->size)
		return ferr_set(err, FX_INTEGRITY,
				"%s: size differs from the manifest (%llu+ bytes, manifest %llu): "
				"the image set was modified after it was written",
				path, (unsigned long long)off, (unsigned long long)f->size);
	if (memcmp(digest, f->sha256.data, SHA256_LEN))
		return ferr_set(err, FX_INTEGRITY,
				"%s: content does not match the manifest (SHA-256 differs): the "
				"image set is corrupt or was modified after it was written",
				path);
	return 0;
}

/* Read one file from s->start[i]; hashes the skipped prefix too.
 * 0 sent, 1 stopped, -1 error. */
static int read_file(struct sender *s, uint32_t i, ferr_t *err)
{
	const Ferry__ImageFile *f = s->m->files[i];
	char path[PATH_MAX];
	uint8_t digest[SHA256_LEN];
	struct sha256_ctx *sha;
	uint64_t off = s->start[i];
	struct tx_item *it;
	int fd, ret = -1;

	if (xsnprintf_path(path, sizeof(path), s->o->dir, f->name) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s/%s", s->o->dir, f->name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "open %s", path);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	sha = sha256_new();
	if (hash_prefix(s, fd, path, off, sha, err) < 0)
		goto out;
	if (!(it = take(s)))
		goto stopped;
	it->kind = TX_BEGIN;
	it->d = (struct data_hdr){.index = i, .offset = off};
	emit(s, it);
	if ((ret = stream_chunks(s, fd, i, path, sha, &off, err)) != 0)
		goto out;
	sha256_final(sha, digest);
	sha = NULL;
	ret = -1;
	if (check_read(path, f, off, digest, err) < 0)
		goto out;
	if (!(it = take(s)))
		goto stopped;
	it->kind = TX_END;
	it->d = (struct data_hdr){.index = i, .offset = f->size};
	emit(s, it);
	ret = 0;
	goto out;
stopped:
	ret = 1;
out:
	if (sha)
		sha256_free(sha);
	close(fd);
	return ret;
}

static void *reader_main(void *arg)
{
	struct sender *s = arg;
	struct tx_item *it;
	ferr_t e = {0};
	int r = 0;

	for (uint32_t i = 0; i < s->m->n_files && r == 0; i++)
		if (s->start[i] != UINT64_MAX)
			r = read_file(s, i, &e);
	if (r == 1 || !(it = take(s)))
		return NULL;
	it->kind = r < 0 ? TX_FAIL : TX_DONE;
	it->err = e;
	emit(s, it);
	return NULL;
}

/* ---- the network side ---- */

struct attempt {
	struct chan *c;
	bool established; /* got past the offer: a drop is worth a retry */
	bool peer_said;	  /* the error came from the receiver's ERROR frame */
	uint64_t *acked;  /* per file: the receiver's durable offset */
	size_t n_files;
};

static int handle_reply(struct attempt *a, struct frame_buf *fb, struct xfer_stats *st, ferr_t *err)
{
	if (fb->h.type == WIRE_ERROR) {
		a->peer_said = true;
		return session_peer_error(fb, "receiver", err);
	}
	if (fb->h.type == WIRE_ACK) {
		Ferry__Wire__Ack *ack =
		    wire_unpack(&ferry__wire__ack__descriptor, fb->data, fb->h.len, err);
		if (!ack)
			return -1;
		for (size_t k = 0; k < ack->n_files; k++) {
			const Ferry__Wire__FilePos *p = ack->files[k];
			if (a->acked && p->index < a->n_files)
				a->acked[p->index] = p->offset;
		}
		st->acked_bytes = 0;
		for (size_t i = 0; a->acked && i < a->n_files; i++)
			st->acked_bytes += a->acked[i];
		wire_free(ack);
		return 0;
	}
	if (fb->h.type == WIRE_COMMIT)
		return 1;
	return session_unexpected(fb, "receiver", "ACK or COMMIT", err);
}

static void report(const struct sender *s, struct xfer_stats *st, struct chan *c, uint64_t t0,
		   bool final)
{
	const struct send_opts *o = s->o;

	st->wire_bytes = s->wire_prev + chan_wire_rx(c) + chan_wire_tx(c);
	st->seconds = ms_since(t0) / 1000.0;
	if (o->progress)
		o->progress(st, final, o->progress_arg);
}

/* Send every queued item; answers from the receiver are read as they come. */
static int pump(struct sender *s, struct attempt *a, struct xfer_stats *st, uint64_t t0,
		ferr_t *err)
{
	struct frame_buf fb = {0};
	struct tx_item *it;
	uint64_t last = now_ns();
	int ret = -1;

	while ((it = bq_pop(s->work_q))) {
		enum tx_kind k = it->kind;
		if (k == TX_DATA) {
			if (s->compress && !s->lz4_in_reader)
				compress_item(it, &s->mzbuf, s->bufcap);
			frame_send_data(a->c, it->buf, &it->d, it->len, it->flags);
			st->raw_bytes += it->d.raw_len;
			st->sent_bytes += it->d.raw_len;
			st->payload_bytes += it->len;
		} else if (k == TX_BEGIN) {
			Ferry__Wire__FileBegin b = FERRY__WIRE__FILE_BEGIN__INIT;
			b.index = it->d.index;
			b.offset = it->d.offset;
			frame_send_pb(a->c, WIRE_FILE_BEGIN, &b.base);
		} else if (k == TX_END) {
			Ferry__Wire__FileEnd e = FERRY__WIRE__FILE_END__INIT;
			e.index = it->d.index;
			e.size = it->d.offset;
			frame_send_pb(a->c, WIRE_FILE_END, &e.base);
		} else if (k == TX_FAIL) {
			Ferry__Wire__Abort ab = FERRY__WIRE__ABORT__INIT;
			*err = it->err;
			ab.reason = it->err.msg;
			frame_send_pb(a->c, WIRE_ABORT, &ab.base);
			chan_flush(a->c);
			a->peer_said = true; /* not worth a retry */
			goto out;
		}
		bq_push(s->free_q, it);
		if (k == TX_DONE)
			break;
		if (chan_error(a->c))
			goto io;
		while (chan_poll(a->c, 0) > 0) {
			if (frame_recv(a->c, &fb, err) < 0 || handle_reply(a, &fb, st, err) < 0)
				goto out;
		}
		if (now_ns() - last > 200000000ULL) {
			last = now_ns();
			report(s, st, a->c, t0, false);
		}
	}
	{
		Ferry__Wire__Commit cm = FERRY__WIRE__COMMIT__INIT;
		frame_send_pb(a->c, WIRE_COMMIT, &cm.base);
		chan_flush(a->c);
	}
	for (;;) {
		int r;
		if (chan_error(a->c))
			goto io;
		if (frame_recv(a->c, &fb, err) < 0 || (r = handle_reply(a, &fb, st, err)) < 0)
			goto out;
		if (r == 1)
			break;
	}
	ret = 0;
	goto out;
io:
	chan_take_error(a->c, err);
	/* the receiver may have said why before it closed */
	if (chan_poll(a->c, 100) > 0) {
		struct chan *c = a->c;
		ferr_t e2 = {0};
		chan_reset_error(c);
		if (frame_recv(c, &fb, &e2) == 0 && fb.h.type == WIRE_ERROR)
			handle_reply(a, &fb, st, err);
	}
out:
	frame_buf_free(&fb);
	return ret;
}

static int run_pipeline(struct sender *s, struct attempt *a, struct xfer_stats *st, uint64_t t0,
			ferr_t *err)
{
	pthread_t tid;
	int ret;

	s->stop = 0;
	s->free_q = bq_new(XFER_QUEUE);
	s->work_q = bq_new(XFER_QUEUE);
	if (!s->free_q || !s->work_q) {
		bq_free(s->free_q);
		bq_free(s->work_q);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	for (size_t i = 0; i < XFER_QUEUE; i++)
		bq_push(s->free_q, &s->items[i]);
	if (pthread_create(&tid, NULL, reader_main, s) != 0) {
		bq_free(s->free_q);
		bq_free(s->work_q);
		return ferr_set(err, FX_FAIL, "cannot start the reader thread");
	}
	ret = pump(s, a, st, t0, err);
	s->stop = 1;
	bq_close(s->free_q);
	bq_close(s->work_q);
	pthread_join(tid, NULL);
	bq_free(s->free_q);
	bq_free(s->work_q);
	s->free_q = s->work_q = NULL;
	return ret;
}

static int connect_session(const struct send_opts *o, struct tls_ctx *tls, struct attempt *a,
			   ferr_t *err)
{
	struct session_info si;
	struct chan *raw = chan_tcp_connect(o->host, o->port, 10000, err);

	if (!raw)
		return -1;
	a->c = chan_tls_client(raw, tls, o->peer ? o->peer : o->host, o->timeout_ms, err);
	if (!a->c)
		return -1;
	if (session_hello_client(a->c, o->name, &si, err) < 0)
		return -1;
	if (!si.peer_lz4 && o->compress)
		log_msg(LOG_INFO, LOG_PREFIX, "the receiver cannot decode LZ4: sending raw");
	return si.peer_lz4 ? 1 : 0;
}

/* OFFER the set; the receiver answers with its resume points. */
static int offer(struct sender *s, struct attempt *a, const uint8_t *mbuf, size_t mlen,
		 struct xfer_stats *st, ferr_t *err)
{
	Ferry__Wire__Offer of = FERRY__WIRE__OFFER__INIT;
	Ferry__Wire__Ack *ack = NULL;
	struct frame_buf fb = {0};
	int ret = -1;

	of.set_id = s->m->set_id;
	of.manifest.data = (uint8_t *)mbuf;
	of.manifest.len = mlen;
	of.has_compress = 1;
	of.compress = s->o->compress;
	if (frame_send_pb(a->c, WIRE_OFFER, &of.base) < 0 || chan_flush(a->c) < 0 ||
	    frame_recv(a->c, &fb, err) < 0) {
		chan_take_error(a->c, err);
		goto out;
	}
	if (fb.h.type != WIRE_ACK) {
		handle_reply(a, &fb, st, err);
		if (!err->code)
			session_unexpected(&fb, "receiver", "ACK", err);
		goto out;
	}
	ack = wire_unpack(&ferry__wire__ack__descriptor, fb.data, fb.h.len, err);
	if (!ack)
		goto out;
	st->have_set = ack->has_have_set && ack->have_set;
	st->skipped_bytes = 0;
	st->sent_bytes = 0;
	for (size_t i = 0; i < s->m->n_files; i++) {
		s->start[i] = st->have_set ? UINT64_MAX : 0;
		s->acked[i] = st->have_set ? s->m->files[i]->size : 0;
	}
	for (size_t k = 0; k < ack->n_files && !st->have_set; k++) {
		const Ferry__Wire__FilePos *p = ack->files[k];
		if (p->index >= s->m->n_files || p->offset > s->m->files[p->index]->size) {
			ferr_set(err, FX_INTEGRITY, "the receiver sent an invalid resume point");
			goto out;
		}
		s->start[p->index] = p->has_complete && p->complete ? UINT64_MAX : p->offset;
		s->acked[p->index] = p->offset;
		st->skipped_bytes += p->offset;
	}
	st->acked_bytes = st->have_set ? st->total_bytes : st->skipped_bytes;
	ret = 0;
out:
	wire_free(ack);
	frame_buf_free(&fb);
	return ret;
}

static int attempt(struct sender *s, struct tls_ctx *tls, const uint8_t *mbuf, size_t mlen,
		   struct attempt *a, struct xfer_stats *st, uint64_t t0, ferr_t *err)
{
	int lz4 = connect_session(s->o, tls, a, err);

	if (lz4 < 0)
		return -1;
	if (offer(s, a, mbuf, mlen, st, err) < 0)
		return -1;
	a->established = true;
	if (st->have_set)
		return 0;
	s->compress = s->o->compress && lz4;
	return run_pipeline(s, a, st, t0, err);
}

static int sender_init(struct sender *s, const struct send_opts *o, const manifest_t *m,
		       ferr_t *err)
{
	s->o = o;
	s->m = m;
	s->bufcap = FRAME_DATA_HEADROOM + lz4_bound(XFER_CHUNK);
	s->start = calloc(m->n_files + 1, sizeof(*s->start));
	s->acked = calloc(m->n_files + 1, sizeof(*s->acked));
	s->zbuf = malloc(s->bufcap);
	s->mzbuf = malloc(s->bufcap);
	s->hbuf = malloc(s->bufcap);
	s->lz4_in_reader = getenv("FERRY_LZ4_IN_READER") != NULL;
	if (!s->start || !s->acked || !s->zbuf || !s->mzbuf || !s->hbuf)
		return ferr_set(err, FX_FAIL, "out of memory");
	for (size_t i = 0; i < XFER_QUEUE; i++)
		if (!(s->items[i].buf = malloc(s->bufcap)))
			return ferr_set(err, FX_FAIL, "out of memory");
	return 0;
}

static void sender_free(struct sender *s)
{
	for (size_t i = 0; i < XFER_QUEUE; i++)
		free(s->items[i].buf);
	free(s->zbuf);
	free(s->mzbuf);
	free(s->hbuf);
	free(s->start);
	free(s->acked);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int xfer_send(const struct send_opts *o, struct xfer_stats *st, ferr_t *err)
{
	struct sender s = {0};
	struct tls_ctx *tls = NULL;
	manifest_t *m = NULL;
	uint8_t *mbuf = NULL;
	size_t mlen = 0;
	char mpath[PATH_MAX];
	uint64_t t0 = now_ns(), drop_at = 0;
	int backoff = 250, ret = -1;

	memset(st, 0, sizeof(*st));
	if (xsnprintf_path(mpath, sizeof(mpath), o->dir, MANIFEST_NAME) < 0)
		return ferr_set(err, FX_USAGE, "path too long: %s", o->dir);
	if (fs_read_all(mpath, (char **)&mbuf, &mlen, MANIFEST_MAX + MANIFEST_HDR_LEN, err) < 0) {
		err->code = FX_NOTFOUND;
		return ferr_wrap(err, "%s is not an image set", o->dir);
	}
	if (mlen > FRAME_MAX - 1024) {
		ferr_set(err, FX_USAGE, "the manifest of %s is too large to send (%zu bytes)",
			 o->dir, mlen);
		goto out;
	}
	if (manifest_decode(mbuf, mlen, &m, err) < 0) {
		ferr_wrap(err, "%s", mpath);
		goto out;
	}
	snprintf(st->set_id, sizeof(st->set_id), "%s", m->set_id);
	snprintf(st->tenant, sizeof(st->tenant), "%s", m->tenant_name);
	st->n_files = (uint32_t)m->n_files;
	st->total_bytes = manifest_total_size(m);
	if (!(tls = tls_ctx_new(o->tls_dir, o->name, false, err)) || sender_init(&s, o, m, err) < 0)
		goto out;
	for (;;) {
		struct attempt a = {.acked = s.acked, .n_files = m->n_files};
		ret = attempt(&s, tls, mbuf, mlen, &a, st, t0, err);
		if (a.c) {
			report(&s, st, a.c, t0, ret == 0);
			s.wire_prev += chan_wire_rx(a.c) + chan_wire_tx(a.c);
			chan_shutdown(a.c);
			chan_close(a.c);
		}
		if (ret == 0)
			break;
		/* retry only a drop of a session that was working, never a refusal */
		if (err->code != FX_PEER || a.peer_said || (!a.established && !drop_at))
			break;
		if (a.established) {
			drop_at = now_ns();
			backoff = 250;
		}
		if (ms_since(drop_at) / 1000.0 > o->retry_for_s)
			break;
		log_msg(LOG_WARN, LOG_PREFIX, "%s; reconnecting in %d ms", err->msg, backoff);
		st->reconnects++;
		sleep_ms(backoff);
		backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
	}
out:
	st->seconds = ms_since(t0) / 1000.0;
	sender_free(&s);
	tls_ctx_free(tls);
	manifest_free(m);
	free(mbuf);
	return ret;
}
