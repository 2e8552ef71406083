/* Copying a snapshot to a peer's store and restoring it there (snapxfer.h). */
#define LOG_PREFIX "snapxfer"
#include "transport/snapxfer.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "criu/locate.h"
#include "lib/log.h"
#include "lib/util.h"
#include "proto/snapshot.pb-c.h"
#include "snapshot/repo.h"
#include "snapshot/snap.h"
#include "transport/chan_sock.h"
#include "transport/chan_tls.h"
#include "transport/session.h"
#include "transport/wire.h"

/* The distinct chunk references of m, in order (pointers into m). */
static int chunk_list(const snapm_t *m, const FerrySnap__ChunkRef ***out, size_t *n, ferr_t *err)
{
	struct idset *seen = idset_new();
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	for (size_t f = 0; seen && f < m->n_files; f++)
		for (size_t c = 0; c < m->files[f]->n_chunks; c++) {
			const FerrySnap__ChunkRef *ref = m->files[f]->chunks[c];
			if (ref->id.len != SEAL_ID_LEN || idset_has(seen, ref->id.data))
				continue;
			if (*n == cap) {
				void *nv =
				    realloc(*out, (cap = cap ? 2 * cap : 256) * sizeof(**out));
				if (!nv)
					goto oom;
				*out = nv;
			}
			if (idset_add(seen, ref->id.data) < 0)
				goto oom;
			(*out)[(*n)++] = ref;
		}
	if (!seen)
		return ferr_set(err, FX_FAIL, "out of memory");
	idset_free(seen);
	return 0;
oom:
	idset_free(seen);
	free(*out);
	*out = NULL;
	return ferr_set(err, FX_FAIL, "out of memory");
}

/* ---- the agent's side ---- */

struct put {
	struct repo r;
	bool open;
	snapm_t *m;
	const FerrySnap__ChunkRef **refs;
	size_t n_refs;
	bool *needed;
	uint32_t n_need, got;
	uint64_t got_bytes;
};

static int put_begin(struct put *p, const FerrySnap__SnapPut *req, const struct req_ctx *ctx,
		     struct chan *c, ferr_t *err)
{
	char store[4200], key[4200];
	uint8_t proof[SEAL_ID_LEN];
	FerrySnap__SnapNeed need = FERRY_SNAP__SNAP_NEED__INIT;
	uint32_t *idx;
	int rc;

	snprintf(store, sizeof(store), "%s/snapshots", ctx->state_dir);
	snprintf(key, sizeof(key), "%s/snapshot.key", ctx->state_dir);
	if (repo_open(&p->r, store, key, err) < 0)
		return ferr_wrap(err, "the receiver's store");
	p->open = true;
	repo_key_proof(&p->r, proof);
	if (req->key_proof.len != SEAL_ID_LEN ||
	    CRYPTO_memcmp(proof, req->key_proof.data, SEAL_ID_LEN))
		return ferr_set(err, FX_INTEGRITY,
				"the receiver's store has another key (init it with the same key)");
	if (repo_lock(&p->r, false, err) < 0 ||
	    repo_open_sealed_manifest(&p->r, req->id, req->manifest.data, req->manifest.len, &p->m,
				      err) < 0 ||
	    chunk_list(p->m, &p->refs, &p->n_refs, err) < 0)
		return -1;
	if (!(p->needed = calloc(p->n_refs + 1, 1)) || !(idx = calloc(p->n_refs + 1, sizeof(*idx))))
		return ferr_set(err, FX_FAIL, "out of memory");
	for (size_t i = 0; i < p->n_refs; i++)
		if (repo_has_chunk(&p->r, p->refs[i]->id.data, NULL) < 0) {
			p->needed[i] = true;
			idx[p->n_need++] = (uint32_t)i;
		}
	need.n_index = p->n_need;
	need.index = idx;
	rc = frame_send_pb(c, SNAP_NEED, &need.base);
	free(idx);
	return rc < 0 ? chan_take_error(c, err) : 0;
}

static int put_chunk(struct put *p, const struct frame_buf *fb, ferr_t *err)
{
	const uint8_t *id = fb->data;
	size_t i;

	if (fb->h.len < SEAL_ID_LEN)
		return ferr_set(err, FX_INTEGRITY, "short chunk frame");
	for (i = 0; i < p->n_refs; i++)
		if (p->needed[i] && !memcmp(p->refs[i]->id.data, id, SEAL_ID_LEN))
			break;
	if (i == p->n_refs)
		return ferr_set(err, FX_INTEGRITY, "a chunk that was not asked for");
	p->needed[i] = false;
	if (repo_put_sealed_chunk(&p->r, id, fb->data + SEAL_ID_LEN, fb->h.len - SEAL_ID_LEN, err) <
	    0)
		return -1;
	p->got++;
	p->got_bytes += fb->h.len - SEAL_ID_LEN;
	return 0;
}

