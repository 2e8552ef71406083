/* A dump's memory streamed into the store (pagestream.h). */
#define LOG_PREFIX "pstream"
#include "snapshot/pagestream.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "criu/psread.h"
#include "lib/log.h"
#include "lib/util.h"
#include "snapshot/repo_pack.h"

#define BLK_MIN	    (4U << 20)
#define DEF_LIMIT   (1ULL << 30)
#define MAX_WORKERS 8

struct cut {
	uint32_t len;
	uint8_t id[SEAL_ID_LEN];
};

/* Pages of one image, in order, in one slot of the pool. */
struct blk {
	uint8_t *data; /* NULL once stored (the slot went back) */
	size_t used;
	struct cut *cuts;
	size_t n, cap;
	size_t img;
	struct blk *next; /* work queue */
};

struct img {
	enum psr_type type;
	uint64_t id;
	uint32_t pages_id;
	struct psr_entry *e;
	size_t n, cap;
	uint64_t bytes;
};

struct pstream {
	struct pstream_opts o;
	struct idset *known;
	struct idset *written; /* new chunks of this stream, written or being */
	uint32_t chunk;
	size_t blk_size, n_slots, n_free, held_max;
	uint8_t *pool;
	size_t *free_slots;
	int sk[2]; /* [0] ours, [1] CRIU's */
	pthread_t reader, workers[MAX_WORKERS];
	int n_workers;
	bool reader_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool go, reader_done, failed, cut;
	ferr_t err;		   /* the first failure */
	struct blk *qhead, *qtail; /* blocks to store */
	struct blk **blks;	   /* every block, in order (reader's) */
	size_t n_blks, cap_blks;
	struct blk *cur;
	struct img *imgs;
	size_t n_imgs, cap_imgs;
	uint32_t next_pages_id;
	struct psr_stats rst;
	struct repo_stats st;
	uint64_t known_refs;
	double prefault_ms;
};

static void fail_locked(struct pstream *p, const ferr_t *e)
{
	if (!p->failed) {
		p->failed = true;
		p->err = *e;
	}
	p->go = true;
	pthread_cond_broadcast(&p->cv);
}

/* ---- the reader (CRIU's page stream into blocks) ---- */

static void queue_cur(struct pstream *p)
{
	struct blk *b = p->cur;

	p->cur = NULL;
	if (!b)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->qtail)
		p->qtail->next = b;
	else
		p->qhead = b;
	p->qtail = b;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* A free slot (waiting, and letting the workers go, when there is none). */
