/*
 * wl_limits --hog-mb N | --forkbomb N
 *
 * Runs into the limits of its own cgroup, once before it is ready and once
 * more when asked to verify (after a dump/restore or a migration: the
 * destination's limits):
 *   --hog-mb N    a child allocates and touches up to N MiB (more than the
 *                 tenant's memory limit); the trial holds when the kernel's
 *                 OOM killer ends the child (SIGKILL) before it got there,
 *                 and this process (the tenant's init) lives on.
 *   --forkbomb N  children that sleep are forked until fork() fails; the
 *                 trial holds when it fails with EAGAIN before N children
 *                 (pids.max below N), the children are then ended.
 * Each trial's outcome goes to stdout ("hog: killed at 61 MiB", "forkbomb:
 * EAGAIN after 27 children"). Verify: both trials held.
 */
#include "zdtm.h"

#include <getopt.h>
#include <sys/mman.h>

static __attribute__((noreturn)) void hog(long mb, int fd)
{
	int adj = open("/proc/self/oom_score_adj", O_WRONLY);

	/* the OOM killer's first choice: never the init */
	if (adj >= 0) {
		(void)!write(adj, "1000", 4);
		close(adj);
	}
	for (long i = 0; i < mb; i++) {
		char *p =
		    mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(3);
		memset(p, (int)i | 1, 1 << 20);
		(void)!write(fd, "m", 1); /* one byte per MiB: how far it got */
	}
	_exit(0);
}

static bool hog_trial(long mb)
{
	int p[2], st = 0;
	long got = 0;
	char buf[256];
	ssize_t n;
	pid_t c;

	if (pipe(p) < 0)
		zdtm_fail("pipe: %s", strerror(errno));
	if ((c = fork()) == 0) {
		close(p[0]);
		hog(mb, p[1]);
	}
	close(p[1]);
	while ((n = read(p[0], buf, sizeof(buf))) != 0)
		if (n > 0)
			got += n;
	close(p[0]);
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	bool killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
	printf("hog: %s at %ld MiB of %ld\n", killed ? "killed" : "not killed", got, mb);
	return killed && got < mb;
}

static bool forkbomb_trial(long max)
{
	static pid_t kids[65536];
	long n = 0;
	int e = 0;

	while (n < max) {
		pid_t c = fork();
		if (c == 0) {
			for (;;)
				pause();
		}
		if (c < 0) {
			e = errno;
			break;
		}
		kids[n++] = c;
	}
	for (long i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	for (long i = 0; i < n; i++)
		while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
			;
	printf("forkbomb: %s after %ld children\n", e ? strerror(e) : "no failure", n);
	return e == EAGAIN && n < max;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"hog-mb", required_argument, 0, 'm'},
					     {"forkbomb", required_argument, 0, 'f'},
					     {0, 0, 0, 0}};
	long mb = 0, bomb = 0;
	int o;

	while ((o = getopt_long(argc, argv, "m:f:", opts, NULL)) != -1) {
		if (o == 'm')
			mb = zdtm_parse_long("--hog-mb", optarg, 1, 1 << 20);
		else if (o == 'f')
			bomb = zdtm_parse_long("--forkbomb", optarg, 1, 65536);
		else {
			fprintf(stderr, "usage: %s --hog-mb N | --forkbomb N\n", argv[0]);
			return 2;
		}
	}
	if (!mb == !bomb) {
		fprintf(stderr, "usage: %s --hog-mb N | --forkbomb N\n", argv[0]);
		return 2;
	}
	zdtm_init();
	if (!(mb ? hog_trial(mb) : forkbomb_trial(bomb)))
		zdtm_note_failure("the first trial was not stopped by the tenant's limit");
	zdtm_ready();
	while (!zdtm_verify_requested())
		zdtm_sleep_ms(1000);
	if (!(mb ? hog_trial(mb) : forkbomb_trial(bomb)))
		zdtm_note_failure("the trial after verify was not stopped by the limit");
	zdtm_fail_if_noted();
	zdtm_pass();
}