static int put_chunks(struct put *p, struct chan *c, ferr_t *err)
{
	struct frame_buf fb = {0};
	int rc = 0;

	while (rc == 0) {
		if (frame_recv(c, &fb, err) < 0) {
			rc = -1;
		} else if (fb.h.type == SNAP_CHUNK) {
			rc = put_chunk(p, &fb, err);
		} else if (fb.h.type == SNAP_END) {
			break;
		} else if (fb.h.type == WIRE_ERROR) {
			rc = session_peer_error(&fb, "sender", err);
		} else {
			rc = session_unexpected(&fb, "sender", "a chunk", err);
		}
	}
	frame_buf_free(&fb);
	if (rc == 0 && p->got != p->n_need)
		rc = ferr_set(err, FX_INTEGRITY, "%u of %u chunks arrived", p->got, p->n_need);
	return rc;
}

static int put_finish(struct put *p, const FerrySnap__SnapPut *req, const struct req_ctx *ctx,
		      struct chan *c, ferr_t *err)
{
	FerrySnap__SnapDone done = FERRY_SNAP__SNAP_DONE__INIT;
	struct snap_restore_result rr = {0};
	char criu[4096];

	if (repo_put_sealed_manifest(&p->r, req->id, req->manifest.data, req->manifest.len, err) <
	    0)
		return -1;
	repo_close(&p->r); /* snap_restore takes the store again */
	p->open = false;
	done.has_received = done.has_received_bytes = 1;
	done.received = p->got;
	done.received_bytes = p->got_bytes;
	if (req->has_restore && req->restore) {
		struct snap_restore_opts ro = {.state_dir = ctx->state_dir,
					       .store = p->r.dir,
					       .id = req->id,
					       .name = req->name && *req->name ? req->name : NULL};
		char key[4200];
		snprintf(key, sizeof(key), "%s/snapshot.key", ctx->state_dir);
		ro.key_file = key;
		if (criu_locate(NULL, criu, sizeof(criu), NULL, err) < 0)
			return -1;
		ro.criu_path = criu;
		if (snap_restore(&ro, &rr, err) < 0)
			return -1;
		done.has_pid = done.has_restore_ms = done.has_replaced = 1;
		done.pid = rr.pid;
		done.name = rr.name;
		done.restore_ms = rr.total_ms;
		done.replaced = rr.replaced;
	}
	return frame_send_pb(c, SNAP_DONE, &done.base) < 0 ? chan_take_error(c, err) : 0;
}

static void report(const struct req_ctx *ctx, const FerrySnap__SnapPut *req, const struct put *p,
		   int rc, const ferr_t *err)
{
	struct event ev;

	if (!ctx->events || !ctx->events->fn)
		return;
	ev_init(&ev, "snapshot-received");
	ev_str(&ev, "peer", ctx->peer_name);
	ev_str(&ev, "id", req ? req->id : "");
	ev_uint(&ev, "chunks", p->n_refs);
	ev_uint(&ev, "received", p->got);
	ev_uint(&ev, "received_bytes", p->got_bytes);
	ev_bool(&ev, "ok", rc == 0);
	ev_str(&ev, "error", rc == 0 ? "" : err->msg);
	ctx->events->fn(&ev, ctx->events->arg);
}

static int serve_put(struct chan *c, const struct frame_buf *req, const struct req_ctx *ctx,
		     void *state, ferr_t *err)
{
	FerrySnap__SnapPut *p = ferry_snap__snap_put__unpack(NULL, req->h.len, req->data);
	struct put st = {0};
	int rc = -1;

	(void)state;
	if (!p)
		ferr_set(err, FX_INTEGRITY, "unreadable snapshot offer");
	else if (put_begin(&st, p, ctx, c, err) == 0 && put_chunks(&st, c, err) == 0)
		rc = put_finish(&st, p, ctx, c, err);
	if (rc < 0)
		session_send_error(c, err);
	report(ctx, p, &st, rc, err);
	if (st.open)
		repo_close(&st.r);
	snapm_free(st.m);
	free(st.refs);
	free(st.needed);
	if (p)
		ferry_snap__snap_put__free_unpacked(p, NULL);
	return rc;
}

const struct req_handler snap_requests[] = {
    {SNAP_REQ_PUT, "snapshot-put", serve_put, true},
    {0, NULL, NULL, false},
};

/* ---- the sender ---- */

static struct chan *connect_peer(const struct snap_push_opts *o, struct tls_ctx **tls, ferr_t *err)
{
	struct session_info si;
	struct chan *raw, *c;

	if (!(*tls = tls_ctx_new(o->tls_dir, o->my_name, false, err)))
		return NULL;
	if (!(raw = chan_tcp_connect(o->host, o->port, 10000, err)))
		return NULL;
	if (!(c = chan_tls_client(raw, *tls, o->peer ? o->peer : o->host, o->timeout_ms, err)))
		return NULL;
	if (session_hello_client(c, o->my_name, &si, err) < 0) {
		chan_close(c);
		return NULL;
	}
	return c;
}

static int recv_type(struct chan *c, struct frame_buf *fb, uint8_t want, const char *what,
		     ferr_t *err)
{
	if (frame_recv(c, fb, err) < 0)
		return -1;
	if (fb->h.type == WIRE_ERROR)
		return session_peer_error(fb, "receiver", err);
	if (fb->h.type != want)
		return session_unexpected(fb, "receiver", what, err);
	return 0;
}

