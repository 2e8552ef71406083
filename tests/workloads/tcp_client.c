/*
 * tcp_client --addr A --port P [--interval-ms MS (20)] [--duration-s S (0: forever)]
 *            [--gap-log-ms MS (0: off)]
 *
 * The outside half of wl_tcp_server: connects once, sends "SEQ n" with
 * n = 1, 2, 3, ... and checks each answer is "ACK n n" (nothing lost,
 * repeated or out of order; the server's own count agrees, so it did not
 * restart). Pauses of any length are fine (the server is frozen while it is
 * dumped and restored); EOF without "BYE" or a reset is a failure. Ready
 * once the first answer came back: "READY" on stdout and WL_DIR/client.ready. On SIGUSR1 or
 * after --duration-s it says "BYE" and reports "PASS n=<answers>
 * max_gap_ms=<longest wait between two answers>" or "FAIL: reason" on
 * stdout and in WL_DIR/client.result; exit 0 / 1. With --gap-log-ms, every
 * wait between two answers of at least MS is written to stderr as it ends:
 * "GAP <ms>" (a benchmark's per-migration figure).
 */
#include "zdtm.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define READY_FILE  "client.ready"
#define RESULT_FILE "client.result"

struct client {
	int fd;
	uint64_t sent, answered;
	uint64_t last_answer_ms, max_gap_ms;
	bool server_bye;
	char buf[4096];
	size_t len;
	uint64_t end_ms; /* 0: run until SIGUSR1 */
	uint64_t gap_log_ms;
};

static bool should_stop(const struct client *c)
{
	return zdtm_verify_requested() || (c->end_ms && zdtm_now_ms() >= c->end_ms);
}

static int connect_to(const struct sockaddr_in *a)
{
	uint64_t deadline = zdtm_now_ms() + 10000;
	int fd, r, one = 1;

	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		do
			r = connect(fd, (const struct sockaddr *)a, sizeof(*a));
		while (r < 0 && errno == EINTR);
		if (r == 0)
			break;
		close(fd);
		/* The server may still be starting: retry refusals for 10 s. */
		if (errno != ECONNREFUSED || zdtm_now_ms() >= deadline)
			return -1;
		zdtm_nap_ms(100);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Handles one answer line; false when the exchange is over. */
static bool on_line(struct client *c, const char *line)
{
	unsigned long long n, count;
	uint64_t now = zdtm_now_ms();

	if (strcmp(line, "BYE") == 0) {
		c->server_bye = true;
		return false;
	}
	if (sscanf(line, "ACK %llu %llu", &n, &count) != 2) {
		zdtm_note_failure("bad answer '%.40s'", line);
		return false;
	}
	if (n != c->sent || n != c->answered + 1) {
		zdtm_note_failure("answer for %llu after %llu answers (sent %llu)", n,
				  (unsigned long long)c->answered, (unsigned long long)c->sent);
		return false;
	}
	if (count != n) {
		zdtm_note_failure("server counted %llu requests for %llu: it lost its state", count,
				  n);
		return false;
	}
	c->answered = n;
	if (c->last_answer_ms && now - c->last_answer_ms > c->max_gap_ms)
		c->max_gap_ms = now - c->last_answer_ms;
	if (c->gap_log_ms && c->last_answer_ms && now - c->last_answer_ms >= c->gap_log_ms) {
		fprintf(stderr, "GAP %llu\n", (unsigned long long)(now - c->last_answer_ms));
		fflush(stderr);
	}
	c->last_answer_ms = now;
	return true;
}

/* Waits for the answer to the request just sent. False: exchange over, or
 * asked to stop while waiting. */
static bool await_answer(struct client *c)
{
	char *nl;
	ssize_t n;

	while (c->answered < c->sent) {
		if (should_stop(c))
			return false;
		if (!zdtm_wait_readable(c->fd, 100))
			continue;
		do
			n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			zdtm_note_failure("connection lost after %llu answers: %s",
					  (unsigned long long)c->answered,
					  n == 0 ? "EOF without BYE" : strerror(errno));
			return false;
		}
		c->len += (size_t)n;
		while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
			size_t used = (size_t)(nl - c->buf) + 1;
			*nl = '\0';
			if (!on_line(c, c->buf))
				return false;
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
		}
		if (c->len == sizeof(c->buf) - 1) {
			zdtm_note_failure("answer line too long");
			return false;
		}
	}
	return true;
}

