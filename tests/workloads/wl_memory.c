/*
 * wl_memory [--mib N] [--dirty MIB_PER_SEC] [--burst-pct P] [--seed S]
 *
 * Allocates N MiB (default 256) and fills it in runs of 16 pages that cycle
 * through three kinds: zero pages, pages repeating one pattern, and
 * pseudo-random pages. A random page keeps a generation number in its first
 * word; its body is recomputed from (seed, page index, generation), so verify
 * needs no copy. With --dirty, a thread rewrites random pages (generation + 1)
 * at the given rate, to give benchmarks a working set that changes. With
 * --burst-pct, each SIGUSR2 rewrites P% of all its pages at once (random
 * pages, generation + 1) and then writes the number of bursts done to
 * /tmp/wl.bursts: a benchmark changes exactly that much between snapshots.
 * Verify checks every page.
 */
#include "zdtm.h"

#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define PAGE	4096UL
#define WORDS	(PAGE / sizeof(uint64_t))
#define RUN	16 /* pages per run of one kind */
#define PATTERN 0x6665727279a55a5bULL

enum kind { K_ZERO, K_PATTERN, K_RANDOM };

struct mem {
	uint64_t *base;
	size_t npages;
	uint64_t seed;
	uint32_t *random_pages; /* indices of the K_RANDOM pages */
	size_t nrandom;
	long dirty_mib_s;
	long burst_pct;
	atomic_bool stop;
	atomic_ulong dirtied;
};

static enum kind page_kind(size_t i)
{
	return (enum kind)((i / RUN) % 3);
}

static uint64_t *page_at(const struct mem *m, size_t i)
{
	return m->base + i * WORDS;
}

static uint64_t page_key(const struct mem *m, size_t i, uint64_t gen)
{
	return zdtm_mix64(m->seed ^ zdtm_mix64(i) ^ (gen * 0xd6e8feb86659fd93ULL));
}

/* A random page: word 0 the generation, the body derived from it. The
 * generation is written last so a page is always consistent when the dirty
 * thread is stopped. */
static void write_random_page(const struct mem *m, size_t i, uint64_t gen)
{
	uint64_t *p = page_at(m, i), key = page_key(m, i, gen);

	for (size_t w = 1; w < WORDS; w++)
		p[w] = zdtm_mix64(key + w);
	p[0] = gen;
}

static void fill(struct mem *m)
{
	for (size_t i = 0; i < m->npages; i++) {
		uint64_t *p = page_at(m, i);
		switch (page_kind(i)) {
		case K_ZERO:
			memset(p, 0, PAGE); /* touch it: a present zero page */
			break;
		case K_PATTERN:
			for (size_t w = 0; w < WORDS; w++)
				p[w] = PATTERN;
			break;
		case K_RANDOM:
			m->random_pages[m->nrandom++] = (uint32_t)i;
			write_random_page(m, i, 0);
			break;
		}
	}
}

static void *dirty_thread(void *arg)
{
	struct mem *m = arg;
	uint64_t last = zdtm_now_ms(), rng = m->seed ^ 0x5eed;
	double credit = 0, pages_per_ms = (double)m->dirty_mib_s * 256.0 / 1000.0;

	while (!atomic_load(&m->stop)) {
		uint64_t now = zdtm_now_ms(), dt = now - last;

		/* A frozen process sees time jump: never catch up more than 100 ms. */
		if (dt > 100)
			dt = 100;
		last = now;
		credit += pages_per_ms * (double)dt;
		while (credit >= 1.0 && !atomic_load(&m->stop)) {
			rng = zdtm_mix64(rng);
			size_t i = m->random_pages[rng % m->nrandom];
			write_random_page(m, i, page_at(m, i)[0] + 1);
			atomic_fetch_add(&m->dirtied, 1);
			credit -= 1.0;
		}
		zdtm_nap_ms(10);
	}
	return NULL;
}

static atomic_int bursts_asked;

static void on_usr2(int sig)
{
	(void)sig;
	atomic_fetch_add(&bursts_asked, 1);
}

