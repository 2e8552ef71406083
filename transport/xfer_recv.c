/* Receiving an image set: the connection thread reads and parses frames, a
 * writer thread decompresses, hashes and writes (store.h). Items cycle between
 * two bounded queues (free -> work -> free), so at most XFER_QUEUE chunks are
 * in memory per connection. */
#define LOG_PREFIX "recv"
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "transport/bqueue.h"
#include "transport/compress.h"
#include "lib/log.h"
#include "transport/session.h"
#include "snapshot/store.h"
#include "lib/util.h"
#include "transport/wire.h"
#include "transport/xfer.h"

struct rx_item {
	uint8_t type;
	uint32_t flags;
	struct data_hdr d; /* DATA; FILE_BEGIN/END use index + offset (size) */
	uint8_t *buf;	   /* DATA payload after its header */
	size_t len, cap;
	uint8_t *raw; /* decompressed chunk */
	size_t raw_cap;
	const uint8_t *data; /* the chunk's raw bytes: buf or raw */
	bool zero;	     /* all bytes 0: the writer leaves a hole */
};

struct receiver {
	struct store_set *store;
	const manifest_t *m;
	struct bqueue *free_q, *work_q; /* NULL in single-thread mode */
	struct rx_item *items;
	struct store_hash *hash; /* connection thread: the current file's hash */
	uint64_t since_sync;
	/* Writer results, read by the connection thread under lock. */
	pthread_mutex_t lock;
	ferr_t werr; /* first writer error */
	bool failed, committed;
	/* durable points not yet acknowledged to the sender, per file */
	uint64_t *ack_off;
	bool *ack_done, *ack_dirty;
	uint32_t *dirty; /* indexes with ack_dirty set */
	size_t n_dirty;
	uint64_t raw_bytes;
};

static void post_ack(struct receiver *r, uint32_t i, uint64_t off, bool complete)
{
	pthread_mutex_lock(&r->lock);
	r->ack_off[i] = off;
	r->ack_done[i] = complete;
	if (!r->ack_dirty[i]) {
		r->ack_dirty[i] = true;
		r->dirty[r->n_dirty++] = i;
	}
	pthread_mutex_unlock(&r->lock);
}

