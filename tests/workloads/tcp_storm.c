/*
 * tcp_storm --addr A --port P [--rate N (500)] [--timeout-s S (30)]
 *
 * The outside half of wl_storm_server: a client that opens a new connection
 * per request, N connections a second (non-blocking, many at once). Each
 * connection sends "REQ id" and must end in exactly one of:
 *   answered  one whole line "ANS id k" and then EOF;
 *   refused   no byte of an answer: connect refused or timed out by the
 *             kernel, a reset or EOF before any answer byte.
 * Like a careful real client it uses TCP keepalive (1 s idle, 1 s interval,
 * 3 probes): a connection the server had not accepted when it was dumped
 * (its request already acknowledged by the kernel) exists nowhere after the
 * move, and only a probe, answered by a reset where the server now runs,
 * tells the client so (refused).
 * A whole answer line whose connection then ends in a reset or a timeout
 * instead of EOF counts as answered ("unended": the server closed the
 * connection just as it was frozen, and its FIN was dropped by the network
 * lock; a closed socket does not move).
 * Anything else fails: a partial or wrong answer, a second line (answered
 * twice), a reset after part of an answer, or no outcome within --timeout-s
 * (counted as lost). Like any load generator it has a concurrency limit
 * (MAXC connections open at once, fewer where RLIMIT_NOFILE's hard limit
 * is lower): while a long freeze keeps that many
 * waiting, the requests due are not sent (counted as "throttled"), as a
 * client pool would hold them back; a server that never answers still fails
 * by the timeout. Ready once the first answer came back: "READY" on stdout
 * and WL_DIR/storm.ready. On SIGUSR1 it stops opening connections, waits for
 * the open ones, and reports "PASS answered=A refused=R max_wait_ms=W
 * max_gap_ms=G" (W: longest connect-to-answer time of an answered request; G:
 * longest time without any answer) or "FAIL: reason" on stdout and in
 * WL_DIR/storm.result; exit 0 / 1.
 */
#include "zdtm.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_snd_wnd */
#include <sys/socket.h>

#define READY_FILE  "storm.ready"
#define RESULT_FILE "storm.result"
#define MAXC	    2048
#define LINE	    128

struct slot {
	int fd;
	bool sent;
	uint64_t id, t0;
	size_t len;
	char buf[LINE];
};

struct storm {
	struct sockaddr_in addr;
	struct slot s[MAXC];
	struct pollfd p[MAXC];
	size_t n, limit; /* open now; at most (MAXC, or fewer file descriptors) */
	uint64_t next_id, answered, refused, lost, throttled, unended, max_open, timeout_ms;
	uint64_t max_wait_ms, max_gap_ms, last_answer_ms, t_start;
};

static void done(struct storm *st, size_t i)
{
	close(st->s[i].fd);
	st->s[i] = st->s[--st->n];
}

static void open_one(struct storm *st)
{
	struct slot *s;
	int fd, r;

	if (st->n == st->limit) { /* the client's concurrency limit: hold this one back */
		st->throttled++;
		return;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		zdtm_note_failure("socket: %s", strerror(errno));
		return;
	}
	/* keepalive: a connection the server never accepted (skipped at a dump)
	 * has no socket on the destination; the probe gets its reset there */
	int one = 1, idle = 1, cnt = 3;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	s = &st->s[st->n++];
	if (st->n > st->max_open)
		st->max_open = st->n;
	*s = (struct slot){.fd = fd, .id = ++st->next_id, .t0 = zdtm_now_ms()};
	do
		r = connect(fd, (struct sockaddr *)&st->addr, sizeof(st->addr));
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno != EINPROGRESS) {
		if (errno == EADDRNOTAVAIL || errno == EAGAIN)
			zdtm_note_failure("connect: %s (out of local ports?)", strerror(errno));
		st->refused++;
		done(st, st->n - 1);
	}
}

/* Connected (or not): send the request. True when the slot is finished. */
static bool on_connected(struct storm *st, struct slot *s)
{
	char req[64];
	int e = 0;
	socklen_t l = sizeof(e);

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0 || e) {
		st->refused++;
		return true;
	}
	int n = snprintf(req, sizeof(req), "REQ %llu\n", (unsigned long long)s->id);
	if (zdtm_write_full(s->fd, req, (size_t)n) != n) {
		st->refused++;
		return true;
	}
	s->sent = true;
	return false;
}

