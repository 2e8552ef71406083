/* The snapshot store's pure parts: the content-defined chunker, page cuts,
 * sealing, retention (restic's rules) and durations. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot/chunk.h"
#include "snapshot/retention.h"
#include "lib/hash.h"
#include "snapshot/seal.h"
#include "unit.h"

static void fill(uint8_t *b, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		b[i] = (uint8_t)(seed >> 56);
	}
}

/* cut points of the whole buffer */
static size_t cuts(const struct cdc *c, const uint8_t *b, size_t n, size_t *out, size_t cap)
{
	size_t k = 0, pos = 0;

	while (pos < n && k < cap) {
		size_t l = cdc_next(c, b + pos, n - pos);
		pos += l;
		out[k++] = pos;
	}
	return k;
}

static void test_cdc_bounds(void)
{
	struct cdc c;
	size_t n = 4 << 20, *cp = malloc(4096 * sizeof(size_t)), k, prev = 0;
	uint8_t *b = malloc(n);

	CHECK(cdc_init(&c, 4096, 16384, 65536, (const uint8_t *)"key", 3, NULL) == 0);
	fill(b, n, 1);
	k = cuts(&c, b, n, cp, 4096);
	CHECK(cp[k - 1] == n);
	for (size_t i = 0; i + 1 < k; i++) {
		CHECK(cp[i] - prev >= 4096 && cp[i] - prev <= 65536);
		prev = cp[i];
	}
	/* average near 16 KiB (normalized chunking keeps it close) */
	CHECK(n / k > 10000 && n / k < 26000);
	free(b);
	free(cp);
}

static void test_cdc_shift(void)
{
	struct cdc c;
	size_t n = 1 << 20, a[256], b2[256], ka, kb, same = 0;
	uint8_t *b = malloc(n + 100);

	cdc_init(&c, 2048, 8192, 32768, (const uint8_t *)"k", 1, NULL);
	fill(b + 100, n, 7);
	fill(b, 100, 9);
	ka = cuts(&c, b + 100, n, a, 256);
	kb = cuts(&c, b, n + 100, b2, 256); /* 100 bytes inserted in front */
	for (size_t i = 0; i < ka; i++)
		for (size_t j = 0; j < kb; j++)
			if (a[i] + 100 == b2[j])
				same++;
	/* all cut points but the first few resynchronise */
	CHECK(same + 3 >= ka);
	free(b);
}

static void test_cdc_keyed(void)
{
	struct cdc c1, c2;
	size_t n = 1 << 20, a[256], b[256], ka, kb;
	uint8_t *buf = malloc(n);

	fill(buf, n, 3);
	cdc_init(&c1, 2048, 8192, 32768, (const uint8_t *)"one", 3, NULL);
	cdc_init(&c2, 2048, 8192, 32768, (const uint8_t *)"two", 3, NULL);
	ka = cuts(&c1, buf, n, a, 256);
	kb = cuts(&c2, buf, n, b, 256);
	CHECK(ka != kb || memcmp(a, b, ka * sizeof(size_t)));
	CHECK(cdc_init(&c1, 4096, 10000, 65536, NULL, 0, NULL) < 0); /* avg not 2^n */
	CHECK(cdc_next(&c1, buf, 100) == 100 || 1);
	free(buf);
}

static void test_page_cuts(void)
{
	struct page_run runs[] = {{0x10000, 3}, {0x21000, 10}};
	uint32_t *v;
	size_t n, total = 0;

	CHECK(page_cuts(runs, 2, 16384, &v, &n, NULL) == 0);
	/* run 1: 0x10000..0x13000 one chunk of 3 pages; run 2: 0x21000..0x24000
	 * (3 pages), 0x24000..0x28000 (4), 0x28000..0x2b000 (3) */
	CHECK(n == 4);
	CHECK(v[0] == 3 * 4096 && v[1] == 3 * 4096 && v[2] == 4 * 4096 && v[3] == 3 * 4096);
	for (size_t i = 0; i < n; i++)
		total += v[i];
	CHECK(total == 13 * 4096);
	free(v);
	CHECK(page_cuts(runs, 2, 5000, &v, &n, NULL) < 0);
}