static void run(struct client *c, unsigned interval_ms)
{
	char req[64];

	while (!should_stop(c)) {
		c->sent++;
		snprintf(req, sizeof(req), "SEQ %llu\n", (unsigned long long)c->sent);
		if (zdtm_write_full(c->fd, req, strlen(req)) < 0) {
			zdtm_note_failure("sending %llu: %s", (unsigned long long)c->sent,
					  strerror(errno));
			return;
		}
		if (!await_answer(c))
			return;
		/* Ready after the first answer: the server has accepted us, so a
		 * dump from now on never finds us in its accept queue. */
		if (c->answered == 1)
			zdtm_ready_as(READY_FILE);
		if (interval_ms)
			zdtm_sleep_ms(interval_ms);
	}
}

static void finish(struct client *c)
{
	char line[300];

	/* Wait for SIGUSR1 / the end even when the exchange ended early. */
	while (!should_stop(c))
		zdtm_sleep_ms(100);
	if (!c->server_bye && !zdtm_failed())
		zdtm_write_full(c->fd, "BYE\n", 4);
	close(c->fd);
	if (zdtm_failed()) {
		snprintf(line, sizeof(line), "FAIL: %s", zdtm_failure);
		zdtm_result_as(RESULT_FILE, line, false);
	}
	if (c->answered == 0)
		zdtm_result_as(RESULT_FILE, "FAIL: no answer received", false);
	snprintf(line, sizeof(line), "PASS n=%llu max_gap_ms=%llu", (unsigned long long)c->answered,
		 (unsigned long long)c->max_gap_ms);
	zdtm_result_as(RESULT_FILE, line, true);
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --addr IPV4 --port P [--interval-ms MS (20)] "
		"[--duration-s S (0: until SIGUSR1)] [--gap-log-ms MS]\n",
		prog);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"addr", required_argument, 0, 'a'},
					     {"port", required_argument, 0, 'p'},
					     {"interval-ms", required_argument, 0, 'i'},
					     {"duration-s", required_argument, 0, 'd'},
					     {"gap-log-ms", required_argument, 0, 'g'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct client c = {.fd = -1};
	const char *addr = NULL;
	unsigned interval = 20;
	long port = 0, duration = 0;
	int o;

	while ((o = getopt_long(argc, argv, "a:p:i:d:g:h", opts, NULL)) != -1) {
		switch (o) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = zdtm_parse_long("--port", optarg, 1, 65535);
			break;
		case 'i':
			interval = (unsigned)zdtm_parse_long("--interval-ms", optarg, 0, 60000);
			break;
		case 'd':
			duration = zdtm_parse_long("--duration-s", optarg, 0, 1L << 30);
			break;
		case 'g':
			c.gap_log_ms = (uint64_t)zdtm_parse_long("--gap-log-ms", optarg, 1, 60000);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (!addr || !port || inet_pton(AF_INET, addr, &a.sin_addr) != 1)
		usage(argv[0]);
	a.sin_port = htons((uint16_t)port);
	zdtm_init();
	c.fd = connect_to(&a);
	if (c.fd < 0) {
		fprintf(stderr, "tcp_client: cannot connect to %s:%ld: %s\n", addr, port,
			strerror(errno));
		return 2;
	}
	if (duration)
		c.end_ms = zdtm_now_ms() + (uint64_t)duration * 1000;
	run(&c, interval);
	finish(&c);
}