static int handle(struct receiver *r, struct rx_item *it, ferr_t *err)
{
	uint32_t si;
	uint64_t so;

	switch (it->type) {
	case WIRE_FILE_BEGIN:
		r->since_sync = 0;
		return store_file_begin(r->store, it->d.index, it->d.offset, err);
	case WIRE_DATA: {
		if (store_file_write(r->store, it->d.index, it->d.offset, it->data, it->d.raw_len,
				     it->zero, err) < 0)
			return -1;
		r->raw_bytes += it->d.raw_len;
		r->since_sync += it->d.raw_len;
		if (r->since_sync >= XFER_SYNC_EVERY) {
			r->since_sync = 0;
			if (store_sync(r->store, &si, &so, err) < 0)
				return -1;
			post_ack(r, si, so, false);
		}
		return 0;
	}
	case WIRE_FILE_END:
		if (store_file_end(r->store, it->d.index, it->d.offset, err) < 0)
			return -1;
		post_ack(r, it->d.index, it->d.offset, true);
		return 0;
	case WIRE_COMMIT:
		if (store_commit(r->store, err) < 0)
			return -1;
		pthread_mutex_lock(&r->lock);
		r->committed = true;
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	return 0;
}

static void handle_or_fail(struct receiver *r, struct rx_item *it)
{
	ferr_t e = {0};

	if (r->failed)
		return; /* keep recycling items after an error */
	if (handle(r, it, &e) < 0) {
		pthread_mutex_lock(&r->lock);
		r->werr = e;
		r->failed = true;
		pthread_mutex_unlock(&r->lock);
	}
}

static void *writer_main(void *arg)
{
	struct receiver *r = arg;
	struct rx_item *it;

	while ((it = bq_pop(r->work_q))) {
		handle_or_fail(r, it);
		bq_push(r->free_q, it);
	}
	return NULL;
}

/* Read the payload of the frame h into a pool item. */
static int read_item(struct chan *c, const struct frame_hdr *h, struct rx_item *it, ferr_t *err)
{
	uint8_t small[256];

	it->type = h->type;
	it->flags = h->flags;
	if (h->type == WIRE_DATA) {
		if (h->len < DATA_HDR_LEN || h->len - DATA_HDR_LEN > lz4_bound(XFER_CHUNK_MAX))
			return ferr_set(err, FX_INTEGRITY, "bad DATA frame length %u", h->len);
		it->len = h->len - DATA_HDR_LEN;
		if (it->len > it->cap) {
			uint8_t *n = realloc(it->buf, it->len);
			if (!n)
				return ferr_set(err, FX_FAIL, "out of memory");
			it->buf = n;
			it->cap = it->len;
		}
		if (chan_read_full(c, small, DATA_HDR_LEN) < 0 ||
		    chan_read_full(c, it->buf, it->len) < 0)
			return chan_take_error(c, err);
		data_hdr_decode(small, DATA_HDR_LEN, &it->d, err);
		if (it->d.raw_len > XFER_CHUNK_MAX)
			return ferr_set(err, FX_INTEGRITY, "DATA chunk of %u bytes exceeds %u",
					it->d.raw_len, XFER_CHUNK_MAX);
		return 0;
	}
	if (h->len > sizeof(small))
		return ferr_set(err, FX_INTEGRITY, "oversize %s frame (%u bytes)",
				wire_type_name(h->type), h->len);
	if (chan_read_full(c, small, h->len) < 0)
		return chan_take_error(c, err);
	if (h->type == WIRE_FILE_BEGIN) {
		Ferry__Wire__FileBegin *b =
		    wire_unpack(&ferry__wire__file_begin__descriptor, small, h->len, err);
		if (!b)
			return -1;
		it->d.index = b->index;
		it->d.offset = b->offset;
		wire_free(b);
	} else if (h->type == WIRE_FILE_END) {
		Ferry__Wire__FileEnd *e =
		    wire_unpack(&ferry__wire__file_end__descriptor, small, h->len, err);
		if (!e)
			return -1;
		it->d.index = e->index;
		it->d.offset = e->size;
		wire_free(e);
	}
	return 0;
}

/* Send the durable points the writer recorded since the last ACK. */
static void send_ack_if_new(struct chan *c, struct receiver *r)
{
	enum { BATCH = 64 };
	Ferry__Wire__FilePos pos[BATCH], *pp[BATCH];

	for (;;) {
		Ferry__Wire__Ack a = FERRY__WIRE__ACK__INIT;
		size_t n = 0;

		pthread_mutex_lock(&r->lock);
		while (r->n_dirty && n < BATCH) {
			uint32_t i = r->dirty[--r->n_dirty];
			ferry__wire__file_pos__init(&pos[n]);
			pos[n].index = i;
			pos[n].offset = r->ack_off[i];
			pos[n].has_complete = 1;
			pos[n].complete = r->ack_done[i];
			r->ack_dirty[i] = false;
			pp[n] = &pos[n];
			n++;
		}
		pthread_mutex_unlock(&r->lock);
		if (!n)
			return;
		a.n_files = n;
		a.files = pp;
		frame_send_pb(c, WIRE_ACK, &a.base);
	}
}

/* Answer the OFFER with the resume points (files already partly or fully here). */
static int send_resume(struct chan *c, struct receiver *r, struct xfer_stats *st)
{
	Ferry__Wire__Ack a = FERRY__WIRE__ACK__INIT;
	Ferry__Wire__FilePos *pos = calloc(r->m->n_files + 1, sizeof(*pos));
	Ferry__Wire__FilePos **pp = calloc(r->m->n_files + 1, sizeof(*pp));
	int ret;

	if (!pos || !pp) {
		free(pos);
		free(pp);
		ferr_t e;
		ferr_set(&e, FX_FAIL, "out of memory");
		return chan_fail(c, &e);
	}
	for (size_t i = 0; i < r->m->n_files; i++) {
		uint64_t off = store_offset(r->store, i);
		if (!off)
			continue;
		ferry__wire__file_pos__init(&pos[a.n_files]);
		pos[a.n_files].index = (uint32_t)i;
		pos[a.n_files].offset = off;
		pos[a.n_files].has_complete = 1;
		pos[a.n_files].complete = store_complete(r->store, i);
		pp[a.n_files] = &pos[a.n_files];
		a.n_files++;
		st->skipped_bytes += off;
	}
	a.files = pp;
	ret = frame_send_pb(c, WIRE_ACK, &a.base);
	free(pos);
	free(pp);
	return ret < 0 ? ret : chan_flush(c);
}

static int writer_failed(struct receiver *r, ferr_t *err)
{
	bool f;

	pthread_mutex_lock(&r->lock);
	f = r->failed;
	if (f)
		*err = r->werr;
	pthread_mutex_unlock(&r->lock);
	return f ? -1 : 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* Connection thread, before the writer sees the item: decompress, hash, check
 * each file against the manifest at its end. Splitting the work this way keeps
 * the two threads about equally busy (measured: docs/transport.md). */
static int prepare(struct receiver *r, struct rx_item *it, ferr_t *err)
{
	switch (it->type) {
	case WIRE_FILE_BEGIN:
		store_hash_free(r->hash);
		r->hash = store_hash_begin(r->store, it->d.index, it->d.offset, err);
		return r->hash ? 0 : -1;
	case WIRE_DATA:
		if (!r->hash)
			return ferr_set(err, FX_INTEGRITY,
					"protocol violation: DATA outside a file");
		it->data = it->buf;
		it->zero = false;
		if (it->flags & FRAME_F_LZ4) {
			if (it->raw_cap < it->d.raw_len) {
				free(it->raw);
				it->raw = malloc(it->d.raw_len);
				it->raw_cap = it->raw ? it->d.raw_len : 0;
				if (!it->raw)
					return ferr_set(err, FX_FAIL, "out of memory");
			}
			if (lz4_unpack(it->buf, it->len, it->raw, it->d.raw_len, err) < 0)
				return -1;
			it->data = it->raw;
			/* zero chunks compress to almost nothing: only those are checked */
			if (it->len < it->d.raw_len / 64)
				it->zero = all_zero(it->data, it->d.raw_len);
		} else if (it->len != it->d.raw_len) {
			return ferr_set(err, FX_INTEGRITY, "DATA chunk length mismatch");
		}
		store_hash_update(r->hash, it->data, it->d.raw_len);
		return 0;
	case WIRE_FILE_END: {
		struct store_hash *h = r->hash;
		r->hash = NULL;
		if (!h)
			return ferr_set(err, FX_INTEGRITY,
					"protocol violation: FILE_END outside a file");
		return store_hash_end(h, err);
	}
	}
	return 0;
}

/* The frame loop after the OFFER. Returns 1 when committed. */
static int recv_loop(struct chan *c, struct receiver *r, bool threaded, ferr_t *err)
{
	enum wire_state ws = WS_IDLE;
	struct frame_hdr h;

	for (;;) {
		struct rx_item *it;

		if (threaded && writer_failed(r, err) < 0)
			return -1;
		send_ack_if_new(c, r);
		if (frame_recv_hdr(c, &h, FRAME_MAX, err) < 0 || wire_rx_step(&ws, h.type, err) < 0)
			return -1;
		if (h.type == WIRE_ERROR || h.type == WIRE_ABORT || h.type == WIRE_STATS) {
			struct frame_buf fb = {.h = h};
			fb.data = malloc(h.len ? h.len : 1);
			if (!fb.data || chan_read_full(c, fb.data, h.len) < 0) {
				free(fb.data);
				return fb.data ? chan_take_error(c, err)
					       : ferr_set(err, FX_FAIL, "out of memory");
			}
			if (h.type == WIRE_ERROR)
				session_peer_error(&fb, "sender", err);
			else if (h.type == WIRE_ABORT)
				ferr_set(err, FX_INTEGRITY, "the sender aborted the transfer");
			frame_buf_free(&fb);
			if (h.type == WIRE_STATS)
				continue;
			return -2; /* the peer ended it: discard */
		}
		it = threaded ? bq_pop(r->free_q) : &r->items[0];
		if (read_item(c, &h, it, err) < 0 || prepare(r, it, err) < 0) {
			if (threaded)
				bq_push(r->free_q, it);
			return -1;
		}
		if (!threaded) {
			handle_or_fail(r, it);
			if (writer_failed(r, err) < 0)
				return -1;
		} else {
			bq_push(r->work_q, it);
		}
		if (h.type == WIRE_COMMIT)
			return 1;
	}
}

static int setup(struct receiver *r, int threads, ferr_t *err)
{
	size_t n = threads > 1 ? XFER_QUEUE : 1;

	pthread_mutex_init(&r->lock, NULL);
	r->items = calloc(n, sizeof(*r->items));
	r->ack_off = calloc(r->m->n_files + 1, sizeof(*r->ack_off));
	r->ack_done = calloc(r->m->n_files + 1, sizeof(*r->ack_done));
	r->ack_dirty = calloc(r->m->n_files + 1, sizeof(*r->ack_dirty));
	r->dirty = calloc(r->m->n_files + 1, sizeof(*r->dirty));
	if (!r->items || !r->ack_off || !r->ack_done || !r->ack_dirty || !r->dirty)
		return ferr_set(err, FX_FAIL, "out of memory");
	if (threads > 1) {
		r->free_q = bq_new(n);
		r->work_q = bq_new(n);
		if (!r->free_q || !r->work_q)
			return ferr_set(err, FX_FAIL, "out of memory");
		for (size_t i = 0; i < n; i++)
			bq_push(r->free_q, &r->items[i]);
	}
	return 0;
}

static void teardown(struct receiver *r, int threads)
{
	size_t n = threads > 1 ? XFER_QUEUE : 1;

	for (size_t i = 0; r->items && i < n; i++) {
		free(r->items[i].buf);
		free(r->items[i].raw);
	}
	free(r->items);
	free(r->ack_off);
	free(r->ack_done);
	free(r->ack_dirty);
	free(r->dirty);
	store_hash_free(r->hash);
	r->hash = NULL;
	bq_free(r->free_q);
	bq_free(r->work_q);
	pthread_mutex_destroy(&r->lock);
}

static int transfer(struct chan *c, struct receiver *r, int threads, ferr_t *err)
{
	pthread_t tid;
	int ret;

	if (setup(r, threads, err) < 0)
		return -1;
	if (threads > 1 && pthread_create(&tid, NULL, writer_main, r) != 0) {
		teardown(r, threads);
		return ferr_set(err, FX_FAIL, "cannot start the writer thread");
	}
	ret = recv_loop(c, r, threads > 1, err);
	if (threads > 1) {
		bq_close(r->work_q);
		pthread_join(tid, NULL);
		bq_close(r->free_q);
	}
	if (ret == 1) {
		if (writer_failed(r, err) < 0)
			ret = -1;
		else if (!r->committed)
			ret = ferr_set(err, FX_FAIL, "the set was not committed");
		else
			send_ack_if_new(c, r); /* the last durable points, before COMMIT */
	}
	teardown(r, threads);
	return ret;
}

/* Errors after which partial data has no future: remove it. */
static bool discard_on(const ferr_t *e, int ret)
{
	return ret == -2 || e->code == FX_NOSPACE || e->code == FX_INTEGRITY;
}

int xfer_recv(struct chan *c, const struct frame_buf *offer, const struct recv_opts *o,
	      struct xfer_stats *st, ferr_t *err)
{
	Ferry__Wire__Offer *of;
	struct receiver r = {0};
	manifest_t *m = NULL;
	uint64_t t0 = now_ns();
	bool locked = false, tell = true;
	char key[STORE_PEER_MAX + 80];
	int ret = -1, rc;

	of = wire_unpack(&ferry__wire__offer__descriptor, offer->data, offer->h.len, err);
	if (!of ||
	    wire_check_manifest(of->manifest.data, of->manifest.len, of->set_id, &m, err) < 0)
		goto out;
	snprintf(st->set_id, sizeof(st->set_id), "%s", m->set_id);
	snprintf(st->tenant, sizeof(st->tenant), "%s", m->tenant_name);
	st->n_files = (uint32_t)m->n_files;
	st->total_bytes = manifest_total_size(m);
	/* a set is the peer's: another peer's OFFER of the same id never touches
	 * it, nor takes its transfer over */
	if (!store_peer_ok(o->peer_name)) {
		ferr_set(err, FX_USAGE,
			 "the peer's certificate name '%.64s' cannot name a set store",
			 o->peer_name);
		goto out;
	}
	snprintf(key, sizeof(key), "%s/%s", o->peer_name, m->set_id);
	if (o->lock(o->lock_arg, key, c, err) < 0)
		goto out;
	locked = true;
	if ((rc = store_have_set(o->state_dir, o->peer_name, m->set_id, of->manifest.data,
				 of->manifest.len, err)) < 0)
		goto out;
	if (rc == 1) {
		Ferry__Wire__Ack a = FERRY__WIRE__ACK__INIT;
		a.has_have_set = a.have_set = 1;
		st->have_set = true;
		frame_send_pb(c, WIRE_ACK, &a.base);
		chan_flush(c);
		tell = false;
		ret = chan_take_error(c, err);
		goto out;
	}
	r.m = m;
	r.store =
	    store_open(o->state_dir, o->peer_name, m, of->manifest.data, of->manifest.len, err);
	if (!r.store)
		goto out;
	if (store_check_space(r.store, err) < 0) {
		store_close(r.store, true);
		goto out;
	}
	if (send_resume(c, &r, st) < 0) {
		chan_take_error(c, err);
		store_close(r.store, false);
		tell = false;
		goto out;
	}
	rc = transfer(c, &r, o->threads, err);
	st->raw_bytes = r.raw_bytes;
	if (rc == 1) {
		Ferry__Wire__Commit cm = FERRY__WIRE__COMMIT__INIT;
		cm.has_done = cm.done = 1;
		frame_send_pb(c, WIRE_COMMIT, &cm.base);
		chan_flush(c);
		store_close(r.store, false);
		ret = 0;
		goto out;
	}
	store_close(r.store, discard_on(err, rc));
	if (rc == -2 || err->code == FX_PEER)
		tell = false; /* the peer is gone, or ended it itself */
out:
	if (ret < 0 && tell)
		session_send_error(c, err);
	if (locked)
		o->unlock(o->lock_arg, key);
	manifest_free(m);
	wire_free(of);
	st->wire_bytes = chan_wire_rx(c) + chan_wire_tx(c);
	st->seconds = ms_since(t0) / 1000.0;
	return ret;
}

/* ---- the agent's OFFER handler (request.h) ---- */

static void report(const struct req_ctx *ctx, const struct xfer_stats *st, int rc,
		   const ferr_t *err)
{
	struct event e;

	ev_init(&e, "transfer");
	ev_bool(&e, "ok", rc == 0);
	ev_str(&e, "set_id", st->set_id);
	ev_str(&e, "tenant", st->tenant);
	ev_str(&e, "peer", ctx->peer);
	ev_str(&e, "peer_name", ctx->peer_name);
	ev_uint(&e, "files", st->n_files);
	ev_uint(&e, "total_bytes", st->total_bytes);
	ev_uint(&e, "raw_bytes", st->raw_bytes);
	ev_uint(&e, "resumed_from", st->skipped_bytes);
	ev_uint(&e, "wire_bytes", st->wire_bytes);
	ev_double(&e, "seconds", st->seconds);
	ev_bool(&e, "already_present", st->have_set);
	if (rc) {
		ev_int(&e, "code", err->code);
		ev_str(&e, "error", err->msg);
	}
	ev_emit(ctx->events, &e);
}

static int serve_offer(struct chan *c, const struct frame_buf *req, const struct req_ctx *ctx,
		       void *state, ferr_t *err)
{
	const struct xfer_serve_cfg *cfg = state;
	struct recv_opts ro = {.state_dir = ctx->state_dir,
			       .peer_name = ctx->peer_name,
			       .threads = cfg ? cfg->threads : 2,
			       .lock = ctx->lock,
			       .unlock = ctx->unlock,
			       .lock_arg = ctx->lock_arg};
	struct xfer_stats st = {0};
	int rc = xfer_recv(c, req, &ro, &st, err);

	report(ctx, &st, rc, err);
	return rc;
}

const struct req_handler xfer_requests[] = {
    {WIRE_OFFER, "send-set", serve_offer, true},
    {0, NULL, NULL, false},
};
