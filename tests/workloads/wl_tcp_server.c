/*
 * wl_tcp_server [--port P (7000)]
 *
 * Listens on 0.0.0.0:P, accepts ONE connection (tcp_client) and answers each
 * "SEQ n\n" with "ACK n <requests served>\n". Ready once listening.
 * Verify: exactly one connection was ever accepted (the client never had to
 * reconnect), the numbers came in order without gaps, and the connection
 * is alive: one more request arrives within 5 s, unless the client already
 * said "BYE". The server then says "BYE" and exits. A second connection, an
 * EOF without "BYE" or a reset is a failure.
 */
#include "zdtm.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

struct server {
	int lfd, cfd;
	unsigned accepts;
	uint64_t served; /* requests answered, = last n when all is well */
	bool bye;	 /* the client said goodbye */
	char buf[4096];
	size_t len;
};

static int listen_on(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd, one = 1;

	a.sin_addr.s_addr = htonl(INADDR_ANY);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0)
		return -1;
	return fd;
}

static void on_accept(struct server *s)
{
	int fd, one = 1;

	do
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		if (errno != EAGAIN && errno != ECONNABORTED)
			zdtm_note_failure("accept: %s", strerror(errno));
		return;
	}
	s->accepts++;
	if (s->accepts > 1 || s->bye) {
		zdtm_note_failure("connection #%u accepted: the client reconnected", s->accepts);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->cfd = fd;
}

static void close_conn(struct server *s)
{
	close(s->cfd);
	s->cfd = -1;
}

static void on_line(struct server *s, const char *line)
{
	unsigned long long n;
	char ack[64];

	if (strcmp(line, "BYE") == 0) {
		s->bye = true;
		close_conn(s);
		return;
	}
	if (sscanf(line, "SEQ %llu", &n) != 1) {
		zdtm_note_failure("bad request '%.40s'", line);
		close_conn(s);
		return;
	}
	if (n != s->served + 1)
		zdtm_note_failure("request %llu after %llu: %s", n, (unsigned long long)s->served,
				  n <= s->served ? "repeated" : "gap");
	s->served = n;
	snprintf(ack, sizeof(ack), "ACK %llu %llu\n", n, (unsigned long long)s->served);
	if (zdtm_write_full(s->cfd, ack, strlen(ack)) < 0) {
		zdtm_note_failure("answering %llu: %s", n, strerror(errno));
		close_conn(s);
	}
}

static void on_data(struct server *s)
{
	ssize_t n;
	char *nl;

	do
		n = read(s->cfd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		zdtm_note_failure("connection lost after %llu requests: %s",
				  (unsigned long long)s->served,
				  n == 0 ? "EOF without BYE" : strerror(errno));
		close_conn(s);
		return;
	}
	s->len += (size_t)n;
	s->buf[s->len] = '\0';
	while (s->cfd >= 0 && (nl = memchr(s->buf, '\n', s->len)) != NULL) {
		size_t used = (size_t)(nl - s->buf) + 1;
		*nl = '\0';
		on_line(s, s->buf);
		memmove(s->buf, s->buf + used, s->len - used);
		s->len -= used;
	}
	if (s->len == sizeof(s->buf) - 1) {
		zdtm_note_failure("request line too long");
		close_conn(s);
	}
}

/* Serves until timeout_ms passes (< 0: until SIGUSR1). */
static void serve(struct server *s, int timeout_ms)
{
	uint64_t deadline = zdtm_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
	struct pollfd p[2];
	int r;

	for (;;) {
		if (timeout_ms < 0 && zdtm_verify_requested())
			return;
		if (timeout_ms >= 0 && zdtm_now_ms() >= deadline)
			return;
		p[0] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
		p[1] = (struct pollfd){.fd = s->cfd, .events = POLLIN};
		r = poll(p, 2, timeout_ms < 0 ? 1000 : (int)(deadline - zdtm_now_ms()));
		if (r < 0 && errno != EINTR) {
			zdtm_note_failure("poll: %s", strerror(errno));
			return;
		}
		if (zdtm_sigchld)
			zdtm_reap(0, NULL);
		if (r <= 0)
			continue;
		if (p[0].revents)
			on_accept(s);
		if (s->cfd >= 0 && p[1].revents)
			on_data(s);
	}
}

static void verify(struct server *s)
{
	uint64_t before = s->served, deadline = zdtm_now_ms() + 5000;

	zdtm_fail_if_noted();
	if (s->accepts == 0)
		zdtm_fail("no client ever connected");
	while (s->cfd >= 0 && !s->bye && s->served == before && zdtm_now_ms() < deadline)
		serve(s, 100);
	zdtm_fail_if_noted();
	if (s->served == 0)
		zdtm_fail("the client sent no request");
	if (!s->bye && s->served == before)
		zdtm_fail("no request for 5 s after %llu: connection stalled",
			  (unsigned long long)before);
	if (s->cfd >= 0) {
		zdtm_write_full(s->cfd, "BYE\n", 4);
		shutdown(s->cfd, SHUT_WR);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, 0, 'p'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	struct server s = {.cfd = -1};
	int port = 7000, o;

	while ((o = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
		if (o != 'p') {
			fprintf(stderr, "usage: %s [--port P (7000)]\n", argv[0]);
			return 2;
		}
		port = (int)zdtm_parse_long("--port", optarg, 1, 65535);
	}
	zdtm_init();
	s.lfd = listen_on(port);
	if (s.lfd < 0) {
		fprintf(stderr, "wl_tcp_server: cannot listen on 0.0.0.0:%d: %s\n", port,
			strerror(errno));
		return 2;
	}
	zdtm_ready();
	serve(&s, -1);
	verify(&s);
	zdtm_pass();
}