static void *burst_thread(void *arg)
{
	struct mem *m = arg;
	uint64_t rng = m->seed ^ 0xb0b5;
	size_t n = m->npages * (size_t)m->burst_pct / 100;
	int done = 0;
	char text[32];

	while (!atomic_load(&m->stop)) {
		if (atomic_load(&bursts_asked) <= done) {
			zdtm_nap_ms(10);
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			rng = zdtm_mix64(rng);
			size_t i = m->random_pages[rng % m->nrandom];
			write_random_page(m, i, page_at(m, i)[0] + 1);
			atomic_fetch_add(&m->dirtied, 1);
		}
		snprintf(text, sizeof(text), "%d\n", ++done);
		zdtm_write_file("wl.bursts", text);
	}
	return NULL;
}

static void verify(const struct mem *m)
{
	for (size_t i = 0; i < m->npages; i++) {
		const uint64_t *p = page_at(m, i);
		uint64_t key;

		switch (page_kind(i)) {
		case K_ZERO:
			for (size_t w = 0; w < WORDS; w++)
				if (p[w] != 0)
					zdtm_fail("zero page %zu has data at word %zu: 0x%llx", i,
						  w, (unsigned long long)p[w]);
			break;
		case K_PATTERN:
			for (size_t w = 0; w < WORDS; w++)
				if (p[w] != PATTERN)
					zdtm_fail("pattern page %zu differs at word %zu: 0x%llx", i,
						  w, (unsigned long long)p[w]);
			break;
		case K_RANDOM:
			key = page_key(m, i, p[0]);
			for (size_t w = 1; w < WORDS; w++)
				if (p[w] != zdtm_mix64(key + w))
					zdtm_fail("random page %zu (generation %llu) differs at "
						  "word %zu",
						  i, (unsigned long long)p[0], w);
			break;
		}
	}
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--mib N (256)] [--dirty MIB_PER_SEC (0)] [--burst-pct P (0)] "
		"[--seed S]\n",
		prog);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"mib", required_argument, 0, 'm'},
					     {"dirty", required_argument, 0, 'd'},
					     {"burst-pct", required_argument, 0, 'b'},
					     {"seed", required_argument, 0, 's'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	struct mem m = {.seed = 0xfe77e5eedULL};
	long mib = 256;
	pthread_t th, bt;
	int c;

	while ((c = getopt_long(argc, argv, "m:d:b:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			mib = zdtm_parse_long("--mib", optarg, 1, 1L << 20);
			break;
		case 'd':
			m.dirty_mib_s = zdtm_parse_long("--dirty", optarg, 0, 1L << 20);
			break;
		case 'b':
			m.burst_pct = zdtm_parse_long("--burst-pct", optarg, 0, 100);
			break;
		case 's':
			m.seed = (uint64_t)zdtm_parse_long("--seed", optarg, 0, LONG_MAX);
			break;
		default:
			usage(argv[0]);
		}
	}
	zdtm_init();

	m.npages = (size_t)mib * (1024 * 1024 / PAGE);
	m.base =
	    mmap(NULL, m.npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	m.random_pages = calloc(m.npages / 3 + RUN, sizeof(uint32_t));
	if (m.base == MAP_FAILED || !m.random_pages) {
		fprintf(stderr, "wl_memory: cannot allocate %ld MiB: %s\n", mib, strerror(errno));
		return 2;
	}
	fill(&m);
	fprintf(stderr, "wl_memory: %ld MiB at %p\n", mib, (void *)m.base);
	if (m.dirty_mib_s > 0 && m.nrandom > 0 &&
	    (errno = pthread_create(&th, NULL, dirty_thread, &m)) != 0) {
		fprintf(stderr, "wl_memory: cannot start the dirty thread: %s\n", strerror(errno));
		return 2;
	}
	if (m.burst_pct > 0 && m.nrandom > 0) {
		signal(SIGUSR2, on_usr2);
		if ((errno = pthread_create(&bt, NULL, burst_thread, &m)) != 0) {
			fprintf(stderr, "wl_memory: cannot start the burst thread: %s\n",
				strerror(errno));
			return 2;
		}
	}
	zdtm_ready();

	while (!zdtm_sleep_ms(1000))
		zdtm_reap(0, NULL);
	if (m.burst_pct > 0 && m.nrandom > 0) {
		atomic_store(&m.stop, true);
		pthread_join(bt, NULL);
	}

	if (m.dirty_mib_s > 0 && m.nrandom > 0) {
		atomic_store(&m.stop, true);
		pthread_join(th, NULL);
		fprintf(stderr, "wl_memory: %lu pages rewritten\n", atomic_load(&m.dirtied));
	}
	verify(&m);
	zdtm_pass();
}
