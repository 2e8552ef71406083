/*
 * wl_storm_server [--port P (7200)] [--backlog N (512)] [--workers N --uid U]
 *
 * The inside half of tcp_storm: a server for clients that open a connection
 * per request. Listens on 0.0.0.0:P; every accepted connection sends one
 * line "REQ id" and gets "ANS id <served>" back (one write), then the server
 * closes it. Many connections at once (poll, non-blocking), as many as its
 * descriptor limit allows (raised to the hard limit); beyond that, as
 * servers do, it leaves them in the listen queue (EMFILE is no failure:
 * a replay of thousands of held SYNs after a freeze of seconds in the TCG
 * guest filled a worker's 1,024 descriptors). Ready once
 * listening. A line that is not "REQ id", or longer than a line can be, is
 * a failure. Verify: nothing noted and at least one request served; then
 * it exits (the listener closes: later clients are refused).
 * With --workers N the server is preforked, as web servers are: the parent
 * (root) listens and forks N workers that drop privileges to UID and GID U
 * (setresgid + setresuid) and serve the shared listener; the parent only
 * watches. Each worker keeps its counters and its uid in a shared page.
 * Verify then also asks: every worker alive, still running as U, none
 * noted a failure, and every request was served by a worker.
 */
#include "zdtm.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define MAXC 2048 /* connections open at once */
#define LINE 64
#define MAXW 16 /* preforked workers */

struct conn {
	int fd;
	size_t len;
	char buf[LINE];
};

struct storm {
	int lfd;
	struct conn c[MAXC];
	struct pollfd p[MAXC + 1];
	size_t n, limit; /* open now; at most (MAXC, or fewer file descriptors) */
	uint64_t accepted, served, dropped;
};

/* One worker's page of the shared mapping the parent reads at verify. */
struct wstat {
	volatile uint64_t accepted, served, dropped;
	volatile unsigned uid;
	char failure[sizeof(zdtm_failure) + 32];
};

static int listen_on(int port, int backlog)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd, one = 1;

	a.sin_addr.s_addr = htonl(INADDR_ANY);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, backlog) < 0)
		return -1;
	return fd;
}

static void drop(struct storm *s, size_t i)
{
	close(s->c[i].fd);
	s->c[i] = s->c[--s->n];
}

static void on_accept(struct storm *s)
{
	while (s->n < s->limit) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) { /* as servers do: later */
				s->limit = s->n > 1 ? s->n - 1 : 1;
				return;
			}
			if (errno != EAGAIN)
				zdtm_note_failure("accept: %s", strerror(errno));
			return;
		}
		s->accepted++;
		s->c[s->n++] = (struct conn){.fd = fd};
	}
}

/* Reads what came; answers a whole line. Returns true when done with it. */
static bool on_data(struct storm *s, struct conn *c)
{
	char ans[LINE + 32];
	unsigned long long id;
	ssize_t n;
	char *nl;

	do
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return false;
	if (n <= 0) { /* the client gave up (reset or EOF): nothing to answer */
		s->dropped++;
		return true;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (!(nl = strchr(c->buf, '\n'))) {
		if (c->len >= sizeof(c->buf) - 1) {
			zdtm_note_failure("request without end: '%.40s'", c->buf);
			return true;
		}
		return false;
	}
	if (sscanf(c->buf, "REQ %llu", &id) != 1) {
		zdtm_note_failure("bad request '%.40s'", c->buf);
		return true;
	}
	s->served++;
	int len = snprintf(ans, sizeof(ans), "ANS %llu %llu\n", id, (unsigned long long)s->served);
	if (zdtm_write_full(c->fd, ans, (size_t)len) != len)
		s->dropped++; /* the client is gone: it saw no answer at all */
	return true;
}

static void serve_once(struct storm *s, int timeout_ms)
{
	int r;

	/* at its limit the server leaves new connections in the listen queue */
	s->p[0] = (struct pollfd){.fd = s->n < s->limit ? s->lfd : -1, .events = POLLIN};
	for (size_t i = 0; i < s->n; i++)
		s->p[i + 1] = (struct pollfd){.fd = s->c[i].fd, .events = POLLIN};
	r = poll(s->p, s->n + 1, timeout_ms);
	if (r <= 0)
		return;
	for (size_t i = s->n; i-- > 0;)
		if (s->p[i + 1].revents && on_data(s, &s->c[i]))
			drop(s, i);
	if (s->p[0].revents & POLLIN)
		on_accept(s);
}

static __attribute__((noreturn)) void worker(struct storm *s, struct wstat *w, unsigned uid)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0) {
		snprintf(w->failure, sizeof(w->failure), "setresuid(%u): %s", uid, strerror(errno));
		_exit(1);
	}
	for (;;) {
		serve_once(s, 100);
		w->accepted = s->accepted, w->served = s->served, w->dropped = s->dropped;
		w->uid = (unsigned)getuid();
		if (zdtm_failed() && !w->failure[0])
			snprintf(w->failure, sizeof(w->failure), "%s", zdtm_failure);
	}
}