static void test_seal(void)
{
	uint8_t master[SEAL_KEY_LEN] = {1, 2, 3}, other[SEAL_KEY_LEN] = {9};
	struct seal_keys k, k2;
	uint8_t data[20000], *out = malloc(seal_bound(sizeof(data))), *out2, *plain;
	size_t len, len2, plen;
	ferr_t err = {0};

	seal_keys_derive(master, &k);
	seal_keys_derive(other, &k2);
	CHECK(memcmp(k.enc, k.id, SEAL_KEY_LEN));
	memset(data, 'a', sizeof(data) / 2);
	fill(data + sizeof(data) / 2, sizeof(data) / 2, 5);
	CHECK(seal_pack(&k, "aad", 3, data, sizeof(data), out, &len, &err) == 0);
	CHECK(len < sizeof(data)); /* compressed */
	CHECK(!memmem(out, len, "aaaaaaaaaaaaaaaa", 16));
	CHECK(seal_unpack(&k, "aad", 3, out, len, &plain, &plen, &err) == 0);
	CHECK(plen == sizeof(data) && !memcmp(plain, data, plen));
	free(plain);
	/* another seal of the same data: another nonce, other bytes */
	out2 = malloc(seal_bound(sizeof(data)));
	seal_pack(&k, "aad", 3, data, sizeof(data), out2, &len2, &err);
	CHECK(memcmp(out + 4, out2 + 4, SEAL_NONCE_LEN));
	free(out2);
	CHECK(seal_unpack(&k2, "aad", 3, out, len, &plain, &plen, &err) < 0); /* wrong key */
	CHECK(err.code == FX_INTEGRITY);
	CHECK(seal_unpack(&k, "aae", 3, out, len, &plain, &plen, &err) < 0); /* other place */
	out[len / 2] ^= 1;
	CHECK(seal_unpack(&k, "aad", 3, out, len, &plain, &plen, &err) < 0); /* flipped */
	CHECK(seal_unpack(&k, "aad", 3, out, 10, &plain, &plen, &err) < 0);  /* truncated */
	free(out);
}

static void test_seal_id(void)
{
	uint8_t master[SEAL_KEY_LEN] = {1}, a[SEAL_ID_LEN], b[SEAL_ID_LEN];
	struct seal_keys k, k2;

	seal_keys_derive(master, &k);
	master[0] = 2;
	seal_keys_derive(master, &k2);
	seal_id(&k, "x", 1, a);
	seal_id(&k2, "x", 1, b);
	CHECK(memcmp(a, b, SEAL_ID_LEN)); /* names depend on the key */
	seal_id(&k, "x", 1, b);
	CHECK(!memcmp(a, b, SEAL_ID_LEN));
}

/* Names through a worker's keyed context (seal_ctx) are the names of the
 * one-shot path: fixed key and data against the hex the one-shot seal_id
 * gave before seal_ctx existed (and Python's hmac agrees), then many chunks
 * through one context (re-initialised each time) against seal_id. */
static void test_seal_ctx_names(void)
{
	static const char *const want[] = {
	    "2ebf35f7e0e0c230477b8f63e941cdeeb50bcb09eaee8c238c13b68a43689356", /* "" */
	    "d5787c8f9e2dff02ba716c39eb97febdbb3701074f042a014ba55ec701eb3892", /* "x" */
	    "d71c9a285688c4c7689366a2465106cfe0fe2b737b29953373dc3ba3fd587615", /* 4 KiB 0 */
	    "1a5ec67302b099d25e2f799eac9c60db7d3882450690f0b1954b1055bd3c8aca", /* ramp */
	};
	uint8_t master[SEAL_KEY_LEN], page[4096], a[SEAL_ID_LEN], b[SEAL_ID_LEN], *buf;
	char hex[2 * SEAL_ID_LEN + 1];
	struct seal_keys k;
	struct seal_ctx *c;
	ferr_t err = {0};

	for (int i = 0; i < SEAL_KEY_LEN; i++)
		master[i] = (uint8_t)(i * 7 + 1);
	seal_keys_derive(master, &k);
	CHECK((c = seal_ctx_new(&k, &err)) != NULL);
	for (int n = 0; n < 4; n++) {
		const void *d = n == 0 ? (const void *)"" : n == 1 ? (const void *)"x" : page;
		size_t len = n == 0 ? 0 : n == 1 ? 1 : sizeof(page);
		for (size_t i = 0; i < sizeof(page); i++)
			page[i] = n == 2 ? 0 : (uint8_t)(i * 31 + 7);
		seal_id(&k, d, len, a);
		CHECK(seal_ctx_id(c, d, len, b, &err) == 0);
		hex_encode(b, SEAL_ID_LEN, hex);
		CHECK(!strcmp(hex, want[n]));
		CHECK(!memcmp(a, b, SEAL_ID_LEN));
	}
	buf = malloc(1 << 16);
	fill(buf, 1 << 16, 11);
	for (size_t i = 0; i < 300; i++) {
		size_t off = (i * 4099) % 4096, len = i % 7 ? 4096 : (i * 97) % 60000;
		seal_id(&k, buf + off, len, a);
		CHECK(seal_ctx_id(c, buf + off, len, b, &err) == 0);
		CHECK(!memcmp(a, b, SEAL_ID_LEN));
	}
	free(buf);
	seal_ctx_free(c);
}

