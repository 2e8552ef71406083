/*
 * wl_counter [--interval-ms MS (200)]
 *
 * The demo workload: prints "tick N" every interval and keeps the current N
 * in WL_DIR/counter (written atomically). At start it writes a random token
 * (its incarnation) to WL_DIR/counter.start. A restore brings back the same
 * incarnation, which goes on counting from where it was; a fresh start in a
 * directory that already holds counter.start is a restart, and verify fails.
 * Verify: no restart, the token on disk is ours, N still increases.
 */
#include "zdtm.h"

#include <getopt.h>
#include <inttypes.h>
#include <sys/random.h>

#define START_FILE   "counter.start"
#define COUNTER_FILE "counter"

struct counter {
	uint64_t token; /* this incarnation */
	uint64_t n;
	bool restarted; /* counter.start existed when we started */
	char previous[128];
};

static uint64_t new_token(void)
{
	uint64_t t = 0;
	struct timespec ts;

	while (getrandom(&t, sizeof(t), 0) < 0 && errno == EINTR)
		;
	clock_gettime(CLOCK_REALTIME, &ts);
	return zdtm_mix64(t ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
			  (uint64_t)getpid());
}

static void start(struct counter *c)
{
	char text[128];

	if (zdtm_read_file(START_FILE, c->previous, sizeof(c->previous)) >= 0) {
		c->restarted = true;
		c->previous[strcspn(c->previous, "\n")] = '\0';
		fprintf(stderr, "wl_counter: %s/%s exists (%s): this is a restart\n", zdtm_dir(),
			START_FILE, c->previous);
	}
	c->token = new_token();
	snprintf(text, sizeof(text), "token %016" PRIx64 " pid %d\n", c->token, (int)getpid());
	if (zdtm_write_file(START_FILE, text) < 0)
		fprintf(stderr, "wl_counter: cannot write %s/%s: %s\n", zdtm_dir(), START_FILE,
			strerror(errno));
}

static void tick(struct counter *c)
{
	char text[32];

	c->n++;
	printf("tick %" PRIu64 "\n", c->n);
	snprintf(text, sizeof(text), "%" PRIu64 "\n", c->n);
	if (zdtm_write_file(COUNTER_FILE, text) < 0)
		zdtm_note_failure("cannot write %s/%s: %s", zdtm_dir(), COUNTER_FILE,
				  strerror(errno));
}

static void verify(struct counter *c, unsigned interval_ms)
{
	char text[128];
	unsigned long long token = 0;
	uint64_t n0 = c->n, deadline;

	if (c->restarted)
		zdtm_fail("counter restarted from 0 (a previous run left %s: %s)", START_FILE,
			  c->previous);
	if (zdtm_read_file(START_FILE, text, sizeof(text)) < 0)
		zdtm_fail("cannot read %s/%s: %s", zdtm_dir(), START_FILE, strerror(errno));
	if (sscanf(text, "token %llx", &token) != 1 || token != c->token)
		zdtm_fail("%s belongs to another run (%.40s), ours is %016" PRIx64, START_FILE,
			  text, c->token);
	zdtm_fail_if_noted();

	/* It must still count: wait for the next tick. */
	deadline = zdtm_now_ms() + 3000 + 3ULL * interval_ms;
	while (c->n == n0 && zdtm_now_ms() < deadline) {
		zdtm_nap_ms(interval_ms);
		tick(c);
	}
	if (c->n == n0)
		zdtm_fail("counter stopped at %" PRIu64, n0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"interval-ms", required_argument, 0, 'i'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	struct counter c = {0};
	unsigned interval = 200;
	int o;

	while ((o = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
		if (o != 'i') {
			fprintf(stderr, "usage: %s [--interval-ms MS (200)]\n", argv[0]);
			return 2;
		}
		interval = (unsigned)zdtm_parse_long("--interval-ms", optarg, 1, 3600000);
	}
	zdtm_init();
	start(&c);
	tick(&c);
	zdtm_ready();
	while (!zdtm_sleep_ms(interval)) {
		zdtm_reap(0, NULL);
		tick(&c);
	}
	verify(&c, interval);
	zdtm_pass();
}