/* The parent of preforked workers: waits for the verify signal, then
 * checks every worker through the shared page and /proc. */
static void watch_workers(struct storm *s, struct wstat *w, pid_t *pid, int n, unsigned uid)
{
	while (!zdtm_verify_requested()) {
		zdtm_reap(0, NULL);
		zdtm_sleep_ms(100);
	}
	for (int i = 0; i < n; i++) {
		if (kill(pid[i], 0) < 0)
			zdtm_fail("worker %d (pid %d) is gone", i, (int)pid[i]);
		if (w[i].failure[0])
			zdtm_fail("worker %d: %s", i, w[i].failure);
		if (w[i].uid != uid)
			zdtm_fail("worker %d runs as uid %u, not %u", i, w[i].uid, uid);
		s->accepted += w[i].accepted, s->served += w[i].served, s->dropped += w[i].dropped;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, 0, 'p'},    {"backlog", required_argument, 0, 'b'},
	    {"workers", required_argument, 0, 'w'}, {"uid", required_argument, 0, 'u'},
	    {"help", no_argument, 0, 'h'},	    {0, 0, 0, 0}};
	static struct storm s;
	static pid_t pid[MAXW];
	int port = 7200, backlog = 512, nw = 0, o;
	unsigned uid = 65534;
	struct wstat *w = NULL;

	while ((o = getopt_long(argc, argv, "p:b:w:u:h", opts, NULL)) != -1) {
		if (o == 'p')
			port = (int)zdtm_parse_long("--port", optarg, 1, 65535);
		else if (o == 'b')
			backlog = (int)zdtm_parse_long("--backlog", optarg, 1, 65535);
		else if (o == 'w')
			nw = (int)zdtm_parse_long("--workers", optarg, 1, MAXW);
		else if (o == 'u')
			uid = (unsigned)zdtm_parse_long("--uid", optarg, 1, 65534);
		else {
			fprintf(stderr,
				"usage: %s [--port P (7200)] [--backlog N (512)] [--workers N "
				"--uid U (65534)]\n",
				argv[0]);
			return 2;
		}
	}
	/* connections as the process may hold file descriptors (a server
	 * caps its connections by its descriptor limit, raised to the hard one) */
	s.limit = zdtm_fd_budget(MAXC);
	zdtm_init();
	s.lfd = listen_on(port, backlog);
	if (s.lfd < 0)
		zdtm_fail("listen on port %d: %s", port, strerror(errno));
	if (nw) {
		w = mmap(NULL, sizeof(*w) * MAXW, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (w == MAP_FAILED)
			zdtm_fail("mmap: %s", strerror(errno));
		for (int i = 0; i < nw; i++) {
			w[i].uid = (unsigned)-1;
			pid[i] = fork();
			if (pid[i] < 0)
				zdtm_fail("fork: %s", strerror(errno));
			if (pid[i] == 0)
				worker(&s, &w[i], uid);
		}
	}
	zdtm_ready();
	if (nw)
		watch_workers(&s, w, pid, nw, uid);
	while (!nw && !zdtm_verify_requested()) {
		zdtm_reap(0, NULL);
		serve_once(&s, 100);
	}
	fprintf(stderr, "wl_storm_server: accepted %llu served %llu dropped %llu\n",
		(unsigned long long)s.accepted, (unsigned long long)s.served,
		(unsigned long long)s.dropped);
	zdtm_fail_if_noted();
	if (!s.served)
		zdtm_fail("no request served (%llu accepted)", (unsigned long long)s.accepted);
	zdtm_pass();
}
