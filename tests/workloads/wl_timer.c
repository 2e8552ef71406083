/*
 * wl_timer
 *
 * A POSIX interval timer (CLOCK_MONOTONIC, SIGRTMIN, every 50 ms), a
 * timerfd (CLOCK_MONOTONIC, every 100 ms) read as it fires, and a "parked"
 * timerfd (the same, never read before verification). Verify: every interval
 * is still set (timer_gettime / timerfd_gettime it_interval), every timer is
 * armed, and each still fires: each count grows within a few seconds.
 *
 * The parked timerfd is always expired and unread when the tenant is dumped,
 * the state in which the kernel shows a periodic timerfd with it_value 0
 * (it re-arms it only when it is read). A dump that saves that as it stands
 * restores a disarmed timer (docs/dump-restore.md, "Timer fix-up"); the read
 * timerfd hits the same state only when it expires while the tenant is frozen.
 */
#include "zdtm.h"

#include <stdatomic.h>
#include <sys/timerfd.h>

#define TIMER_NS   50000000L
#define TIMERFD_NS 100000000L

static atomic_ulong timer_ticks;

static void on_timer(int sig)
{
	(void)sig;
	atomic_fetch_add(&timer_ticks, 1);
}

/* Reads the timerfd's expirations if any are ready within timeout_ms. */
static uint64_t drain_timerfd(int tfd, int timeout_ms)
{
	uint64_t exp = 0;
	ssize_t n;

	if (!zdtm_wait_readable(tfd, timeout_ms))
		return 0;
	do
		n = read(tfd, &exp, sizeof(exp));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(exp)) {
		if (n < 0 && errno == EAGAIN)
			return 0;
		zdtm_note_failure("read from the timerfd: %s",
				  n < 0 ? strerror(errno) : "short read");
		return 0;
	}
	return exp;
}

static void check_interval(const char *what, const struct itimerspec *it, long want_ns)
{
	if (it->it_interval.tv_sec != 0 || it->it_interval.tv_nsec != want_ns)
		zdtm_fail("%s interval is %lld.%09ld s, expected 0.%09ld s", what,
			  (long long)it->it_interval.tv_sec, it->it_interval.tv_nsec, want_ns);
	if (it->it_value.tv_sec == 0 && it->it_value.tv_nsec == 0)
		zdtm_fail("%s is disarmed", what);
}

static void verify(timer_t timer, int tfd, int pfd, uint64_t *fd_ticks)
{
	struct itimerspec it;
	unsigned long t0 = atomic_load(&timer_ticks);
	uint64_t f0 = *fd_ticks, deadline = zdtm_now_ms() + 5000, parked, p0;

	zdtm_fail_if_noted();
	if (timer_gettime(timer, &it) < 0)
		zdtm_fail("timer_gettime: %s", strerror(errno));
	check_interval("POSIX timer", &it, TIMER_NS);
	if (timerfd_gettime(tfd, &it) < 0)
		zdtm_fail("timerfd_gettime: %s", strerror(errno));
	check_interval("timerfd", &it, TIMERFD_NS);
	if (timerfd_gettime(pfd, &it) < 0)
		zdtm_fail("timerfd_gettime (parked timerfd): %s", strerror(errno));
	check_interval("parked timerfd", &it, TIMERFD_NS);
	/* its expiration pending since before the dump, then 3 more */
	parked = drain_timerfd(pfd, 0);
	if (parked == 0)
		zdtm_fail("parked timerfd lost its pending expiration");
	p0 = parked;

	while ((atomic_load(&timer_ticks) < t0 + 3 || *fd_ticks < f0 + 3 || parked < p0 + 3) &&
	       zdtm_now_ms() < deadline) {
		*fd_ticks += drain_timerfd(tfd, 100);
		parked += drain_timerfd(pfd, 100);
	}
	zdtm_fail_if_noted();
	if (atomic_load(&timer_ticks) < t0 + 3)
		zdtm_fail("POSIX timer stopped firing (%lu signals, %lu before verify)",
			  atomic_load(&timer_ticks), t0);
	if (*fd_ticks < f0 + 3)
		zdtm_fail("timerfd stopped firing (%llu expirations, %llu before verify)",
			  (unsigned long long)*fd_ticks, (unsigned long long)f0);
	if (parked < p0 + 3)
		zdtm_fail("parked timerfd stopped firing (%llu expirations, %llu pending)",
			  (unsigned long long)parked, (unsigned long long)p0);
}

int main(void)
{
	struct itimerspec timer_it = {.it_interval = {0, TIMER_NS}, .it_value = {0, TIMER_NS}};
	struct itimerspec fd_it = {.it_interval = {0, TIMERFD_NS}, .it_value = {0, TIMERFD_NS}};
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL};
	struct sigaction sa = {.sa_handler = on_timer, .sa_flags = SA_RESTART};
	uint64_t fd_ticks = 0;
	timer_t timer;
	int tfd, pfd;

	zdtm_init();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGRTMIN, &sa, NULL);
	sev.sigev_signo = SIGRTMIN;
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) < 0 ||
	    timer_settime(timer, 0, &timer_it, NULL) < 0) {
		perror("wl_timer: POSIX timer");
		return 2;
	}
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	pfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (tfd < 0 || timerfd_settime(tfd, 0, &fd_it, NULL) < 0 || pfd < 0 ||
	    timerfd_settime(pfd, 0, &fd_it, NULL) < 0) {
		perror("wl_timer: timerfd");
		return 2;
	}
	/* All must have fired once before we call ourselves ready; poll()
	 * does not re-arm the parked timerfd, read() would. */
	while (atomic_load(&timer_ticks) == 0 || fd_ticks == 0)
		fd_ticks += drain_timerfd(tfd, 200);
	if (!zdtm_wait_readable(pfd, 5000)) {
		fprintf(stderr, "wl_timer: the parked timerfd never fired\n");
		return 2;
	}
	zdtm_ready();
	while (!zdtm_verify_requested()) {
		fd_ticks += drain_timerfd(tfd, 1000);
		if (zdtm_sigchld)
			zdtm_reap(0, NULL);
	}
	verify(timer, tfd, pfd, &fd_ticks);
	zdtm_pass();
}
