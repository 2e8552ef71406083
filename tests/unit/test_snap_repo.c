/* The snapshot store on disk, without CRIU: init/open (wrong key), storing a
 * directory (page-aligned cuts of a pages image from its pagemap, CDC for
 * the rest, dedup on a second pass), manifests, extraction, verification of
 * a flipped byte and a missing chunk, rm + gc. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "proto/snapshot.pb-c.h"
#include "snapshot/repo.h"
#include "unit.h"

static char base[256], store[300], key[300], src[300];

static void put_file(const char *name, const void *data, size_t len)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", src, name);
	f = fopen(p, "wb");
	fwrite(data, 1, len, f);
	fclose(f);
}

static void put_entry(FILE *f, const void *m, size_t (*size)(const void *),
		      size_t (*pack)(const void *, uint8_t *))
{
	uint8_t buf[256];
	uint32_t n = (uint32_t)size(m);

	pack(m, buf);
	fwrite(&n, 4, 1, f);
	fwrite(buf, 1, n, f);
}

static size_t h_size(const void *m)
{
	return ferry_snap__pagemap_head__get_packed_size(m);
}
static size_t h_pack(const void *m, uint8_t *b)
{
	return ferry_snap__pagemap_head__pack(m, b);
}
static size_t e_size(const void *m)
{
	return ferry_snap__pagemap_entry__get_packed_size(m);
}
static size_t e_pack(const void *m, uint8_t *b)
{
	return ferry_snap__pagemap_entry__pack(m, b);
}

/* pagemap-1.img: two runs, CRIU 4's layout (length in field 5) */
static void make_pagemap(void)
{
	FerrySnap__PagemapHead h = FERRY_SNAP__PAGEMAP_HEAD__INIT;
	FerrySnap__PagemapEntry e = FERRY_SNAP__PAGEMAP_ENTRY__INIT;
	uint32_t magic[2] = {0x54564319, 0x56084025};
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/pagemap-1.img", src);
	f = fopen(p, "wb");
	fwrite(magic, 4, 2, f);
	h.has_pages_id = 1;
	h.pages_id = 1;
	put_entry(f, &h, h_size, h_pack);
	e.has_vaddr = e.has_nr_pages = e.has_flags = e.has_pages = 1;
	e.flags = 4;
	e.vaddr = 0x10000;
	e.pages = 3;
	put_entry(f, &e, e_size, e_pack);
	e.vaddr = 0x21000;
	e.pages = 10;
	put_entry(f, &e, e_size, e_pack);
	fclose(f);
}

static void setup(void)
{
	static uint8_t big[300000], pages[13 * 4096];
	struct repo_init_opts o = {0};

	snprintf(base, sizeof(base), "/tmp/ferry-unit-repo.%d", getpid());
	snprintf(store, sizeof(store), "%s/store", base);
	snprintf(key, sizeof(key), "%s/key", base);
	snprintf(src, sizeof(src), "%s/src", base);
	fs_mkdir_p(src, 0700, NULL);
	fs_mkdir_p(store, 0700, NULL);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)((i * 2654435761u) >> 13);
	for (size_t i = 0; i < sizeof(pages); i++)
		pages[i] = (uint8_t)(i / 4096 + 1);
	put_file("big.img", big, sizeof(big));
	put_file("small.img", "hello", 5);
	put_file("pages-1.img", pages, sizeof(pages));
	make_pagemap();
	o.dir = store;
	o.key_file = key;
	o.new_key = true;
	o.page_chunk = 16384; /* the cuts below */
	CHECK(repo_init(&o, NULL) == 0);
}

static int count_chunks(void)
{
	char p[600];
	int n = 0;
	DIR *d, *s;
	struct dirent *de, *e2;

	snprintf(p, sizeof(p), "%s/chunks", store);
	d = opendir(p);
	while (d && (de = readdir(d))) {
		char sub[900];
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", p, de->d_name);
		s = opendir(sub);
		while (s && (e2 = readdir(s)))
			n += e2->d_name[0] != '.';
		if (s)
			closedir(s);
	}
	if (d)
		closedir(d);
	return n;
}

static void bad(const snapm_t *m, const char *path, const char *why, void *arg)
{
	(void)m;
	(void)why;
	snprintf(arg, 64, "%s", path);
}

