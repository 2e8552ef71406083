/*
 * zdtm.h: the workload side of the test protocol (after CRIU's zdtm suite).
 *
 * A workload sets up its state, calls zdtm_ready(), keeps working until
 * SIGUSR1 asks it to verify (zdtm_verify_requested()), then reports with
 * zdtm_pass() / zdtm_fail(). Failures seen while running are recorded with
 * zdtm_note_failure() and reported at verify time, so a harness always gets
 * its answer by the same route. See tests/workloads/README.md.
 *
 * Everything here is static inline: each workload is one .c file.
 * Every syscall copes with EINTR: a CRIU restore interrupts blocking calls.
 */
#ifndef FERRY_ZDTM_H
#define FERRY_ZDTM_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ZDTM_READY_FILE	 "wl.ready"
#define ZDTM_RESULT_FILE "wl.result"

/* Set by the SIGUSR1 handler: the harness asks for verification. */
static volatile sig_atomic_t zdtm_sigusr1;
/* Set by the SIGCHLD handler: some child changed state. */
static volatile sig_atomic_t zdtm_sigchld;
/* First failure seen while running (empty: none). */
static char zdtm_failure[256];

static inline void zdtm_on_usr1(int sig)
{
	(void)sig;
	zdtm_sigusr1 = 1;
}

static inline void zdtm_on_chld(int sig)
{
	(void)sig;
	zdtm_sigchld = 1;
}

static inline bool zdtm_verify_requested(void)
{
	return zdtm_sigusr1 != 0;
}

/* Protocol directory: $WL_DIR, else /tmp. */
static inline const char *zdtm_dir(void)
{
	const char *d = getenv("WL_DIR");
	return d && *d ? d : "/tmp";
}

static inline void zdtm_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", zdtm_dir(), name);
}

static inline uint64_t zdtm_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Signal handlers without SA_RESTART: blocking calls return EINTR so loops
 * notice SIGUSR1. SIGPIPE is ignored: a dead peer shows up as EPIPE. */
/* How many connections a workload may keep open at once: want, or fewer
 * where the descriptor limit (raised to the hard one first, as servers and
 * load generators do) leaves less, 64 kept for everything else. */
static inline size_t zdtm_fd_budget(size_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return want;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= want + 64)
		return want;
	return rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64;
}