static int new_blk(struct pstream *p, ferr_t *err)
{
	struct blk *b = calloc(1, sizeof(*b));
	size_t slot;

	if (!b || (p->n_blks == p->cap_blks &&
		   !(p->blks = reallocarray(p->blks, p->cap_blks = p->cap_blks * 2 + 64,
					    sizeof(*p->blks))))) {
		free(b);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	pthread_mutex_lock(&p->mu);
	while (!p->n_free && !p->failed) {
		p->go = true; /* the pool is full: store while CRIU waits */
		pthread_cond_broadcast(&p->cv);
		pthread_cond_wait(&p->cv, &p->mu);
	}
	if (p->failed) {
		pthread_mutex_unlock(&p->mu);
		free(b);
		return ferr_set(err, FX_FAIL, "storing the pages failed");
	}
	slot = p->free_slots[--p->n_free];
	if (p->n_slots - p->n_free > p->held_max)
		p->held_max = p->n_slots - p->n_free;
	pthread_mutex_unlock(&p->mu);
	b->data = p->pool + slot * p->blk_size;
	b->img = p->n_imgs - 1;
	p->blks[p->n_blks++] = b;
	p->cur = b;
	return 0;
}

static int on_open(void *arg, enum psr_type type, uint64_t id, ferr_t *err)
{
	struct pstream *p = arg;
	struct img *im;

	queue_cur(p); /* a block holds one image's pages */
	if (p->n_imgs == p->cap_imgs &&
	    !(p->imgs = reallocarray(p->imgs, p->cap_imgs = p->cap_imgs * 2 + 8, sizeof(*p->imgs))))
		return ferr_set(err, FX_FAIL, "out of memory");
	im = &p->imgs[p->n_imgs++];
	memset(im, 0, sizeof(*im));
	im->type = type;
	im->id = id;
	im->pages_id = p->next_pages_id++;
	return 0;
}

static int on_entry(void *arg, uint64_t vaddr, uint64_t nr_pages, uint32_t flags, ferr_t *err)
{
	struct pstream *p = arg;
	struct img *im = &p->imgs[p->n_imgs - 1];

	if (im->n == im->cap &&
	    !(im->e = reallocarray(im->e, im->cap = im->cap * 2 + 64, sizeof(*im->e))))
		return ferr_set(err, FX_FAIL, "out of memory");
	im->e[im->n++] = (struct psr_entry){vaddr, nr_pages, flags};
	return 0;
}

/* Room up to the run's end or to a chunk boundary that fits the block. */
static int on_room(void *arg, uint64_t va, uint64_t want, uint8_t **buf, size_t *len, ferr_t *err)
{
	struct pstream *p = arg;

	for (;;) {
		if (!p->cur && new_blk(p, err) < 0)
			return -1;
		size_t space = p->blk_size - p->cur->used;
		uint64_t n = want <= space ? want : (va + space) / p->chunk * p->chunk - va;
		if (want > space && (va + space) / p->chunk * p->chunk <= va)
			n = 0;
		if (n) {
			*buf = p->cur->data + p->cur->used;
			*len = (size_t)n;
			return 0;
		}
		queue_cur(p);
	}
}

/* The pages arrived: cut them at multiples of the page chunk. */
static int on_pages(void *arg, uint64_t va, size_t len, ferr_t *err)
{
	struct pstream *p = arg;
	struct blk *b = p->cur;
	uint64_t end = va + len;

	while (va < end) {
		uint64_t next = (va / p->chunk + 1) * p->chunk;
		if (next > end)
			next = end;
		if (b->n == b->cap &&
		    !(b->cuts = reallocarray(b->cuts, b->cap = b->cap * 2 + 256, sizeof(*b->cuts))))
			return ferr_set(err, FX_FAIL, "out of memory");
		b->cuts[b->n++].len = (uint32_t)(next - va);
		va = next;
	}
	b->used += len;
	p->imgs[p->n_imgs - 1].bytes += len;
	return 0;
}

static void *reader_main(void *arg)
{
	struct pstream *p = arg;
	struct psr_sink s = {on_open, on_entry, on_room, on_pages, p};
	ferr_t e = {0};

	if (psr_serve(p->sk[0], &s, &p->rst, &e) < 0) {
		pthread_mutex_lock(&p->mu);
		if (!p->cut) /* not when the caller cut the stream of a failed dump */
			fail_locked(p, &e);
		pthread_mutex_unlock(&p->mu);
		shutdown(p->sk[0], SHUT_RDWR); /* CRIU's dump fails too */
	}
	queue_cur(p);
	pthread_mutex_lock(&p->mu);
	p->reader_done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ---- the workers (name, dedup, seal, write) ---- */

/* A new chunk of this stream: 1 the first time (the caller writes it). */
static int first_time(struct pstream *p, const uint8_t *id, ferr_t *err)
{
	int r;

	pthread_mutex_lock(&p->mu);
	r = idset_has(p->written, id) ? 0 : idset_add(p->written, id) < 0 ? -1 : 1;
	pthread_mutex_unlock(&p->mu);
	return r < 0 ? ferr_set(err, FX_FAIL, "out of memory") : r;
}

static int store_blk(struct pstream *p, struct blk *b, struct seal_ctx *sc, struct pack_writer *w,
		     struct repo_stats *st, uint64_t *known, ferr_t *err)
{
	size_t off = 0;

	for (size_t i = 0; i < b->n; i++) {
		struct cut *c = &b->cuts[i];
		const uint8_t *data = b->data + off;
		int r;
		off += c->len;
		if (seal_ctx_id(sc, data, c->len, c->id, err) < 0)
			return -1;
		*known += p->known && idset_has(p->known, c->id);
		st->chunks++;
		st->size += c->len;
		/* in the store already (a chunk the parent names is looked for all
		 * the same: one gone missing is written again) */
		if (repo_chunk_exists(p->o.repo, c->id))
			continue;
		if ((r = first_time(p, c->id, err)) < 0)
			return -1;
		if (r && repo_put_chunk_packed(p->o.repo, sc, data, c->len, c->id, w, st, err) < 0)
			return -1;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct pstream *p = arg;
	struct repo_stats st = {0};
	struct pack_writer w = PACK_WRITER_INIT;
	uint64_t known = 0;
	ferr_t e = {0};
	/* this worker's keyed HMAC and AES-GCM: no key setup per chunk */
	struct seal_ctx *sc = seal_ctx_new(&p->o.repo->keys, &e);

	pthread_mutex_lock(&p->mu);
	if (!sc)
		fail_locked(p, &e);
	for (;;) {
		while (!p->failed && !(p->go && p->qhead) && !(p->reader_done && !p->qhead))
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->failed || !p->qhead)
			break;
		struct blk *b = p->qhead;
		if (!(p->qhead = b->next))
			p->qtail = NULL;
		pthread_mutex_unlock(&p->mu);
		int rc = store_blk(p, b, sc, &w, &st, &known, &e);
		pthread_mutex_lock(&p->mu);
		p->free_slots[p->n_free++] = (size_t)(b->data - p->pool) / p->blk_size;
		b->data = NULL;
		pthread_cond_broadcast(&p->cv);
		if (rc < 0)
			fail_locked(p, &e);
	}
	pthread_mutex_unlock(&p->mu);
	/* the last pack, complete before the manifest that names its chunks */
	int rc = p->failed ? 0 : pack_finish(p->o.repo, &w, &e);
	pack_abort(&w);
	seal_ctx_free(sc);
	pthread_mutex_lock(&p->mu);
	if (rc < 0)
		fail_locked(p, &e);
	p->st.size += st.size;
	p->st.added += st.added;
	p->st.chunks += st.chunks;
	p->st.added_ch += st.added_ch;
	p->known_refs += known;
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ---- start and end ---- */

uint64_t pstream_parent_pages(const snapm_t *parent)
{
	uint64_t n = 0;

	for (size_t i = 0; parent && i < parent->n_files; i++)
		if (parent->files[i]->pages &&
		    parent->files[i]->part == FERRY_SNAP__FILE_PART__PART_IMAGES)
			n += parent->files[i]->size;
	return n;
}

static int known_ids(struct pstream *p, const snapm_t *parent, ferr_t *err)
{
	if (!parent)
		return 0;
	if (!(p->known = idset_new()))
		return ferr_set(err, FX_FAIL, "out of memory");
	for (size_t i = 0; i < parent->n_files; i++)
		for (size_t c = 0; c < parent->files[i]->n_chunks; c++)
			if (parent->files[i]->chunks[c]->id.len == SEAL_ID_LEN &&
			    idset_add(p->known, parent->files[i]->chunks[c]->id.data) < 0)
				return ferr_set(err, FX_FAIL, "out of memory");
	return 0;
}

/* One mapping for every slot; the first prefault bytes faulted in now. */
static int make_pool(struct pstream *p, ferr_t *err)
{
	uint64_t limit = p->o.mem_limit ? p->o.mem_limit : DEF_LIMIT;
	size_t bytes, pre;

	p->blk_size = p->chunk > BLK_MIN ? p->chunk : BLK_MIN;
	p->n_slots = (size_t)((limit + p->blk_size - 1) / p->blk_size);
	if (p->n_slots < 2)
		p->n_slots = 2;
	bytes = p->n_slots * p->blk_size;
	p->pool = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p->pool == MAP_FAILED) {
		p->pool = NULL;
		return ferr_sys(err, FX_FAIL, "%zu MiB for the page stream", bytes >> 20);
	}
	if (!(p->free_slots = malloc(p->n_slots * sizeof(size_t))))
		return ferr_set(err, FX_FAIL, "out of memory");
	/* slots are taken from the end of the stack: the first ones first */
	for (size_t i = 0; i < p->n_slots; i++)
		p->free_slots[i] = p->n_slots - 1 - i;
	p->n_free = p->n_slots;
	pre = p->o.prefault < bytes ? (size_t)p->o.prefault : bytes;
	pre = (pre + p->blk_size - 1) / p->blk_size * p->blk_size;
#ifdef MADV_POPULATE_WRITE
	if (pre && madvise(p->pool, pre, MADV_POPULATE_WRITE) == 0)
		return 0;
#endif
	for (size_t off = 0; off < pre; off += 4096)
		p->pool[off] = 0;
	return 0;
}

static void pstream_free(struct pstream *p)
{
	for (size_t i = 0; i < p->n_blks; i++) {
		free(p->blks[i]->cuts);
		free(p->blks[i]);
	}
	free(p->blks);
	for (size_t i = 0; i < p->n_imgs; i++)
		free(p->imgs[i].e);
	free(p->imgs);
	if (p->pool)
		munmap(p->pool, p->n_slots * p->blk_size);
	free(p->free_slots);
	idset_free(p->known);
	idset_free(p->written);
	if (p->sk[0] >= 0)
		close(p->sk[0]);
	if (p->sk[1] >= 0)
		close(p->sk[1]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

static int start_threads(struct pstream *p, ferr_t *err)
{
	int want = p->o.workers > 0 ? p->o.workers : 2;

	if (want > MAX_WORKERS)
		want = MAX_WORKERS;
	if (pthread_create(&p->reader, NULL, reader_main, p) != 0)
		return ferr_set(err, FX_FAIL, "cannot start the page stream's reader");
	p->reader_started = true;
	for (; p->n_workers < want; p->n_workers++)
		if (pthread_create(&p->workers[p->n_workers], NULL, worker_main, p) != 0)
			return ferr_set(err, FX_FAIL, "cannot start the page stream's workers");
	return 0;
}

static void join_all(struct pstream *p, bool cut)
{
	if (cut || !p->reader_started) {
		pthread_mutex_lock(&p->mu);
		p->cut = true;
		pthread_mutex_unlock(&p->mu);
		shutdown(p->sk[0], SHUT_RDWR);
	}
	if (p->sk[1] >= 0) { /* CRIU is done with it: its end closes */
		close(p->sk[1]);
		p->sk[1] = -1;
	}
	if (p->reader_started)
		pthread_join(p->reader, NULL);
	pthread_mutex_lock(&p->mu);
	p->reader_done = p->go = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->n_workers; i++)
		pthread_join(p->workers[i], NULL);
}

int pstream_start(const struct pstream_opts *o, struct pstream **out, int *criu_fd, ferr_t *err)
{
	struct pstream *p = calloc(1, sizeof(*p));
	uint64_t t = now_ns();

	*out = NULL;
	if (!p)
		return ferr_set(err, FX_FAIL, "out of memory");
	p->o = *o;
	p->sk[0] = p->sk[1] = -1;
	p->chunk = o->repo->page_chunk ? o->repo->page_chunk : PSR_PAGE;
	p->next_pages_id = 0x10001; /* as CRIU's page server numbers them */
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (!(p->written = idset_new())) {
		pstream_free(p);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	if (known_ids(p, o->parent, err) < 0 || make_pool(p, err) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->sk) < 0) {
		if (!err->code)
			ferr_sys(err, FX_FAIL, "socketpair for the page stream");
		pstream_free(p);
		return -1;
	}
	if (start_threads(p, err) < 0) {
		join_all(p, true);
		pstream_free(p);
		return -1;
	}
	p->prefault_ms = ms_since(t);
	pr_info("page stream: %zu MiB of blocks, %llu MiB faulted in (%.0f ms)",
		(p->n_slots * p->blk_size) >> 20, (unsigned long long)(o->prefault >> 20),
		p->prefault_ms);
	*out = p;
	*criu_fd = p->sk[1];
	return 0;
}

/* pages-N.img of image i: its chunks, from its blocks in order. */
static int add_pages_file(struct pstream *p, size_t i, snapm_t *m, size_t *bi, ferr_t *err)
{
	const struct img *im = &p->imgs[i];
	FerrySnap__File *f = calloc(1, sizeof(*f));
	void *nv = realloc(m->files, (m->n_files + 1) * sizeof(*m->files));
	char name[64];

	if (nv)
		m->files = nv;
	if (!f || !nv)
		return free(f), ferr_set(err, FX_FAIL, "out of memory");
	ferry_snap__file__init(f);
	m->files[m->n_files++] = f;
	snprintf(name, sizeof(name), "pages-%u.img", im->pages_id);
	if (!(f->path = strdup(name)))
		return ferr_set(err, FX_FAIL, "out of memory");
	f->size = im->bytes;
	f->has_mode = f->has_mtime = f->has_uid = f->has_gid = f->has_part = f->has_pages = 1;
	f->mode = 0600;
	f->mtime = (int64_t)wall_time();
	f->uid = geteuid();
	f->gid = getegid();
	f->part = FERRY_SNAP__FILE_PART__PART_IMAGES;
	f->pages = 1;
	for (; *bi < p->n_blks && p->blks[*bi]->img == i; (*bi)++) {
		const struct blk *b = p->blks[*bi];
		nv = realloc(f->chunks, (f->n_chunks + b->n) * sizeof(*f->chunks));
		if (!nv)
			return ferr_set(err, FX_FAIL, "out of memory");
		f->chunks = nv;
		for (size_t c = 0; c < b->n; c++) {
			FerrySnap__ChunkRef *r = calloc(1, sizeof(*r));
			if (r)
				ferry_snap__chunk_ref__init(r);
			if (!r || !(r->id.data = malloc(SEAL_ID_LEN)))
				return free(r), ferr_set(err, FX_FAIL, "out of memory");
			memcpy(r->id.data, b->cuts[c].id, SEAL_ID_LEN);
			r->id.len = SEAL_ID_LEN;
			r->len = b->cuts[c].len;
			f->chunks[f->n_chunks++] = r;
		}
	}
	return 0;
}

static int write_images(struct pstream *p, snapm_t *m, ferr_t *err)
{
	size_t bi = 0;
	char path[4200];

	for (size_t i = 0; i < p->n_imgs; i++) {
		const struct img *im = &p->imgs[i];
		snprintf(path, sizeof(path), "%s/pagemap-%s%llu.img", p->o.stage,
			 im->type == PSR_SHMEM ? "shmem-" : "", (unsigned long long)im->id);
		if (psr_pagemap_write(path, im->pages_id, im->e, im->n, err) < 0 ||
		    add_pages_file(p, i, m, &bi, err) < 0)
			return -1;
	}
	return 0;
}

int pstream_end(struct pstream *p, bool dump_failed, snapm_t *m, struct repo_stats *st,
		struct pstream_stats *ps, ferr_t *err)
{
	uint64_t t = now_ns();
	int rc = 0;

	join_all(p, dump_failed);
	memset(ps, 0, sizeof(*ps));
	ps->drain_ms = ms_since(t);
	ps->pages = p->rst.pages;
	ps->images = p->rst.images;
	ps->entries = p->rst.entries;
	ps->hdr_len = p->rst.hdr_len;
	ps->known = p->known_refs;
	ps->held_mib = (double)(p->held_max * p->blk_size) / (1 << 20);
	ps->prefault_ms = p->prefault_ms;
	if (p->failed) { /* the cause, also when it made CRIU fail */
		*err = p->err;
		rc = ferr_wrap(err, "the dump's memory");
	} else if (dump_failed) {
		rc = -1; /* the dump's own error is the caller's */
	} else if (write_images(p, m, err) < 0) {
		rc = -1;
	} else {
		st->size += p->st.size;
		st->added += p->st.added;
		st->chunks += p->st.chunks;
		st->added_ch += p->st.added_ch;
	}
	pstream_free(p);
	return rc;
}