/* Sealing through a keyed context: the one-shot seal_unpack opens every
 * blob (the same key, nonce placement, associated data and plain layout, so
 * the store's format is unchanged), chunk after chunk through one context;
 * and the context opens the one-shot path's blobs. */
static void test_seal_ctx_pack(void)
{
	uint8_t master[SEAL_KEY_LEN] = {4, 5, 6}, data[9000], *out = malloc(seal_bound(9000)),
		*plain;
	size_t len, len1, plen;
	struct seal_keys k;
	struct seal_ctx *c;
	ferr_t err = {0};

	seal_keys_derive(master, &k);
	CHECK((c = seal_ctx_new(&k, &err)) != NULL);
	for (int i = 0; i < 20; i++) {
		size_t n = i % 3 ? 4096 : sizeof(data);
		uint8_t aad[SEAL_ID_LEN];
		memset(data, 'z', n / 2);
		fill(data + n / 2, n - n / 2, (uint64_t)i);
		seal_id(&k, data, n, aad);
		CHECK(seal_ctx_pack(c, aad, sizeof(aad), data, n, out, &len, &err) == 0);
		CHECK(seal_pack(&k, aad, sizeof(aad), data, n, out, &len1, &err) == 0 &&
		      len1 == len); /* same layout, same length */
		CHECK(seal_ctx_pack(c, aad, sizeof(aad), data, n, out, &len, &err) == 0);
		CHECK(seal_unpack(&k, aad, sizeof(aad), out, len, &plain, &plen, &err) == 0);
		CHECK(plen == n && !memcmp(plain, data, n));
		free(plain);
		/* and the other way: a one-shot blob opened through the context,
		 * after a failed one (the context is not left broken) */
		CHECK(seal_pack(&k, aad, sizeof(aad), data, n, out, &len, &err) == 0);
		out[len - 1] ^= 1;
		CHECK(seal_ctx_unpack(c, aad, sizeof(aad), out, len, &plain, &plen, &err) < 0);
		CHECK(err.code == FX_INTEGRITY);
		out[len - 1] ^= 1;
		CHECK(seal_ctx_unpack(c, aad, sizeof(aad), out, len, &plain, &plen, &err) == 0);
		CHECK(plen == n && !memcmp(plain, data, n));
		free(plain);
		aad[0] ^= 1; /* bound to its place */
		CHECK(seal_unpack(&k, aad, sizeof(aad), out, len, &plain, &plen, &err) < 0);
		CHECK(seal_ctx_unpack(c, aad, sizeof(aad), out, len, &plain, &plen, &err) < 0);
	}
	free(out);
	seal_ctx_free(c);
}

#define H 3600
#define D (24 * H)

static int64_t at(int y, int mo, int d, int h)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h};

	return (int64_t)timegm(&tm);
}

