/* CRIU's page-server protocol read by ferry (criu/psread.c) and a dump's
 * memory streamed into the store (snapshot/pagestream.c), without CRIU: a
 * thread plays CRIU's side of the socket in both header layouts (CRIU 4.1's
 * 24 bytes, 4.2's 32), with the answers CRIU waits for. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "criu/psread.h"
#include "lib/fsutil.h"
#include "snapshot/chunk.h"
#include "snapshot/pagestream.h"
#include "snapshot/repo.h"
#include "snapshot/repo_pack.h"
#include "unit.h"

struct sender {
	int sk;
	unsigned hdr;	 /* 24 or 32 */
	unsigned pages;	 /* of the big present run */
	bool truncate;	 /* stop within the pages */
	bool answers_ok; /* every answer came as CRIU expects */
};

static void psi(struct sender *s, uint32_t cmd, uint64_t nr, uint64_t va, uint64_t dst)
{
	uint8_t b[32] = {0};

	memcpy(b, &cmd, 4);
	if (s->hdr == 32) {
		memcpy(b + 8, &nr, 8);
		memcpy(b + 16, &va, 8);
		memcpy(b + 24, &dst, 8);
	} else {
		uint32_t n32 = (uint32_t)nr;
		memcpy(b + 4, &n32, 4);
		memcpy(b + 8, &va, 8);
		memcpy(b + 16, &dst, 8);
	}
	if (write(s->sk, b, s->hdr) != (ssize_t)s->hdr)
		s->answers_ok = false;
}

static uint8_t page_byte(uint64_t va, size_t i)
{
	return (uint8_t)(va / 4096 * 7 + i / 512);
}

static void data(struct sender *s, uint64_t va, uint64_t n)
{
	static uint8_t p[4096];

	for (uint64_t k = 0; k < n; k++, va += 4096) {
		for (size_t i = 0; i < 4096; i++)
			p[i] = page_byte(va, i);
		if (write(s->sk, p, sizeof(p)) != (ssize_t)sizeof(p))
			s->answers_ok = false;
	}
}

static void answer(struct sender *s, size_t n, int32_t want)
{
	int32_t v = -1;
	uint8_t c = 0xff;

	if (n == 1 ? read(s->sk, &c, 1) != 1 || c != (uint8_t)want
		   : read(s->sk, &v, 4) != 4 || v != want)
		s->answers_ok = false;
}

#define PID7  ((7ULL << 8) | 1)
#define SHM5  ((5ULL << 8) | 2)
#define ADD_F 6U

/* pid 7: 3 pages at 0x10000, a hole in the parent, `pages` at 0x21000
 * (lazy); shmem 5: one page at 0 (legacy ADD); then the close. */
static void *send_stream(void *arg)
{
	struct sender *s = arg;

	s->answers_ok = true;
	psi(s, 4, 0, 0, PID7);
	answer(s, 1, 0);
	psi(s, 5, 0, 0, PID7);
	answer(s, 4, 0);
	psi(s, ADD_F | (PSR_PE_PRESENT << 16), 3, 0x10000, PID7);
	data(s, 0x10000, 3);
	psi(s, ADD_F | (PSR_PE_PARENT << 16), 2, 0x18000, PID7);
	psi(s, ADD_F | ((PSR_PE_PRESENT | PSR_PE_LAZY) << 16), s->pages, 0x21000, PID7);
	data(s, 0x21000, s->truncate ? s->pages / 2 : s->pages);
	if (s->truncate) {
		shutdown(s->sk, SHUT_WR);
		return NULL;
	}
	psi(s, 4, 0, 0, SHM5);
	answer(s, 1, 0);
	psi(s, 1, 1, 0, SHM5);
	data(s, 0, 1);
	psi(s, 0x1023, 0, 0, 0);
	answer(s, 4, 0);
	return NULL;
}

/* a sink that records what it is told, with little room at a time */
struct rec {
	int opens, entries;
	enum psr_type types[4];
	uint64_t ids[4];
	struct psr_entry e[8];
	uint8_t buf[3 * 4096];
	uint64_t bytes;
	bool content_ok;
};

static int r_open(void *arg, enum psr_type t, uint64_t id, ferr_t *err)
{
	struct rec *r = arg;
	(void)err;
	r->types[r->opens] = t;
	r->ids[r->opens++] = id;
	return 0;
}

static int r_entry(void *arg, uint64_t va, uint64_t nr, uint32_t flags, ferr_t *err)
{
	struct rec *r = arg;
	(void)err;
	r->e[r->entries++] = (struct psr_entry){va, nr, flags};
	return 0;
}

static int r_room(void *arg, uint64_t va, uint64_t want, uint8_t **buf, size_t *len, ferr_t *err)
{
	struct rec *r = arg;
	(void)va, (void)want, (void)err;
	*buf = r->buf;
	*len = sizeof(r->buf);
	return 0;
}

static int r_pages(void *arg, uint64_t va, size_t len, ferr_t *err)
{
	struct rec *r = arg;
	(void)err;
	for (size_t i = 0; i < len; i++)
		if (r->buf[i] != page_byte(va + i / 4096 * 4096, i % 4096))
			r->content_ok = false;
	r->bytes += len;
	return 0;
}