static void test_roundtrip(void)
{
	struct repo r;
	struct repo_stats st = {0}, st2 = {0};
	snapm_t *m = snapm_new("t1", "container"), *m2 = snapm_new("t1", "container"), *rd;
	char out[600], id[REPO_ID_LEN + 1], who[64] = "";
	ferr_t err = {0};

	CHECK(repo_open(&r, store, key, &err) == 0);
	CHECK(repo_add_dir(&r, m, src, FERRY_SNAP__FILE_PART__PART_IMAGES, &st, &err) == 0);
	CHECK(st.size > 300000 + 5 + 13 * 4096); /* and the pagemap */
	for (size_t i = 0; i < m->n_files; i++)
		if (!strcmp(m->files[i]->path, "pages-1.img")) {
			/* cuts: 3 pages | 3 | 4 | 3 (16 KiB boundaries, run ends) */
			CHECK(m->files[i]->pages && m->files[i]->n_chunks == 4);
			CHECK(m->files[i]->chunks[0]->len == 3 * 4096);
			CHECK(m->files[i]->chunks[2]->len == 4 * 4096);
		}
	CHECK(st.added > 0 && st.added_ch > 0);
	CHECK(repo_add_dir(&r, m2, src, FERRY_SNAP__FILE_PART__PART_IMAGES, &st2, &err) == 0);
	CHECK(st2.added == 0 && st2.added_ch == 0 && st2.chunks == st.chunks); /* dedup */
	m->time = 1;
	CHECK(repo_write_manifest(&r, m, &err) == 0);
	CHECK(repo_resolve(&r, m->id, id, &err) == 0 && !strcmp(id, m->id));
	CHECK(repo_read_manifest(&r, m->id, &rd, &err) == 0);
	CHECK(rd && rd->n_files == m->n_files && !strcmp(rd->tenant, "t1"));
	snprintf(out, sizeof(out), "%s/out", base);
	mkdir(out, 0700);
	CHECK(repo_extract(&r, rd, FERRY_SNAP__FILE_PART__PART_IMAGES, out, &err) == 0);
	{
		static const char *const names[] = {"pages-1.img", "big.img", "small.img"};
		for (int k = 0; k < 3; k++) {
			char a[700], b[700], *x = NULL, *y = NULL;
			size_t la = 0, lb = 1;
			snprintf(a, sizeof(a), "%s/%s", src, names[k]);
			snprintf(b, sizeof(b), "%s/%s", out, names[k]);
			CHECK(fs_read_all(a, &x, &la, 1 << 20, NULL) == 0);
			CHECK(fs_read_all(b, &y, &lb, 1 << 20, NULL) == 0);
			CHECK(la == lb && !memcmp(x, y, la));
			free(x);
			free(y);
		}
	}
	struct idset *done = idset_new();
	CHECK(repo_verify(&r, rd, true, done, bad, who, &err) == 0);
	idset_free(done);
	/* flip a byte of the chunk of small.img */
	for (size_t i = 0; i < rd->n_files; i++)
		if (!strcmp(rd->files[i]->path, "small.img")) {
			char p[700], hex[65];
			FILE *f;
			for (int k = 0; k < 32; k++)
				sprintf(hex + 2 * k, "%02x", rd->files[i]->chunks[0]->id.data[k]);
			snprintf(p, sizeof(p), "%s/chunks/%.2s/%s", store, hex, hex);
			f = fopen(p, "r+b");
			fseek(f, 20, SEEK_SET);
			fputc(0x55, f);
			fclose(f);
		}
	done = idset_new();
	CHECK(repo_verify(&r, rd, false, done, bad, who, &err) == 0); /* present */
	idset_free(done);
	done = idset_new();
	CHECK(repo_verify(&r, rd, true, done, bad, who, &err) == 1 && !strcmp(who, "small.img"));
	idset_free(done);
	snapm_free(rd);
	/* rm + gc: nothing named any more, every chunk goes */
	struct repo_gc_stats gs;
	CHECK(count_chunks() > 0);
	CHECK(repo_remove(&r, m->id, &err) == 0);
	CHECK(repo_gc(&r, &gs, &err) == 0 && gs.chunks == 0 && count_chunks() == 0);
	snapm_free_built(m);
	snapm_free_built(m2);
	repo_close(&r);
}

static void test_wrong_key(void)
{
	struct repo r;
	char k2[400];
	ferr_t err = {0};

	snprintf(k2, sizeof(k2), "%s/key2", base);
	CHECK(seal_key_create(k2, NULL) == 0);
	CHECK(repo_open(&r, store, k2, &err) < 0 && err.code == FX_INTEGRITY);
	chmod(key, 0644);
	CHECK(repo_open(&r, store, key, &err) < 0 && err.code == FX_USAGE);
	chmod(key, 0600);
	CHECK(repo_open(&r, "/nonexistent-store", key, &err) < 0 && err.code == FX_NOTFOUND);
}

int main(void)
{
	setup();
	RUN(test_roundtrip);
	RUN(test_wrong_key);
	fs_rm_rf(base, NULL);
	UNIT_DONE();
}
