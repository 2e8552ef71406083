/* Starting CRIU (criu/spawn.h), its log-level rule (criu/log.h), the lazy
 * dump's command line (criu/lazydump.h) and the action hook's refusals
 * (criu/hook.h). The spawn tests exec /bin/sh: they check what reaches the
 * child (fds, environment, stdio), which is the same for any binary. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criu/hook.h"
#include "criu/lazydump.h"
#include "criu/log.h"
#include "criu/spawn.h"
#include "lib/util.h"
#include "unit.h"

static void test_log_level(void)
{
	CHECK(criu_log_level(0) == 4); /* nothing asked: CRIU's full log */
	CHECK(criu_log_level(1) == 1);
	CHECK(criu_log_level(2) == 2);
	CHECK(criu_log_level(3) == 3);
	CHECK(criu_log_level(4) == 4);
	CHECK(criu_log_level(5) == 4);
	CHECK(criu_log_level(-1) == 4);
}

static bool argv_is(const struct criu_argv *a, const char *const *want)
{
	size_t i = 0;

	for (; want[i]; i++)
		if (i >= a->n || !a->v[i] || strcmp(a->v[i], want[i])) {
			fprintf(stderr, "  argv[%zu]: %s, want %s\n", i,
				i < a->n && a->v[i] ? a->v[i] : "(none)", want[i]);
			return false;
		}
	return i == a->n && !a->v[i] && !a->overflow;
}

static void test_lazy_dump_argv(void)
{
	struct criu_lazy_dump_opts o = {.criu_path = "/x/criu",
					.pid = 1234,
					.images_dir = "/s/img",
					.work_dir = "/s/work",
					.file_locks = true,
					.nftables_lock = true,
					.tcp_established = true,
					.ps_fd = 7,
					.action_script = "/b/ferry-criu-hook"};
	struct criu_argv a;

	criu_lazy_dump_argv(&o, &a);
	CHECK(argv_is(&a, (const char *const[]){"/x/criu",
						"dump",
						"-t",
						"1234",
						"-D",
						"/s/img",
						"-W",
						"/s/work",
						"-o",
						"dump.log",
						"-v4",
						"--file-locks",
						"--network-lock",
						"nftables",
						"--tcp-established",
						"--skip-in-flight",
						"--lazy-pages",
						"--ps-socket",
						"7",
						"--action-script",
						"/b/ferry-criu-hook",
						NULL}));
	o.file_locks = o.nftables_lock = o.tcp_established = false;
	o.log_level = 2;
	criu_lazy_dump_argv(&o, &a);
	CHECK(argv_is(&a, (const char *const[]){
			      "/x/criu", "dump", "-t", "1234", "-D", "/s/img", "-W", "/s/work",
			      "-o", "dump.log", "-v2", "--skip-in-flight", "--lazy-pages",
			      "--ps-socket", "7", "--action-script", "/b/ferry-criu-hook", NULL}));
}

static void test_argv_overflow(void)
{
	struct criu_argv a;
	struct criu_spawn_opts so = {.argv = &a};
	ferr_t err = {0};

	criu_argv_init(&a, "/bin/true");
	for (int i = 0; i < CRIU_ARGV_MAX + 2; i++)
		criu_argv_add(&a, "x", NULL);
	CHECK(a.overflow && a.n == CRIU_ARGV_MAX && a.v[CRIU_ARGV_MAX] == NULL);
	CHECK(criu_spawn(&so, &err) < 0 && err.code == FX_FAIL);

	criu_argv_init(&a, "/bin/true");
	for (int i = 0; i < CRIU_ARGV_NUM + 1; i++)
		criu_argv_addf(&a, "%d", i);
	CHECK(a.overflow);
}