static void serve(unsigned hdr, bool truncate, int *rc, struct rec *r, struct psr_stats *st,
		  struct sender *s)
{
	int sv[2];
	pthread_t t;
	struct psr_sink sink = {r_open, r_entry, r_room, r_pages, r};
	ferr_t e = {0};

	memset(r, 0, sizeof(*r));
	r->content_ok = true;
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	*s = (struct sender){.sk = sv[1], .hdr = hdr, .pages = 10, .truncate = truncate};
	pthread_create(&t, NULL, send_stream, s);
	*rc = psr_serve(sv[0], &sink, st, &e);
	if (*rc < 0)
		printf("  (expected?) %s\n", e.msg);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
}

static void test_protocol(void)
{
	for (unsigned hdr = 24; hdr <= 32; hdr += 8) {
		struct rec r;
		struct psr_stats st;
		struct sender s;
		int rc;
		serve(hdr, false, &rc, &r, &st, &s);
		CHECK(rc == 0);
		CHECK(s.answers_ok);
		CHECK(st.hdr_len == hdr);
		CHECK(r.opens == 2 && r.types[0] == PSR_PID && r.ids[0] == 7);
		CHECK(r.types[1] == PSR_SHMEM && r.ids[1] == 5);
		CHECK(r.entries == 4);
		CHECK(r.e[0].vaddr == 0x10000 && r.e[0].nr_pages == 3 &&
		      r.e[0].flags == PSR_PE_PRESENT);
		CHECK(r.e[1].flags == PSR_PE_PARENT && r.e[1].nr_pages == 2);
		CHECK(r.e[2].flags == (PSR_PE_PRESENT | PSR_PE_LAZY) && r.e[2].nr_pages == 10);
		CHECK(r.e[3].vaddr == 0 && r.e[3].flags == PSR_PE_PRESENT);
		CHECK(r.bytes == 14 * 4096 && r.content_ok);
		CHECK(st.pages == 14 && st.images == 2 && st.entries == 4);
	}
}

static void test_truncated(void)
{
	struct rec r;
	struct psr_stats st;
	struct sender s;
	int rc;

	serve(32, true, &rc, &r, &st, &s);
	CHECK(rc < 0);
	serve(24, true, &rc, &r, &st, &s);
	CHECK(rc < 0);
}

static char base[256];

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d))) {
		char sub[700];
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		struct stat sb;
		n += stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode) ? count_files(sub) : 1;
	}
	if (d)
		closedir(d);
	return n;
}

static void test_pagemap(void)
{
	struct psr_entry e[3] = {{0x10000, 3, PSR_PE_PRESENT},
				 {0x18000, 2, PSR_PE_PARENT},
				 {0x21000, 10, PSR_PE_PRESENT | PSR_PE_LAZY}};
	struct page_run *runs;
	size_t n;
	uint32_t id = 0;
	char p[400];

	snprintf(p, sizeof(p), "%s/pagemap-7.img", base);
	CHECK(psr_pagemap_write(p, 65537, e, 3, NULL) == 0);
	CHECK(pagemap_read(p, &runs, &n, &id, NULL) == 0);
	CHECK(id == 65537 && n == 2);
	CHECK(n == 2 && runs[0].vaddr == 0x10000 && runs[0].nr_pages == 3);
	CHECK(n == 2 && runs[1].vaddr == 0x21000 && runs[1].nr_pages == 10);
	free(runs);
}

/* the pipeline into a store: 8 MiB of pool for a 12 MiB run, so the
 * reader waits for the workers; then the same stream with that snapshot as
 * the parent adds nothing */
static void stream_once(struct repo *r, const snapm_t *parent, snapm_t *m, const char *stage,
			struct repo_stats *st, struct pstream_stats *ps, bool *ok)
{
	struct pstream_opts o = {
	    .repo = r, .parent = parent, .stage = stage, .mem_limit = 8 << 20, .prefault = 4 << 20};
	struct pstream *p;
	struct sender s = {.hdr = 32, .pages = 3000};
	pthread_t t;
	ferr_t e = {0};

	fs_mkdir_p(stage, 0700, NULL);
	*ok = pstream_start(&o, &p, &s.sk, &e) == 0;
	if (!*ok)
		return;
	pthread_create(&t, NULL, send_stream, &s);
	pthread_join(t, NULL);
	*ok = s.answers_ok && pstream_end(p, false, m, st, ps, &e) == 0;
	if (!*ok)
		printf("  %s\n", e.msg);
}

