/*
 * wl_loopback [--port P (7100)] [--interval-ms MS (10)]
 *
 * A server that talks to itself on 127.0.0.1 (what many servers do: a
 * health check, a local cache, a worker pool). It listens on 127.0.0.1:P and
 * keeps one loopback connection to itself, over which it sends "SEQ n" and
 * answers "ACK n" every interval. Before it is ready it checks itself: one
 * fresh connection to 127.0.0.1:P answered once (a tenant whose loopback is
 * down fails here, noted and reported at verify). Verify: the kept
 * connection still carries requests in order (20 more within 5 s), and a
 * fresh connection to 127.0.0.1:P is accepted and answered.
 * Fresh connections are made only before ready and at verify, never while
 * the harness may dump: a connection not yet accepted is in flight.
 */
#include "zdtm.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MSG 32 /* fixed-size messages: "SEQ n" / "ACK n", NUL padded */

struct lb {
	int port;
	int lfd, cli, srv; /* listener, kept connection: client and server end */
	uint64_t n;	   /* requests answered on the kept connection */
};

static struct sockaddr_in lo_addr(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int listen_lo(int port)
{
	struct sockaddr_in a = lo_addr(port);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Connects to 127.0.0.1:port and accepts that connection on lfd. */
static int pair_up(int lfd, int port, int *cli, int *srv, char *why, size_t n)
{
	struct sockaddr_in a = lo_addr(port);
	int c, s, r;

	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0) {
		snprintf(why, n, "socket: %s", strerror(errno));
		return -1;
	}
	do
		r = connect(c, (struct sockaddr *)&a, sizeof(a));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		snprintf(why, n, "connect 127.0.0.1:%d: %s", port, strerror(errno));
		close(c);
		return -1;
	}
	do
		s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (s < 0 && errno == EINTR);
	if (s < 0) {
		snprintf(why, n, "accept on 127.0.0.1:%d: %s", port, strerror(errno));
		close(c);
		return -1;
	}
	*cli = c;
	*srv = s;
	return 0;
}

/* One request "SEQ n" from cli, answered "ACK n" by srv. */
static int exchange(int cli, int srv, uint64_t n, char *why, size_t len)
{
	char out[MSG] = {0}, in[MSG] = {0}, want[MSG] = {0};

	snprintf(out, sizeof(out), "SEQ %llu", (unsigned long long)n);
	if (zdtm_write_full(cli, out, MSG) != MSG || zdtm_read_full(srv, in, MSG) != MSG) {
		snprintf(why, len, "request %llu lost: %s", (unsigned long long)n, strerror(errno));
		return -1;
	}
	if (memcmp(in, out, MSG) != 0) {
		snprintf(why, len, "server got '%.31s', sent '%.31s'", in, out);
		return -1;
	}
	snprintf(out, sizeof(out), "ACK %llu", (unsigned long long)n);
	memcpy(want, out, MSG);
	if (zdtm_write_full(srv, out, MSG) != MSG || zdtm_read_full(cli, in, MSG) != MSG) {
		snprintf(why, len, "answer %llu lost: %s", (unsigned long long)n, strerror(errno));
		return -1;
	}
	if (memcmp(in, want, MSG) != 0) {
		snprintf(why, len, "client got '%.31s', want '%.31s'", in, want);
		return -1;
	}
	return 0;
}

/* A fresh connection to ourselves, answered once, then closed. */
static int fresh_check(struct lb *l, char *why, size_t n)
{
	int c, s, r;

	if (pair_up(l->lfd, l->port, &c, &s, why, n) < 0)
		return -1;
	r = exchange(c, s, 1, why, n);
	close(c);
	close(s);
	return r;
}

static void start(struct lb *l)
{
	char why[200];

	l->cli = l->srv = -1;
	l->lfd = listen_lo(l->port);
	if (l->lfd < 0) {
		zdtm_note_failure("listen on 127.0.0.1:%d: %s (loopback down?)", l->port,
				  strerror(errno));
		return;
	}
	if (fresh_check(l, why, sizeof(why)) < 0 ||
	    pair_up(l->lfd, l->port, &l->cli, &l->srv, why, sizeof(why)) < 0)
		zdtm_note_failure("before ready: %s (loopback down?)", why);
}

static void tick(struct lb *l)
{
	char why[200];

	if (l->cli < 0 || zdtm_failed())
		return;
	if (exchange(l->cli, l->srv, l->n + 1, why, sizeof(why)) < 0)
		zdtm_note_failure("kept connection: %s", why);
	else
		l->n++;
}

static void verify(struct lb *l)
{
	uint64_t n0 = l->n, deadline = zdtm_now_ms() + 5000;
	char why[200];

	zdtm_fail_if_noted();
	while (l->n < n0 + 20 && zdtm_now_ms() < deadline && !zdtm_failed())
		tick(l);
	zdtm_fail_if_noted();
	if (l->n < n0 + 20)
		zdtm_fail("kept connection: only %llu requests in 5 s",
			  (unsigned long long)(l->n - n0));
	if (fresh_check(l, why, sizeof(why)) < 0)
		zdtm_fail("fresh connection after %llu requests: %s", (unsigned long long)l->n,
			  why);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"port", required_argument, 0, 'p'},
					     {"interval-ms", required_argument, 0, 'i'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	struct lb l = {.port = 7100};
	unsigned interval = 10;
	int o;

	while ((o = getopt_long(argc, argv, "p:i:h", opts, NULL)) != -1) {
		if (o == 'p')
			l.port = (int)zdtm_parse_long("--port", optarg, 1, 65535);
		else if (o == 'i')
			interval = (unsigned)zdtm_parse_long("--interval-ms", optarg, 1, 60000);
		else {
			fprintf(stderr, "usage: %s [--port P (7100)] [--interval-ms MS (10)]\n",
				argv[0]);
			return 2;
		}
	}
	zdtm_init();
	start(&l);
	tick(&l);
	zdtm_ready();
	while (!zdtm_sleep_ms(interval)) {
		zdtm_reap(0, NULL);
		tick(&l);
	}
	verify(&l);
	zdtm_pass();
}