static int send_offer(struct repo *repo, struct chan *c, const struct snap_push_opts *o,
		      const char *id, ferr_t *err)
{
	FerrySnap__SnapPut put = FERRY_SNAP__SNAP_PUT__INIT;
	uint8_t proof[SEAL_ID_LEN], *mbuf;
	size_t mlen;
	int rc;

	if (repo_get_sealed_manifest(repo, id, &mbuf, &mlen, err) < 0)
		return -1;
	repo_key_proof(repo, proof);
	put.key_proof = (ProtobufCBinaryData){SEAL_ID_LEN, proof};
	put.id = (char *)id;
	put.manifest = (ProtobufCBinaryData){mlen, mbuf};
	put.has_restore = 1;
	put.restore = o->restore;
	put.name = (char *)o->as_name;
	rc = frame_send_pb(c, SNAP_REQ_PUT, &put.base);
	free(mbuf);
	return rc < 0 ? chan_take_error(c, err) : 0;
}

static int send_chunks(struct repo *repo, struct chan *c, const FerrySnap__SnapNeed *need,
		       const FerrySnap__ChunkRef **refs, size_t n_refs, struct snap_push_result *r,
		       ferr_t *err)
{
	for (size_t i = 0; i < need->n_index; i++) {
		uint8_t *sealed, *buf;
		size_t len;
		int rc;
		if (need->index[i] >= n_refs)
			return ferr_set(err, FX_INTEGRITY, "the receiver asked for chunk %u of %zu",
					need->index[i], n_refs);
		const uint8_t *id = refs[need->index[i]]->id.data;
		if (repo_get_sealed_chunk(repo, id, &sealed, &len, err) < 0)
			return -1;
		if (!(buf = malloc(len + SEAL_ID_LEN))) {
			free(sealed);
			return ferr_set(err, FX_FAIL, "out of memory");
		}
		memcpy(buf, id, SEAL_ID_LEN);
		memcpy(buf + SEAL_ID_LEN, sealed, len);
		rc = frame_send(c, SNAP_CHUNK, 0, 0, buf, len + SEAL_ID_LEN);
		free(buf);
		free(sealed);
		if (rc < 0)
			return chan_take_error(c, err);
		r->sent++;
		r->sent_bytes += len;
	}
	return frame_send(c, SNAP_END, 0, 0, NULL, 0) < 0 ? chan_take_error(c, err) : 0;
}

static int push_session(struct repo *repo, struct chan *c, const struct snap_push_opts *o,
			const snapm_t *m, struct snap_push_result *r, ferr_t *err)
{
	const FerrySnap__ChunkRef **refs = NULL;
	FerrySnap__SnapNeed *need = NULL;
	FerrySnap__SnapDone *done = NULL;
	struct frame_buf fb = {0};
	size_t n_refs;
	int rc = -1;

	if (chunk_list(m, &refs, &n_refs, err) < 0 || send_offer(repo, c, o, m->id, err) < 0 ||
	    recv_type(c, &fb, SNAP_NEED, "the chunks it needs", err) < 0)
		goto out;
	r->chunks = (uint32_t)n_refs;
	if (!(need = ferry_snap__snap_need__unpack(NULL, fb.h.len, fb.data))) {
		ferr_set(err, FX_INTEGRITY, "unreadable answer from the receiver");
		goto out;
	}
	if (send_chunks(repo, c, need, refs, n_refs, r, err) < 0 ||
	    recv_type(c, &fb, SNAP_DONE, "the outcome", err) < 0)
		goto out;
	if (!(done = ferry_snap__snap_done__unpack(NULL, fb.h.len, fb.data))) {
		ferr_set(err, FX_INTEGRITY, "unreadable outcome from the receiver");
		goto out;
	}
	r->pid = done->pid;
	snprintf(r->name, sizeof(r->name), "%s", done->name ? done->name : "");
	r->restore_ms = done->restore_ms;
	r->replaced = done->replaced;
	rc = 0;
out:
	if (need)
		ferry_snap__snap_need__free_unpacked(need, NULL);
	if (done)
		ferry_snap__snap_done__free_unpacked(done, NULL);
	frame_buf_free(&fb);
	free(refs);
	return rc;
}

int snap_push(const struct snap_push_opts *o, struct snap_push_result *r, ferr_t *err)
{
	struct tls_ctx *tls = NULL;
	struct chan *c = NULL;
	struct repo repo;
	snapm_t *m = NULL;
	uint64_t t0 = now_ns();
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (repo_open(&repo, o->store, o->key_file, err) < 0)
		return -1;
	if (repo_lock(&repo, false, err) == 0 && repo_resolve(&repo, o->id, r->id, err) == 0 &&
	    repo_read_manifest(&repo, r->id, &m, err) == 0 && (c = connect_peer(o, &tls, err)))
		rc = push_session(&repo, c, o, m, r, err);
	if (c)
		chan_close(c);
	tls_ctx_free(tls);
	snapm_free(m);
	repo_close(&repo);
	r->total_ms = ms_since(t0);
	return rc;
}