static void test_pipeline(void)
{
	struct repo_init_opts io = {0};
	struct repo r;
	char store[300], key[300], stage[300], out[300], p[400];
	snapm_t *m1 = snapm_new("t", "container"), *m2 = snapm_new("t", "container");
	struct repo_stats st1 = {0}, st2 = {0};
	struct pstream_stats ps1, ps2;
	bool ok;

	snprintf(store, sizeof(store), "%s/store", base);
	snprintf(key, sizeof(key), "%s/key", base);
	io.dir = store;
	io.key_file = key;
	io.new_key = true;
	io.page_chunk = 16384;
	CHECK(repo_init(&io, NULL) == 0);
	CHECK(repo_open(&r, store, key, NULL) == 0);
	CHECK(repo_lock(&r, false, NULL) == 0); /* reads the packs' indexes */
	snprintf(stage, sizeof(stage), "%s/stage1", base);
	stream_once(&r, NULL, m1, stage, &st1, &ps1, &ok);
	CHECK(ok);
	CHECK(m1->n_files == 2 && ps1.pages == 3004 && ps1.images == 2);
	/* the cuts of the staged path for the same runs */
	struct page_run runs[2] = {{0x10000, 3}, {0x21000, 3000}};
	uint32_t *cuts;
	size_t nc;
	CHECK(page_cuts(runs, 2, 16384, &cuts, &nc, NULL) == 0);
	CHECK(m1->n_files && m1->files[0]->n_chunks == nc);
	for (size_t i = 0; m1->n_files && i < nc && i < m1->files[0]->n_chunks; i++)
		CHECK(m1->files[0]->chunks[i]->len == cuts[i]);
	free(cuts);
	CHECK(m1->n_files && !strcmp(m1->files[0]->path, "pages-65537.img") &&
	      m1->files[0]->size == 3003 * 4096ULL && m1->files[0]->pages);
	snprintf(p, sizeof(p), "%s/pagemap-7.img", stage);
	CHECK(access(p, F_OK) == 0);
	snprintf(p, sizeof(p), "%s/pagemap-shmem-5.img", stage);
	CHECK(access(p, F_OK) == 0);
	CHECK(st1.added_ch > 0 && ps1.known == 0 && st1.chunks == nc + 1);
	/* the new chunks went into packs, no loose chunk file */
	snprintf(p, sizeof(p), "%s/packs", store);
	CHECK(count_files(p) >= 1);
	snprintf(p, sizeof(p), "%s/chunks", store);
	CHECK(count_files(p) == 0);
	/* list, show and rm lock without reading the packs' indexes; a
	 * lock for chunks reads them */
	struct repo r2;
	const uint8_t *c0 = m1->files[0]->chunks[0]->id.data;
	CHECK(repo_open(&r2, store, key, NULL) == 0);
	CHECK(repo_lock_manifests(&r2, false, NULL) == 0);
	CHECK(!r2.packs && !repo_pack_find(&r2, c0));
	CHECK(repo_lock(&r2, false, NULL) == 0 && repo_pack_find(&r2, c0));
	repo_close(&r2);
	repo_packs_free(&r); /* as a later command sees the store */
	CHECK(repo_packs_load(&r, NULL) == 0);
	/* extraction rebuilds the pages image byte for byte */
	snprintf(out, sizeof(out), "%s/out", base);
	fs_mkdir_p(out, 0700, NULL);
	CHECK(repo_extract(&r, m1, FERRY_SNAP__FILE_PART__PART_IMAGES, out, NULL) == 0);
	snprintf(p, sizeof(p), "%s/pages-65537.img", out);
	char *buf = NULL;
	size_t len = 0;
	CHECK(fs_read_all(p, &buf, &len, 64 << 20, NULL) == 0 && len == 3003 * 4096ULL);
	bool same = buf != NULL;
	for (size_t i = 0; same && i < len; i++) {
		uint64_t va = i < 3 * 4096 ? 0x10000 + i : 0x21000 + (i - 3 * 4096);
		same = (uint8_t)buf[i] == page_byte(va / 4096 * 4096, va % 4096);
	}
	CHECK(same);
	free(buf);
	/* again, with the first as the parent: every chunk is known */
	snprintf(stage, sizeof(stage), "%s/stage2", base);
	stream_once(&r, m1, m2, stage, &st2, &ps2, &ok);
	CHECK(ok);
	CHECK(st2.added_ch == 0 && st2.added == 0 && ps2.known == st2.chunks);
	CHECK(st2.chunks == st1.chunks && st2.size == st1.size);
	/* verify finds every chunk; gc keeps the named packs whole, and with
	 * no manifest left removes them */
	struct idset *done = idset_new();
	CHECK(repo_verify(&r, m1, true, done, NULL, NULL, NULL) == 0);
	idset_free(done);
	struct repo_gc_stats gs;
	CHECK(repo_gc(&r, &gs, NULL) == 0);
	snprintf(p, sizeof(p), "%s/packs", store);
	CHECK(count_files(p) == 0 && gs.removed >= st1.added_ch);
	snapm_free_built(m1);
	snapm_free_built(m2);
	repo_close(&r);
}

int main(void)
{
	snprintf(base, sizeof(base), "/tmp/ferry-unit-stream.%d", getpid());
	fs_mkdir_p(base, 0700, NULL);
	RUN(test_protocol);
	RUN(test_truncated);
	RUN(test_pagemap);
	RUN(test_pipeline);
	fs_rm_rf(base, NULL);
	UNIT_DONE();
}