/* The whole answer came (EOF): exactly one line for our id. */
static void check_answer(struct storm *st, struct slot *s)
{
	unsigned long long id, k;
	char *nl = memchr(s->buf, '\n', s->len);
	uint64_t now = zdtm_now_ms();

	s->buf[s->len] = '\0';
	if (!nl || (size_t)(nl - s->buf) + 1 != s->len ||
	    sscanf(s->buf, "ANS %llu %llu", &id, &k) != 2 || id != s->id) {
		zdtm_note_failure("request %llu: answer '%.60s' (%zu bytes) is not one line for it",
				  (unsigned long long)s->id, s->buf, s->len);
		return;
	}
	st->answered++;
	if (now - s->t0 > st->max_wait_ms)
		st->max_wait_ms = now - s->t0;
	if (st->last_answer_ms && now - st->last_answer_ms > st->max_gap_ms)
		st->max_gap_ms = now - st->last_answer_ms;
	st->last_answer_ms = now;
	if (st->answered == 1)
		zdtm_ready_as(READY_FILE);
}

/* Readable: part of the answer, its end, or a refusal. True when finished. */
static bool on_readable(struct storm *st, struct slot *s)
{
	ssize_t n;

	do
		n = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return false;
	if (n > 0) {
		s->len += (size_t)n;
		if (s->len < sizeof(s->buf) - 1)
			return false;
		zdtm_note_failure("request %llu: answer too long", (unsigned long long)s->id);
		return true;
	}
	if (s->len == 0) /* reset or EOF before any answer byte */
		st->refused++;
	else if (n < 0 && s->buf[s->len - 1] == '\n') {
		/* the whole answer came, its end did not: the server had closed
		 * the connection at the freeze and its FIN was dropped by the
		 * network lock (a closed socket is not moved); answered once */
		st->unended++;
		check_answer(st, s);
	} else if (n < 0)
		zdtm_note_failure("request %llu: %s after %zu bytes of the answer '%.40s'",
				  (unsigned long long)s->id, strerror(errno), s->len, s->buf);
	else
		check_answer(st, s);
	return true;
}

/* What the kernel says of a connection that had no outcome in time: whether
 * the request waits for its retransmission (unacked data, backoff) or was
 * acknowledged and the answer never came. */
static void tcp_state(int fd, char *buf, size_t n)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0) {
		snprintf(buf, n, "no TCP_INFO: %s", strerror(errno));
		return;
	}
	if (getsockname(fd, (struct sockaddr *)&me, &ml) < 0)
		me.sin_port = 0;
	snprintf(buf, n,
		 "port %u state %u unacked %u notsent %u snd_wnd %u cwnd %u probes %u "
		 "retransmits %u backoff %u rto_ms %u rtt_ms %u last_data_sent_ms %u "
		 "last_ack_recv_ms %u total_retrans %u segs_out %u data_segs_out %u "
		 "bytes_acked %llu",
		 ntohs(me.sin_port), ti.tcpi_state, ti.tcpi_unacked, ti.tcpi_notsent_bytes,
		 ti.tcpi_snd_wnd, ti.tcpi_snd_cwnd, ti.tcpi_probes, ti.tcpi_retransmits,
		 ti.tcpi_backoff, ti.tcpi_rto / 1000, ti.tcpi_rtt / 1000, ti.tcpi_last_data_sent,
		 ti.tcpi_last_ack_recv, ti.tcpi_total_retrans, ti.tcpi_segs_out,
		 ti.tcpi_data_segs_out, (unsigned long long)ti.tcpi_bytes_acked);
}

