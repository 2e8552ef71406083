/*
 * wl_threads [--threads N (4)]
 *
 * N threads, each counting on its own and holding a thread-local pattern
 * derived from its index and thread id. Verify: every thread still counts,
 * each one's thread-local data is intact and its gettid() unchanged, and
 * the set of thread ids in /proc/self/task is the one recorded at start.
 */
#include "zdtm.h"

#include <dirent.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>

#define TLS_BYTES   1024
#define MAX_THREADS 256

struct slot {
	unsigned index;
	pid_t tid;	    /* recorded at start */
	atomic_int now_tid; /* what gettid() says now */
	atomic_ulong count;
	atomic_bool stop;
	char error[160]; /* written once by the thread, read after join */
	atomic_bool bad;
};

static _Thread_local unsigned char tls_pattern[TLS_BYTES];
static _Thread_local uint64_t tls_key;

static atomic_uint registered;

static void *worker(void *arg)
{
	struct slot *s = arg;
	/* Through a pointer: indexing the static-TLS array directly makes gcc
	 * emit a TPOFF32 relocation with an offset that static linking rejects. */
	unsigned char *volatile pat = tls_pattern;

	s->tid = gettid();
	tls_key = zdtm_mix64(((uint64_t)s->index << 32) ^ (uint64_t)s->tid);
	for (size_t i = 0; i < TLS_BYTES; i++)
		pat[i] = (unsigned char)zdtm_mix64(tls_key + i);
	atomic_store(&s->now_tid, s->tid);
	atomic_fetch_add(&registered, 1);

	while (!atomic_load(&s->stop)) {
		pid_t tid = gettid();
		atomic_store(&s->now_tid, tid);
		if (!atomic_load(&s->bad)) {
			if (tid != s->tid) {
				snprintf(s->error, sizeof(s->error),
					 "thread %u: gettid() is %d, was %d", s->index, (int)tid,
					 (int)s->tid);
				atomic_store(&s->bad, true);
			} else if (pat != tls_pattern) {
				snprintf(s->error, sizeof(s->error),
					 "thread %u: thread-local storage moved", s->index);
				atomic_store(&s->bad, true);
			} else if (tls_key !=
				   zdtm_mix64(((uint64_t)s->index << 32) ^ (uint64_t)s->tid)) {
				snprintf(s->error, sizeof(s->error),
					 "thread %u: thread-local key changed", s->index);
				atomic_store(&s->bad, true);
			} else {
				for (size_t i = 0; i < TLS_BYTES; i++) {
					if (pat[i] != (unsigned char)zdtm_mix64(tls_key + i)) {
						snprintf(s->error, sizeof(s->error),
							 "thread %u: thread-local data differs at "
							 "byte %zu",
							 s->index, i);
						atomic_store(&s->bad, true);
						break;
					}
				}
			}
		}
		atomic_fetch_add(&s->count, 1);
		zdtm_nap_ms(1);
	}
	return NULL;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* The thread ids the kernel lists for us must be main + the recorded ones. */
static void check_task_dir(const struct slot *slots, unsigned n)
{
	pid_t want[MAX_THREADS + 1], have[MAX_THREADS + 2];
	unsigned nhave = 0;
	struct dirent *de;
	char self[32] = "";
	DIR *d;

	/* A /proc of another PID namespace shows other numbers: skip then. */
	if (readlink("/proc/self", self, sizeof(self) - 1) < 0 || atoi(self) != getpid()) {
		fprintf(stderr, "wl_threads: /proc is not of our PID namespace, thread set not "
				"checked\n");
		return;
	}
	d = opendir("/proc/self/task");
	if (!d) {
		fprintf(stderr, "wl_threads: no /proc/self/task (%s), thread set not checked\n",
			strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (nhave == MAX_THREADS + 2)
			break;
		have[nhave++] = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	want[0] = getpid();
	for (unsigned i = 0; i < n; i++)
		want[i + 1] = slots[i].tid;
	qsort(want, n + 1, sizeof(pid_t), cmp_pid);
	qsort(have, nhave, sizeof(pid_t), cmp_pid);
	if (nhave != n + 1 || memcmp(want, have, (n + 1) * sizeof(pid_t)) != 0)
		zdtm_fail("/proc/self/task lists %u threads, not the %u recorded at start (first "
			  "%d vs %d)",
			  nhave, n + 1, nhave ? (int)have[0] : -1, (int)want[0]);
}

static void verify(struct slot *slots, pthread_t *th, unsigned n, pid_t main_tid)
{
	unsigned long before[MAX_THREADS];
	uint64_t deadline = zdtm_now_ms() + 5000;
	unsigned lagging;

	if (gettid() != main_tid)
		zdtm_fail("main thread id changed from %d to %d", (int)main_tid, (int)gettid());
	for (unsigned i = 0; i < n; i++)
		before[i] = atomic_load(&slots[i].count);
	do {
		zdtm_nap_ms(10);
		lagging = 0;
		for (unsigned i = 0; i < n; i++)
			if (atomic_load(&slots[i].count) < before[i] + 10)
				lagging++;
	} while (lagging && zdtm_now_ms() < deadline);
	for (unsigned i = 0; i < n; i++)
		if (atomic_load(&slots[i].count) < before[i] + 10)
			zdtm_fail("thread %u (tid %d) stopped counting at %lu", i,
				  (int)slots[i].tid, atomic_load(&slots[i].count));
	check_task_dir(slots, n);
	for (unsigned i = 0; i < n; i++)
		atomic_store(&slots[i].stop, true);
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i < n; i++)
		if (atomic_load(&slots[i].bad))
			zdtm_fail("%s", slots[i].error);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"threads", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	static struct slot slots[MAX_THREADS];
	static pthread_t th[MAX_THREADS];
	unsigned n = 4;
	pid_t main_tid;
	int o;

	while ((o = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		if (o != 't') {
			fprintf(stderr, "usage: %s [--threads N (4)]\n", argv[0]);
			return 2;
		}
		n = (unsigned)zdtm_parse_long("--threads", optarg, 1, MAX_THREADS);
	}
	zdtm_init();
	main_tid = gettid();
	for (unsigned i = 0; i < n; i++) {
		slots[i].index = i;
		if ((errno = pthread_create(&th[i], NULL, worker, &slots[i])) != 0) {
			fprintf(stderr, "wl_threads: cannot start thread %u: %s\n", i,
				strerror(errno));
			return 2;
		}
	}
	while (atomic_load(&registered) < n)
		zdtm_nap_ms(1);
	zdtm_ready();
	while (!zdtm_sleep_ms(1000))
		zdtm_reap(0, NULL);
	verify(slots, th, n, main_tid);
	zdtm_pass();
}
