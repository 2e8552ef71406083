/* CRIU's kernel probes handed to CRIU processes (criu_kdat.h). */
#define LOG_PREFIX "criu"
#include "criu/kdat.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#define KDAT_MAX  65536
#define KDAT_FILE "/run/criu.kdat"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool tried;
static _Atomic size_t kdat_len; /* 0: nothing kept; kdat is complete once set */
static char kdat[KDAT_MAX];

/* The mount namespace: private (nothing propagates to the host), /run a
 * fresh tmpfs. */
static bool own_run(void)
{
	return unshare(CLONE_NEWNS) == 0 &&
	       mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	       mount("ferry-criu-run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755") ==
		   0;
}

/* Child of criu_kdat_prepare: run `criu check` in its own /run, then send
 * the file it wrote down the pipe. */
static void probe_child(const char *criu_path, int out)
{
	static char buf[KDAT_MAX];
	ssize_t n;
	int fd, st;
	pid_t pid;

	if (!own_run())
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid == 0) {
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		close_range(3, ~0U, 0);
		execl(criu_path, criu_path, "check", (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	fd = open(KDAT_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		_exit(1);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			_exit(1);
	_exit(0);
}

static int probe(const char *criu_path, ferr_t *err)
{
	int pfd[2], st = -1;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return ferr_sys(err, FX_FAIL, "pipe for CRIU's probes");
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return ferr_sys(err, FX_FAIL, "fork for CRIU's probes");
	}
	if (pid == 0) {
		close(pfd[0]);
		probe_child(criu_path, pfd[1]);
	}
	close(pfd[1]);
	while (len < sizeof(kdat) && ((n = read(pfd[0], kdat + len, sizeof(kdat) - len)) > 0 ||
				      (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || len == 0 || len == sizeof(kdat))
		return ferr_set(err, FX_HOST, "CRIU wrote no kernel probe cache (criu check)");
	kdat_len = len;
	return 0;
}

int criu_kdat_prepare(const char *criu_path, ferr_t *err)
{
	int r = 0;

	pthread_mutex_lock(&lock);
	if (!tried) {
		uint64_t t0 = now_ns();
		tried = true;
		r = probe(criu_path, err);
		if (r == 0)
			pr_debug("CRIU's kernel probes kept (%zu bytes, %.0f ms)", kdat_len,
				 ms_since(t0));
	}
	pthread_mutex_unlock(&lock);
	return r;
}

bool criu_kdat_enter(void)
{
	size_t done = 0;
	int fd;

	if (!kdat_len || !own_run())
		return false;
	fd = open(KDAT_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	while (done < kdat_len) {
		ssize_t n = write(fd, kdat + done, kdat_len - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	return done == kdat_len;
}