static void poll_once(struct storm *st, int timeout_ms)
{
	uint64_t now = zdtm_now_ms();

	for (size_t i = 0; i < st->n; i++)
		st->p[i] =
		    (struct pollfd){.fd = st->s[i].fd, .events = st->s[i].sent ? POLLIN : POLLOUT};
	size_t n = st->n;
	if (poll(st->p, n, timeout_ms) < 0)
		return;
	for (size_t i = n; i-- > 0;) {
		struct slot *s = &st->s[i];
		bool fin = false;
		if (st->p[i].revents)
			fin = s->sent ? on_readable(st, s) : on_connected(st, s);
		if (!fin && now - s->t0 > st->timeout_ms) {
			char why[400];
			st->lost++;
			tcp_state(s->fd, why, sizeof(why));
			zdtm_note_failure("request %llu: no outcome in %llu ms (%s; %s)",
					  (unsigned long long)s->id,
					  (unsigned long long)st->timeout_ms,
					  s->sent ? "no answer" : "not connected", why);
			if (st->lost <= 20)
				fprintf(stderr, "tcp_storm: +%llu ms: request %llu lost (%s; %s)\n",
					(unsigned long long)(now - st->t_start),
					(unsigned long long)s->id,
					s->sent ? "no answer" : "not connected", why);
			fin = true;
		}
		if (fin)
			done(st, i);
	}
}

static void run(struct storm *st, unsigned rate)
{
	uint64_t t0 = zdtm_now_ms(), opened = 0;

	st->t_start = t0;
	while (!zdtm_verify_requested()) {
		uint64_t due = (zdtm_now_ms() - t0) * rate / 1000;
		while (opened < due && !zdtm_failed()) {
			open_one(st);
			opened++;
		}
		poll_once(st, 1);
	}
	while (st->n) /* the open ones end by themselves or by the timeout */
		poll_once(st, 10);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"addr", required_argument, 0, 'a'}, {"port", required_argument, 0, 'p'},
	    {"rate", required_argument, 0, 'r'}, {"timeout-s", required_argument, 0, 't'},
	    {"help", no_argument, 0, 'h'},	 {0, 0, 0, 0}};
	static struct storm st;
	const char *addr = NULL;
	long port = 0, rate = 500, tmo = 30;
	char line[400];
	int o;

	while ((o = getopt_long(argc, argv, "a:p:r:t:h", opts, NULL)) != -1) {
		if (o == 'a')
			addr = optarg;
		else if (o == 'p')
			port = zdtm_parse_long("--port", optarg, 1, 65535);
		else if (o == 'r')
			rate = zdtm_parse_long("--rate", optarg, 1, 100000);
		else if (o == 't')
			tmo = zdtm_parse_long("--timeout-s", optarg, 1, 3600);
		else
			addr = NULL, port = 0, argc = 0;
	}
	st.addr.sin_family = AF_INET;
	st.addr.sin_port = htons((uint16_t)port);
	if (!addr || !port || inet_pton(AF_INET, addr, &st.addr.sin_addr) != 1) {
		fprintf(stderr,
			"usage: %s --addr IPV4 --port P [--rate N (500)] [--timeout-s S (30)]\n",
			argv[0]);
		return 2;
	}
	st.timeout_ms = (uint64_t)tmo * 1000;
	/* as many connections as the process may hold file descriptors */
	st.limit = zdtm_fd_budget(MAXC);
	zdtm_init();
	run(&st, (unsigned)rate);
	if (zdtm_failed()) {
		snprintf(line, sizeof(line), "FAIL: %s (answered=%llu refused=%llu lost=%llu)",
			 zdtm_failure, (unsigned long long)st.answered,
			 (unsigned long long)st.refused, (unsigned long long)st.lost);
		zdtm_result_as(RESULT_FILE, line, false);
	}
	if (!st.answered)
		zdtm_result_as(RESULT_FILE, "FAIL: no answer received", false);
	snprintf(line, sizeof(line),
		 "PASS answered=%llu refused=%llu max_wait_ms=%llu max_gap_ms=%llu "
		 "max_open=%llu throttled=%llu unended=%llu",
		 (unsigned long long)st.answered, (unsigned long long)st.refused,
		 (unsigned long long)st.max_wait_ms, (unsigned long long)st.max_gap_ms,
		 (unsigned long long)st.max_open, (unsigned long long)st.throttled,
		 (unsigned long long)st.unended);
	zdtm_result_as(RESULT_FILE, line, true);
}