/* Run `sh -c SCRIPT` through criu_spawn; its exit code (-1: not exited). */
static int run_sh(struct criu_spawn_opts *so, const char *script)
{
	struct criu_argv a;
	ferr_t err = {0};
	pid_t pid;
	int st;

	criu_argv_init(&a, "/bin/sh");
	criu_argv_add(&a, "-c", script, NULL);
	so->argv = &a;
	pid = criu_spawn(so, &err);
	if (pid < 0)
		return -2;
	st = criu_reap(pid, 10000, false);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Only the kept fds reach the child, under their own numbers. */
static void test_spawn_fds(void)
{
	int keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int other = open("/dev/null", O_RDONLY); /* not CLOEXEC: closed anyway */
	char script[128];
	struct criu_spawn_opts so = {.keep = &keep, .n_keep = 1};

	CHECK(keep > 2 && other > 2);
	snprintf(script, sizeof(script), "test -e /proc/self/fd/%d && ! test -e /proc/self/fd/%d",
		 keep, other);
	CHECK(run_sh(&so, script) == 0);
	so.n_keep = 0;
	snprintf(script, sizeof(script), "test -e /proc/self/fd/%d", keep);
	CHECK(run_sh(&so, script) == 1);
	close(keep);
	close(other);
}

static void test_spawn_env_stdio_pgrp(void)
{
	const char *env[] = {"FERRY_UNIT_A=one", "HOME=/nowhere", NULL};
	struct criu_spawn_opts so = {.env = env};

	setenv("HOME", "/somewhere", 1);
	CHECK(run_sh(&so, "test \"$FERRY_UNIT_A\" = one && test \"$HOME\" = /nowhere") == 0);
	CHECK(getenv("FERRY_UNIT_A") == NULL);
	so.env = NULL;
	CHECK(run_sh(&so, "test -z \"$FERRY_UNIT_A\" && test \"$HOME\" = /somewhere") == 0);
	so.stdio = CRIU_STDIO_NULL;
	CHECK(run_sh(&so, "test \"$(readlink /proc/$$/fd/1)\" = /dev/null") == 0);
	so.stdio = CRIU_STDIO_INHERIT;
	so.own_pgrp = true;
	CHECK(run_sh(&so, "read -r _ _ _ _ pg _ </proc/$$/stat; test $pg = $$") == 0);
	so.own_pgrp = false;
	CHECK(run_sh(&so, "read -r _ _ _ _ pg _ </proc/$$/stat; test $pg != $$") == 0);
	so.cwd = "/proc";
	CHECK(run_sh(&so, "test \"$(pwd)\" = /proc") == 0);
}

/* stdout and stderr into an fd (what `ferry check` reads) */
static void test_spawn_out_fd(void)
{
	struct criu_spawn_opts so = {.stdio = CRIU_STDIO_FD};
	char buf[64] = "";
	int p[2];

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	so.out_fd = p[1];
	CHECK(run_sh(&so, "echo out; echo err >&2; read -r x; test -z \"$x\"") == 0);
	close(p[1]);
	CHECK(read(p[0], buf, sizeof(buf) - 1) > 0);
	CHECK(!strcmp(buf, "out\nerr\n"));
	close(p[0]);
}

/* A private /run seeded with one file (CRIU's kernel-probe cache): the
 * host's /run never sees it. */
static void test_spawn_private_run(void)
{
	static const char data[] = "probes";
	struct criu_spawn_opts so = {.private_run = true,
				     .run_file = "ferry-unit-kdat",
				     .run_data = data,
				     .run_len = sizeof(data) - 1};

	CHECK(run_sh(&so, "test \"$(cat /run/ferry-unit-kdat)\" = probes && "
			  "test \"$(ls /run)\" = ferry-unit-kdat") == 0);
	CHECK(access("/run/ferry-unit-kdat", F_OK) < 0);
}

static void test_spawn_exec_fail_and_reap(void)
{
	struct criu_argv a;
	struct criu_spawn_opts so = {.argv = &a};
	ferr_t err = {0};
	uint64_t t0;
	pid_t pid;
	int st;

	criu_argv_init(&a, "/nonexistent/criu");
	pid = criu_spawn(&so, &err);
	CHECK(pid > 0);
	st = criu_reap(pid, -1, false);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 127);

	/* a CRIU that does not end is killed after the timeout */
	criu_argv_init(&a, "/bin/sleep");
	criu_argv_add(&a, "30", NULL);
	pid = criu_spawn(&so, &err);
	t0 = now_ns();
	st = criu_reap(pid, 100, false);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	CHECK(ms_since(t0) < 5000);
	pid = criu_spawn(&so, &err);
	st = criu_reap(pid, -1, true);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	CHECK(criu_reap(pid, 100, false) == -1); /* nothing left to reap */
}

/* One post-dump through the hook, ferry migrate's side answering ans;
 * returns the hook's result, *asked what it wrote. */
static int hook_exchange(const char *ans, char *asked, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *name = "@ferry-unit-hook";
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), st;
	socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	pid_t pid;

	memcpy(sa.sun_path, name, strlen(name));
	sa.sun_path[0] = '\0';
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sl) < 0 || listen(lfd, 1) < 0)
		return -1;
	setenv(CRIU_HOOK_SOCK_ENV, name, 1);
	setenv("CRTOOLS_SCRIPT_ACTION", "post-dump", 1);
	pid = fork();
	if (pid == 0)
		_exit(criu_hook_run());
	int fd = accept(lfd, NULL, NULL);
	ssize_t n = fd >= 0 ? read(fd, asked, len - 1) : -1;
	asked[n > 0 ? n : 0] = '\0';
	if (fd >= 0) {
		if (write(fd, ans, strlen(ans)) < 0)
			asked[0] = '\0';
		close(fd);
	}
	close(lfd);
	st = criu_reap(pid, 5000, false);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_hook_exchange(void)
{
	char asked[64];

	CHECK(hook_exchange("ok\n", asked, sizeof(asked)) == CRIU_HOOK_OK);
	CHECK(!strcmp(asked, "post-dump\n"));
	CHECK(hook_exchange("fail\n", asked, sizeof(asked)) == CRIU_HOOK_FAIL);
	unsetenv(CRIU_HOOK_SOCK_ENV);
	unsetenv("CRTOOLS_SCRIPT_ACTION");
}

/* What the hook does without CRIU or without ferry migrate. */
static void test_hook(void)
{
	unsetenv("CRTOOLS_SCRIPT_ACTION");
	setenv(CRIU_HOOK_SOCK_ENV, "@ferry-unit-hook-none", 1);
	CHECK(criu_hook_run() == CRIU_HOOK_USAGE);
	setenv("CRTOOLS_SCRIPT_ACTION", "network-unlock", 1);
	CHECK(criu_hook_run() == CRIU_HOOK_OK);
	setenv("CRTOOLS_SCRIPT_ACTION", "post-dump", 1);
	CHECK(criu_hook_run() == CRIU_HOOK_FAIL); /* nobody listens */
	setenv(CRIU_HOOK_SOCK_ENV, "", 1);
	CHECK(criu_hook_run() == CRIU_HOOK_USAGE);
	unsetenv(CRIU_HOOK_SOCK_ENV);
	unsetenv("CRTOOLS_SCRIPT_ACTION");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_log_level);
	RUN(test_lazy_dump_argv);
	RUN(test_argv_overflow);
	RUN(test_spawn_fds);
	RUN(test_spawn_env_stdio_pgrp);
	RUN(test_spawn_out_fd);
	RUN(test_spawn_private_run);
	RUN(test_spawn_exec_fail_and_reap);
	RUN(test_hook);
	RUN(test_hook_exchange);
	UNIT_DONE();
}