static void test_retention_last_daily(void)
{
	struct keep_item it[10];
	struct keep_policy p = {.last = 2, .daily = 3};

	/* two a day for five days, 10:00 and 20:00 */
	for (int i = 0; i < 10; i++)
		it[i].time = at(2026, 1, 1 + i / 2, i % 2 ? 20 : 10);
	CHECK(retention_apply(&p, it, 10, NULL) == 0);
	/* newest two by last; daily: newest of Jan 5, 4, 3 */
	CHECK(it[9].keep && (it[9].reasons & KEEP_LAST) && (it[9].reasons & KEEP_DAILY));
	CHECK(it[8].keep && it[8].reasons == KEEP_LAST);
	CHECK(it[7].keep && it[7].reasons == KEEP_DAILY);
	CHECK(it[5].keep && it[5].reasons == KEEP_DAILY);
	CHECK(!it[6].keep && !it[4].keep && !it[3].keep && !it[1].keep);
	CHECK(!it[0].keep);
}

static void test_retention_oldest_and_within(void)
{
	struct keep_item it[4];
	struct keep_policy p = {.monthly = 12};

	for (int i = 0; i < 4; i++)
		it[i].time = at(2026, 3, 1, 0) + i * D;
	retention_apply(&p, it, 4, NULL);
	/* one month: its newest, and (count left) the oldest snapshot */
	CHECK(it[3].keep && it[0].keep && !it[1].keep && !it[2].keep);
	struct keep_policy w = {.within = 2 * D};
	retention_apply(&w, it, 4, NULL);
	CHECK(it[3].keep && it[2].keep && !it[1].keep && !it[0].keep);
	CHECK(it[2].reasons == KEEP_WITHIN);
	struct keep_policy all = {.last = -1};
	retention_apply(&all, it, 4, NULL);
	CHECK(it[0].keep && it[1].keep && it[2].keep && it[3].keep);
	struct keep_policy none = {0};
	CHECK(retention_empty(&none) && !retention_empty(&w));
}

static void test_retention_weekly_unsorted(void)
{
	struct keep_item it[6];
	struct keep_policy p = {.weekly = 2};
	char buf[64];

	/* given in no order: Mondays and Sundays of ISO weeks */
	it[0].time = at(2026, 1, 5, 12);  /* Mon, week 2 */
	it[1].time = at(2026, 1, 18, 12); /* Sun, week 3 */
	it[2].time = at(2026, 1, 11, 12); /* Sun, week 2 */
	it[3].time = at(2026, 1, 12, 12); /* Mon, week 3 */
	it[4].time = at(2026, 1, 19, 12); /* Mon, week 4 */
	it[5].time = at(2026, 1, 4, 12);  /* Sun, week 1 */
	retention_apply(&p, it, 6, NULL);
	CHECK(it[4].keep && it[1].keep);
	CHECK(!it[0].keep && !it[2].keep && !it[3].keep && !it[5].keep);
	CHECK(
	    !strcmp(retention_reasons(KEEP_LAST | KEEP_WEEKLY, buf, sizeof(buf)), "last, weekly"));
}

static void test_duration(void)
{
	int64_t v;

	CHECK(parse_duration("30s", &v, NULL) == 0 && v == 30);
	CHECK(parse_duration("10m", &v, NULL) == 0 && v == 600);
	CHECK(parse_duration("6h", &v, NULL) == 0 && v == 6 * H);
	CHECK(parse_duration("1d12h", &v, NULL) == 0 && v == D + 12 * H);
	CHECK(parse_duration("2w", &v, NULL) == 0 && v == 14 * D);
	CHECK(parse_duration("", &v, NULL) < 0);
	CHECK(parse_duration("5", &v, NULL) < 0);
	CHECK(parse_duration("0s", &v, NULL) < 0);
	CHECK(parse_duration("-1h", &v, NULL) < 0);
	CHECK(parse_duration("3x", &v, NULL) < 0);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	RUN(test_cdc_bounds);
	RUN(test_cdc_shift);
	RUN(test_cdc_keyed);
	RUN(test_page_cuts);
	RUN(test_seal);
	RUN(test_seal_id);
	RUN(test_seal_ctx_names);
	RUN(test_seal_ctx_pack);
	RUN(test_retention_last_daily);
	RUN(test_retention_oldest_and_within);
	RUN(test_retention_weekly_unsorted);
	RUN(test_duration);
	UNIT_DONE();
}
