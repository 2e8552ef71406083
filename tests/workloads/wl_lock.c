/*
 * wl_lock [--file PATH (WL_DIR/wl_lock.data)]
 *
 * Holds a POSIX write lock (fcntl F_SETLK) on the whole of PATH and writes a
 * counter into it every 10 ms, as a server guarding its data file would.
 * Verify: the lock is still ours (a child's F_GETLK sees a write lock held
 * by this process), nobody else wrote the file (it holds the last counter we
 * wrote), and the counter goes on. Exit 2 when the lock cannot be taken at
 * start (someone else holds it).
 */
#include "zdtm.h"

#include <getopt.h>
#include <sys/wait.h>

struct wlock {
	char path[4096];
	int fd;
	uint64_t n;
};

static int lock_whole(int fd, short type, int cmd, struct flock *out)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	int r;

	do
		r = fcntl(fd, cmd, &fl);
	while (r < 0 && errno == EINTR);
	if (out)
		*out = fl;
	return r;
}

static void write_counter(struct wlock *w)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%020llu\n", (unsigned long long)w->n);

	if (pwrite(w->fd, buf, (size_t)len, 0) != len)
		zdtm_note_failure("write %s: %s", w->path, strerror(errno));
}

/* A child asks the kernel who holds the lock: 0 when it is us. */
static void check_lock_owner(const struct wlock *w)
{
	pid_t me = getpid(), c = fork();
	int st;

	if (c < 0)
		zdtm_fail("fork: %s", strerror(errno));
	if (c == 0) {
		struct flock fl;
		int fd = open(w->path, O_RDWR | O_CLOEXEC);
		if (fd < 0 || lock_whole(fd, F_WRLCK, F_GETLK, &fl) < 0)
			_exit(3);
		_exit(fl.l_type == F_WRLCK && fl.l_pid == me ? 0 : fl.l_type == F_UNLCK ? 1 : 2);
	}
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) == 3)
		zdtm_fail("%s: the lock check could not run", w->path);
	if (WEXITSTATUS(st) == 1)
		zdtm_fail("%s: our write lock is gone (nobody holds the file)", w->path);
	if (WEXITSTATUS(st) == 2)
		zdtm_fail("%s: another process holds the lock", w->path);
}

static void verify(struct wlock *w)
{
	char buf[32] = "", want[32];

	zdtm_fail_if_noted();
	check_lock_owner(w);
	snprintf(want, sizeof(want), "%020llu\n", (unsigned long long)w->n);
	if (pread(w->fd, buf, strlen(want), 0) != (ssize_t)strlen(want) || strcmp(buf, want))
		zdtm_fail("%s: holds '%.20s', we last wrote %llu", w->path, buf,
			  (unsigned long long)w->n);
	w->n++;
	write_counter(w);
	zdtm_fail_if_noted();
	zdtm_pass();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"file", required_argument, 0, 'f'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	struct wlock w = {.fd = -1};
	int o;

	zdtm_path(w.path, sizeof(w.path), "wl_lock.data");
	while ((o = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		if (o != 'f') {
			fprintf(stderr, "usage: %s [--file PATH]\n", argv[0]);
			return 2;
		}
		snprintf(w.path, sizeof(w.path), "%s", optarg);
	}
	zdtm_init();
	w.fd = open(w.path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (w.fd < 0 || lock_whole(w.fd, F_WRLCK, F_SETLK, NULL) < 0) {
		fprintf(stderr, "wl_lock: cannot lock %s: %s\n", w.path, strerror(errno));
		return 2;
	}
	write_counter(&w);
	zdtm_ready();
	while (!zdtm_sleep_ms(10)) {
		w.n++;
		write_counter(&w);
		zdtm_reap(-1, NULL);
	}
	verify(&w);
}
