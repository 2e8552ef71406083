/* CRIU's kernel probes handed to CRIU processes (kdat.h). */
#define LOG_PREFIX "criu"
#include "criu/kdat.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criu/spawn.h"
#include "lib/log.h"
#include "lib/util.h"

#define KDAT_MAX  65536
#define KDAT_NAME "criu.kdat"
#define KDAT_FILE "/run/" KDAT_NAME

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool tried;
static _Atomic size_t kdat_len; /* 0: nothing kept; kdat is complete once set */
static char kdat[KDAT_MAX];

/* Child of criu_kdat_prepare, the holder of a private /run: run `criu
 * check` there, then send the file it wrote down the pipe. */
static void probe_child(const char *criu_path, int out)
{
	static char buf[KDAT_MAX];
	struct criu_argv argv;
	struct criu_spawn_opts so = {.argv = &argv, .stdio = CRIU_STDIO_NULL};
	ssize_t n;
	int fd;
	pid_t pid;

	if (!criu_private_run())
		_exit(1);
	criu_argv_init(&argv, criu_path);
	criu_argv_add(&argv, "check", NULL);
	pid = criu_spawn(&so, NULL);
	if (pid < 0)
		_exit(1);
	criu_reap(pid, -1, false);
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
	st = criu_reap(pid, -1, false);
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

void criu_kdat_use(struct criu_spawn_opts *o)
{
	size_t len = kdat_len;

	if (!len)
		return;
	o->private_run = true;
	o->run_file = KDAT_NAME;
	o->run_data = kdat;
	o->run_len = len;
}
