/* CRIU's page server on the receiving host (pageserver.h). */
#include "criu/pageserver.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int page_server_start(const char *criu, const char *dir, const char *parent, struct page_server *ps,
		      ferr_t *err)
{
	int sv[2];
	char fdstr[16];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return ferr_sys(err, FX_FAIL, "socketpair for the page server");
	ps->pid = fork();
	if (ps->pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return ferr_sys(err, FX_FAIL, "fork for the page server");
	}
	if (ps->pid == 0) {
		close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
		fcntl(sv[1], F_SETFD, 0);
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		snprintf(fdstr, sizeof(fdstr), "%d", sv[1]);
		if (parent && *parent)
			execl(criu, criu, "page-server", "-D", dir, "--ps-socket", fdstr,
			      "--prev-images-dir", parent, "-o", "page-server.log", "-v4",
			      (char *)NULL);
		else
			execl(criu, criu, "page-server", "-D", dir, "--ps-socket", fdstr, "-o",
			      "page-server.log", "-v4", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	ps->sk = sv[0];
	return 0;
}

int page_server_stop(struct page_server *ps, bool kill_it, const char *dir, ferr_t *err)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	int st = -1;

	if (ps->sk >= 0)
		close(ps->sk);
	ps->sk = -1;
	if (ps->pid <= 0)
		return 0;
	if (kill_it)
		kill(ps->pid, SIGKILL);
	for (int i = 0; i < 500; i++) {
		pid_t r = waitpid(ps->pid, &st, WNOHANG);
		if (r == ps->pid || (r < 0 && errno != EINTR))
			break;
		if (i == 499) {
			kill(ps->pid, SIGKILL);
			waitpid(ps->pid, &st, 0);
		}
		nanosleep(&ts, NULL);
	}
	ps->pid = -1;
	if (!kill_it && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		return ferr_set(err, FX_FAIL, "CRIU page server failed (see %s/page-server.log)",
				dir);
	return 0;
}