static inline void zdtm_init(void)
{
	struct sigaction sa;

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = zdtm_on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = zdtm_on_chld;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static inline ssize_t zdtm_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Reads exactly len bytes; returns len, 0 on EOF before any byte, -1 on error
 * or EOF in the middle (errno = EPIPE then). */
static inline ssize_t zdtm_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			if (done == 0)
				return 0;
			errno = EPIPE;
			return -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Writes WL_DIR/name atomically (temporary file + rename). */
static inline int zdtm_write_file(const char *name, const char *text)
{
	char path[4096], tmp[4200];
	int fd, rc = 0;

	zdtm_path(path, sizeof(path), name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", zdtm_dir(), name, (int)getpid());
	do
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	if (zdtm_write_full(fd, text, strlen(text)) < 0)
		rc = -1;
	if (close(fd) < 0 && errno != EINTR)
		rc = -1;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -1;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* Reads WL_DIR/name into buf (NUL-terminated); returns its length or -1. */
static inline ssize_t zdtm_read_file(const char *name, char *buf, size_t size)
{
	char path[4096];
	ssize_t n, total = 0;
	int fd;

	zdtm_path(path, sizeof(path), name);
	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	while ((size_t)total + 1 < size) {
		n = read(fd, buf + total, size - 1 - (size_t)total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

/* Records the first failure seen while running; reported at verify time. */
__attribute__((format(printf, 1, 2))) static inline void zdtm_note_failure(const char *fmt, ...)
{
	va_list ap;

	if (zdtm_failure[0])
		return;
	va_start(ap, fmt);
	vsnprintf(zdtm_failure, sizeof(zdtm_failure), fmt, ap);
	va_end(ap);
	fprintf(stderr, "workload failure: %s\n", zdtm_failure);
}

static inline bool zdtm_failed(void)
{
	return zdtm_failure[0] != '\0';
}

/* Announces readiness: WL_DIR/<name> holds our pid; "READY" on stdout. */
static inline void zdtm_ready_as(const char *name)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (zdtm_write_file(name, pid) < 0)
		fprintf(stderr, "cannot write %s/%s: %s\n", zdtm_dir(), name, strerror(errno));
	printf("READY\n");
	fflush(stdout);
}

static inline void zdtm_ready(void)
{
	zdtm_ready_as(ZDTM_READY_FILE);
}

/* Writes the one-line result to WL_DIR/<name> and stdout, then exits
 * 0 (PASS) or 1 (FAIL). */
static inline __attribute__((noreturn)) void zdtm_result_as(const char *name, const char *line,
							    bool pass)
{
	char text[512];

	snprintf(text, sizeof(text), "%s\n", line);
	if (zdtm_write_file(name, text) < 0)
		fprintf(stderr, "cannot write %s/%s: %s\n", zdtm_dir(), name, strerror(errno));
	printf("%s", text);
	fflush(stdout);
	exit(pass ? 0 : 1);
}

static inline __attribute__((noreturn)) void zdtm_pass(void)
{
	zdtm_result_as(ZDTM_RESULT_FILE, "PASS", true);
}

__attribute__((format(printf, 1, 2))) static inline __attribute__((noreturn)) void
zdtm_fail(const char *fmt, ...)
{
	char reason[400], line[420];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "FAIL: %s", reason);
	zdtm_result_as(ZDTM_RESULT_FILE, line, false);
}

/* Reports a failure recorded while running, if any (does not return then). */
static inline void zdtm_fail_if_noted(void)
{
	if (zdtm_failed())
		zdtm_fail("%s", zdtm_failure);
}

/* Sleeps ms milliseconds; returns early (true) once verification is asked. */
static inline bool zdtm_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (!zdtm_verify_requested()) {
		if (nanosleep(&ts, &ts) == 0)
			return zdtm_verify_requested();
		if (errno != EINTR)
			return zdtm_verify_requested();
	}
	return true;
}

/* Sleeps ms milliseconds, ignoring SIGUSR1 (used while verifying). */
static inline void zdtm_nap_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Reaps every exited child (we may be PID 1 and inherit orphans). The exit
 * status of `watched` (if it exited) is stored in *status and true returned. */
static inline bool zdtm_reap(pid_t watched, int *status)
{
	bool seen = false;
	int st;
	pid_t p;

	zdtm_sigchld = 0;
	for (;;) {
		p = waitpid(-1, &st, WNOHANG);
		if (p < 0 && errno == EINTR)
			continue;
		if (p <= 0)
			break;
		if (watched > 0 && p == watched) {
			if (status)
				*status = st;
			seen = true;
		}
	}
	return seen;
}

/* splitmix64: the recomputable pseudo-random source of every workload. */
static inline uint64_t zdtm_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Parses a non-negative integer option value or exits with a usage error. */
static inline long zdtm_parse_long(const char *opt, const char *val, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(val, &end, 10);
	if (errno || end == val || *end || v < min || v > max) {
		fprintf(stderr, "invalid value for %s: '%s' (expected %ld..%ld)\n", opt, val, min,
			max);
		exit(2);
	}
	return v;
}

/*
 * Ping-pong between a parent and its child over two fds (pipes) or one
 * (a stream socket on each side): the parent sends 1, 2, 3, ... as 8-byte
 * numbers, the child checks each is the next one and echoes it back. A stop
 * message makes the child answer with the count it saw and exit 0 (no gap,
 * no duplicate) or 1.
 */
#define ZDTM_PP_STOP UINT64_MAX

struct zdtm_pp {
	int wfd, rfd; /* parent's ends */
	pid_t child;
	uint64_t seq; /* exchanges completed */
	bool broken;  /* a failure was noted: stop exchanging */
	int status;   /* child's wait status once reaped */
	bool reaped;
};

static inline __attribute__((noreturn)) void zdtm_pp_child(int rfd, int wfd)
{
	uint64_t v, expect = 1;
	bool bad = false;
	ssize_t n;

	for (;;) {
		n = zdtm_read_full(rfd, &v, sizeof(v));
		if (n <= 0)
			_exit(3); /* parent gone */
		if (v == ZDTM_PP_STOP) {
			v = expect - 1;
			zdtm_write_full(wfd, &v, sizeof(v));
			_exit(bad ? 1 : 0);
		}
		if (v != expect && !bad) {
			fprintf(stderr, "ping-pong child: got %llu, expected %llu\n",
				(unsigned long long)v, (unsigned long long)expect);
			bad = true;
		}
		expect = v + 1;
		if (zdtm_write_full(wfd, &v, sizeof(v)) < 0)
			_exit(4);
	}
}

/* Waits until fd is readable; timeout_ms < 0: forever. 1 ready, 0 timeout. */
static inline int zdtm_wait_readable(int fd, int timeout_ms)
{
	uint64_t deadline = zdtm_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = timeout_ms < 0 ? -1 : (int)(deadline - zdtm_now_ms());
		int r;

		if (timeout_ms >= 0 && zdtm_now_ms() >= deadline)
			left = 0;
		r = poll(&p, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 0)
			return 1; /* readable, hung up, or error: read() tells */
		if (left == 0)
			return 0;
	}
}

/* One exchange; false (and a noted failure) when it went wrong. */
static inline bool zdtm_pp_step(struct zdtm_pp *pp, int timeout_ms)
{
	uint64_t v = pp->seq + 1, back = 0;
	ssize_t n;

	if (pp->broken)
		return false;
	if (zdtm_write_full(pp->wfd, &v, sizeof(v)) < 0) {
		zdtm_note_failure("ping-pong: send %llu: %s", (unsigned long long)v,
				  strerror(errno));
		goto broken;
	}
	if (!zdtm_wait_readable(pp->rfd, timeout_ms)) {
		zdtm_note_failure("ping-pong: no answer to %llu within %d ms",
				  (unsigned long long)v, timeout_ms);
		goto broken;
	}
	n = zdtm_read_full(pp->rfd, &back, sizeof(back));
	if (n <= 0) {
		zdtm_note_failure("ping-pong: answer to %llu: %s", (unsigned long long)v,
				  n == 0 ? "peer closed (child died?)" : strerror(errno));
		goto broken;
	}
	if (back != v) {
		zdtm_note_failure("ping-pong: sent %llu, got back %llu", (unsigned long long)v,
				  (unsigned long long)back);
		goto broken;
	}
	pp->seq = v;
	return true;
broken:
	pp->broken = true;
	return false;
}

/* Reaps children; notes a failure if the ping-pong child died. */
static inline void zdtm_pp_reap(struct zdtm_pp *pp)
{
	if (!pp->reaped && zdtm_reap(pp->child, &pp->status)) {
		pp->reaped = true;
		zdtm_note_failure("ping-pong child %d died (wait status 0x%x)", (int)pp->child,
				  pp->status);
	} else if (pp->reaped) {
		zdtm_reap(0, NULL);
	}
}

/* Runs exchanges every interval_ms until SIGUSR1. */
static inline void zdtm_pp_run(struct zdtm_pp *pp, unsigned interval_ms)
{
	while (!zdtm_sleep_ms(interval_ms)) {
		if (zdtm_sigchld)
			zdtm_pp_reap(pp);
		zdtm_pp_step(pp, -1);
	}
}

/* Verify: the exchange still progresses (20 more within 5 s), then the
 * child is stopped and must agree on the count and exit 0. */
static inline void zdtm_pp_verify(struct zdtm_pp *pp)
{
	uint64_t n0 = pp->seq, deadline = zdtm_now_ms() + 5000, count = 0;
	ssize_t n;
	pid_t p;

	zdtm_fail_if_noted();
	if (pp->seq == 0)
		zdtm_fail("ping-pong never exchanged anything");
	while (pp->seq < n0 + 20 && zdtm_now_ms() < deadline) {
		if (!zdtm_pp_step(pp, 5000))
			zdtm_fail_if_noted();
		zdtm_nap_ms(1);
	}
	if (pp->seq < n0 + 20)
		zdtm_fail("ping-pong stalled after %llu exchanges", (unsigned long long)pp->seq);
	count = ZDTM_PP_STOP;
	if (zdtm_write_full(pp->wfd, &count, sizeof(count)) < 0 ||
	    !zdtm_wait_readable(pp->rfd, 5000) ||
	    (n = zdtm_read_full(pp->rfd, &count, sizeof(count))) <= 0)
		zdtm_fail("ping-pong child did not answer the stop message");
	if (count != pp->seq)
		zdtm_fail("ping-pong child saw %llu exchanges, parent %llu",
			  (unsigned long long)count, (unsigned long long)pp->seq);
	do
		p = waitpid(pp->child, &pp->status, 0);
	while (p < 0 && errno == EINTR);
	if (p != pp->child)
		zdtm_fail("cannot wait for the ping-pong child %d: %s", (int)pp->child,
			  strerror(errno));
	if (!WIFEXITED(pp->status) || WEXITSTATUS(pp->status) != 0)
		zdtm_fail("ping-pong child ended with wait status 0x%x (gap or duplicate?)",
			  pp->status);
}

#endif
