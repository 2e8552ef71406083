/*
 * wl_workers [--workers N (2)] [--uid U (65534)]
 *
 * A server whose workers drop privileges: the parent (root) forks N
 * workers; each switches to UID and GID U (setresgid + setresuid, as web
 * servers do) and sends "<index> <uid> <count>" over its own pipe every
 * 50 ms. Ready once every worker reported under U. Verify: every worker is
 * alive, still runs as U, and its count went on (3 more beats within 5 s).
 */
#include "zdtm.h"

#include <getopt.h>

#define MAXW 16

struct worker {
	pid_t pid;
	int fd;
	unsigned long beats;
	unsigned uid;
	char buf[128];
	size_t len;
};

static __attribute__((noreturn)) void worker(int idx, unsigned uid, int fd)
{
	unsigned long n = 0;
	char line[64];

	if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0) {
		fprintf(stderr, "worker %d: setresuid(%u): %s\n", idx, uid, strerror(errno));
		_exit(1);
	}
	for (;;) {
		int len = snprintf(line, sizeof(line), "%d %u %lu\n", idx, (unsigned)getuid(), ++n);
		if (zdtm_write_full(fd, line, (size_t)len) < 0)
			_exit(0);
		zdtm_nap_ms(50);
	}
}

/* Reads what came from worker w; counts whole lines. */
static void drain(struct worker *w, int idx, unsigned want_uid)
{
	char *nl;
	ssize_t n;

	do
		n = read(w->fd, w->buf + w->len, sizeof(w->buf) - 1 - w->len);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n == 0 || errno != EAGAIN)
			zdtm_note_failure("worker %d: pipe closed (it died?)", idx);
		return;
	}
	w->len += (size_t)n;
	w->buf[w->len] = '\0';
	while ((nl = strchr(w->buf, '\n'))) {
		int i;
		unsigned u;
		unsigned long c;
		*nl = '\0';
		if (sscanf(w->buf, "%d %u %lu", &i, &u, &c) != 3 || i != idx || c != w->beats + 1)
			zdtm_note_failure("worker %d: bad beat '%.40s' after %lu", idx, w->buf,
					  w->beats);
		else if (u != want_uid)
			zdtm_note_failure("worker %d runs as uid %u, not %u", idx, u, want_uid);
		w->beats = c;
		w->uid = u;
		w->len -= (size_t)(nl + 1 - w->buf);
		memmove(w->buf, nl + 1, w->len + 1);
	}
}

static void poll_workers(struct worker *w, int n, unsigned uid, int ms)
{
	struct pollfd p[MAXW];

	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = w[i].fd, .events = POLLIN};
	if (poll(p, (nfds_t)n, ms) <= 0)
		return;
	for (int i = 0; i < n; i++)
		if (p[i].revents)
			drain(&w[i], i, uid);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"workers", required_argument, 0, 'w'},
					     {"uid", required_argument, 0, 'u'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	static struct worker w[MAXW];
	int n = 2, o;
	unsigned uid = 65534;

	while ((o = getopt_long(argc, argv, "w:u:h", opts, NULL)) != -1) {
		if (o == 'w')
			n = (int)zdtm_parse_long("--workers", optarg, 1, MAXW);
		else if (o == 'u')
			uid = (unsigned)zdtm_parse_long("--uid", optarg, 1, 65534);
		else {
			fprintf(stderr, "usage: %s [--workers N (2)] [--uid U (65534)]\n", argv[0]);
			return 2;
		}
	}
	zdtm_init();
	for (int i = 0; i < n; i++) {
		int p[2];
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			zdtm_fail("pipe: %s", strerror(errno));
		w[i].pid = fork();
		if (w[i].pid == 0) {
			close(p[0]);
			fcntl(p[1], F_SETFL, 0);
			worker(i, uid, p[1]);
		}
		close(p[1]);
		w[i].fd = p[0];
	}
	for (uint64_t end = zdtm_now_ms() + 10000; zdtm_now_ms() < end;) {
		int all = 1;
		for (int i = 0; i < n; i++)
			all = all && w[i].beats > 0;
		if (all)
			break;
		poll_workers(w, n, uid, 50);
	}
	zdtm_ready();
	while (!zdtm_verify_requested()) {
		zdtm_reap(0, NULL);
		poll_workers(w, n, uid, 100);
	}
	unsigned long before[MAXW];
	for (int i = 0; i < n; i++)
		before[i] = w[i].beats;
	for (uint64_t end = zdtm_now_ms() + 5000; zdtm_now_ms() < end && !zdtm_failed();) {
		int all = 1;
		for (int i = 0; i < n; i++)
			all = all && w[i].beats >= before[i] + 3;
		if (all)
			break;
		poll_workers(w, n, uid, 50);
	}
	zdtm_fail_if_noted();
	for (int i = 0; i < n; i++) {
		if (w[i].beats < before[i] + 3)
			zdtm_fail("worker %d stopped at %lu beats", i, w[i].beats);
		if (w[i].uid != uid)
			zdtm_fail("worker %d runs as uid %u, not %u", i, w[i].uid, uid);
	}
	zdtm_pass();
}
