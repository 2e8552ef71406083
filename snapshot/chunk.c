/* Chunkers of the snapshot store (chunk.h). */
#include "snapshot/chunk.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fsutil.h"
#include "proto/snapshot.pb-c.h"

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* bits ones at the top of a 64-bit word: the gear hash's best-mixed bits */
static uint64_t top_mask(unsigned bits)
{
	return bits >= 64 ? ~0ULL : ((1ULL << bits) - 1) << (64 - bits);
}

int cdc_init(struct cdc *c, uint32_t min, uint32_t avg, uint32_t max, const uint8_t *seed,
	     size_t seedlen, ferr_t *err)
{
	uint64_t s = 0x6665727279636463ULL;
	unsigned bits = 0;

	if (!avg || (avg & (avg - 1)) || min >= avg || avg >= max || min < 64)
		return ferr_set(err, FX_USAGE,
				"chunk sizes %u/%u/%u: need 64 <= min < avg < max, "
				"avg a power of two",
				min, avg, max);
	for (size_t i = 0; i < seedlen; i++)
		s = (s ^ seed[i]) * 0x100000001b3ULL;
	for (int i = 0; i < 256; i++)
		c->gear[i] = splitmix64(&s);
	while ((1U << bits) < avg)
		bits++;
	c->min = min;
	c->avg = avg;
	c->max = max;
	c->mask_s = top_mask(bits + 1);
	c->mask_l = top_mask(bits - 1);
	return 0;
}

size_t cdc_next(const struct cdc *c, const uint8_t *buf, size_t n)
{
	size_t i = c->min, normal = c->avg, end = n < c->max ? n : c->max;
	uint64_t h = 0;

	if (n <= c->min)
		return n;
	if (normal > end)
		normal = end;
	for (; i < normal; i++) {
		h = (h << 1) + c->gear[buf[i]];
		if (!(h & c->mask_s))
			return i + 1;
	}
	for (; i < end; i++) {
		h = (h << 1) + c->gear[buf[i]];
		if (!(h & c->mask_l))
			return i + 1;
	}
	return end;
}

int page_cuts(const struct page_run *runs, size_t n, uint32_t chunk, uint32_t **out, size_t *nout,
	      ferr_t *err)
{
	size_t cap = 16, k = 0;
	uint32_t *v;

	if (!chunk || chunk % CHUNK_PAGE)
		return ferr_set(err, FX_USAGE, "page chunk %u is not a multiple of %u", chunk,
				CHUNK_PAGE);
	if (!(v = malloc(cap * sizeof(*v))))
		return ferr_set(err, FX_FAIL, "out of memory");
	for (size_t r = 0; r < n; r++) {
		uint64_t a = runs[r].vaddr, end = a + (uint64_t)runs[r].nr_pages * CHUNK_PAGE;
		while (a < end) {
			uint64_t next = (a / chunk + 1) * chunk;
			if (next > end)
				next = end;
			if (k == cap) {
				uint32_t *nv = realloc(v, (cap *= 2) * sizeof(*v));
				if (!nv)
					return free(v), ferr_set(err, FX_FAIL, "out of memory");
				v = nv;
			}
			v[k++] = (uint32_t)(next - a);
			a = next;
		}
	}
	*out = v;
	*nout = k;
	return 0;
}

#define PE_PRESENT 4U

static int add_run(const FerrySnap__PagemapEntry *e, struct page_run **runs, size_t *n, size_t *cap)
{
	bool present = e->has_flags ? (e->flags & PE_PRESENT) : !e->in_parent;

	uint64_t nr = e->has_pages ? e->pages : e->nr_pages;

	if (!present || !nr || nr > UINT32_MAX)
		return 0;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct page_run *nr = realloc(*runs, nc * sizeof(**runs));
		if (!nr)
			return -1;
		*runs = nr;
		*cap = nc;
	}
	(*runs)[(*n)++] = (struct page_run){e->vaddr, (uint32_t)nr};
	return 0;
}

/* image: u32 common magic, u32 image magic, then u32 length + message each */
int pagemap_read(const char *path, struct page_run **runs, size_t *n, uint32_t *pages_id,
		 ferr_t *err)
{
	char *buf;
	size_t len, off = 8, cap = 0;
	bool head = true;

	*runs = NULL;
	*n = 0;
	if (fs_read_all(path, &buf, &len, 256U << 20, err) < 0)
		return -1;
	while (off + 4 <= len) {
		uint32_t sz;
		memcpy(&sz, buf + off, 4);
		off += 4;
		if (sz > len - off)
			goto bad;
		if (head) {
			FerrySnap__PagemapHead *h =
			    ferry_snap__pagemap_head__unpack(NULL, sz, (const uint8_t *)buf + off);
			if (!h)
				goto bad;
			*pages_id = h->pages_id;
			ferry_snap__pagemap_head__free_unpacked(h, NULL);
			head = false;
		} else {
			FerrySnap__PagemapEntry *e =
			    ferry_snap__pagemap_entry__unpack(NULL, sz, (const uint8_t *)buf + off);
			int rc = e ? add_run(e, runs, n, &cap) : -1;
			if (e)
				ferry_snap__pagemap_entry__free_unpacked(e, NULL);
			if (rc < 0)
				goto bad;
		}
		off += sz;
	}
	free(buf);
	if (head || off != len)
		goto bad_nobuf;
	return 0;
bad:
	free(buf);
bad_nobuf:
	free(*runs);
	*runs = NULL;
	return ferr_set(err, FX_INTEGRITY, "%s: not a pagemap image", path);
}
