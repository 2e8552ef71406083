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
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#endif
