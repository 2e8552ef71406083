/* The CRIU backend's post-copy save (ckpt_criu.h): CRIU's lazy dump runs
 * through its command line (criu/lazydump.h: over swrk RPC a handed
 * page-server socket is closed before the lazy phase). Its post-dump action
 * script (criu/hook.h: the static ferry-criu-hook next to this executable,
 * else `ferry criu-hook`) asks us over an abstract UNIX socket; the answer is always "fail", so
 * that CRIU serves the lazy pages and, after the last one, resumes the tasks instead of killing
 * them (cr_dump_finish): the tenant survives a failed restore elsewhere. Committing is killing the
 * frozen tree ourselves while CRIU still holds it (its pages stay in CRIU's page pipes). Events:
 * ckpt.h. */
#define LOG_PREFIX "criu"
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criu/hook.h"
#include "criu/lazydump.h"
#include "criu/timeline.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tenant/ckpt_criu.h"
#include "tenant/kind_tree.h"

struct lazy {
	const struct ckpt_env *env;
	const struct ckpt_target *t;
	const struct ckpt_save_opts *o;
	int lfd;	/* the hook's listening socket */
	char hook[108]; /* its abstract name, "@ferry-hook-..." */
	char script[PATH_MAX];
	bool script_tmp; /* the action script is ours to remove */
	pid_t criu;
	bool answered;		    /* post-dump seen (and answered "fail") */
	uint64_t t_spawn, t_answer; /* CRIU started; post-dump answered */
};

static int hook_listen(struct lazy *l, ferr_t *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;

	snprintf(l->hook, sizeof(l->hook), "@ferry-hook-%d-%d", (int)getpid(), (int)l->t->pid);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->hook);
	sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(l->hook));
	l->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->lfd < 0 || bind(l->lfd, (struct sockaddr *)&sa, len) < 0 || listen(l->lfd, 4) < 0)
		return ferr_sys(err, FX_FAIL, "socket for CRIU's action script");
	return 0;
}

/* CRIU execs its action script directly, for every action, mostly while
 * the tenant is frozen: the static ferry-criu-hook next to this executable
 * (hook/ferry_criu_hook.c, well under 1 ms), else a shell script next to
 * the images that runs `ferry criu-hook` for network-lock and post-dump. */
static int hook_script(struct lazy *l, ferr_t *err)
{
	char exe[PATH_MAX], body[PATH_MAX + 128];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	size_t len = sizeof(l->script);
	char *slash;

	if (n <= 0)
		return ferr_sys(err, FX_FAIL, "own executable");
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash && (size_t)(slash - exe) + sizeof("/ferry-criu-hook") <= len) {
		snprintf(l->script, len, "%.*s/ferry-criu-hook", (int)(slash - exe), exe);
		if (access(l->script, X_OK) == 0)
			return 0;
	}
	if (xsnprintf(l->script, len, err, "%s.hook", l->o->dir) < 0)
		return -1;
	l->script_tmp = true;
	snprintf(body, sizeof(body),
		 "#!/bin/sh\ncase \"$CRTOOLS_SCRIPT_ACTION\" in post-dump|network-lock) exec '%s' "
		 "criu-hook;; "
		 "esac\n",
		 exe);
	return fs_write_atomic(l->script, body, strlen(body), 0700, err);
}

static int spawn_dump(struct lazy *l, ferr_t *err)
{
	struct criu_lazy_dump_opts o = {.criu_path = l->env->tool,
					.pid = l->t->pid,
					.images_dir = l->o->dir,
					.work_dir = l->env->work_dir,
					.log_level = l->env->log_level,
					.file_locks = true,
					.nftables_lock = true,
					.tcp_established = l->o->tcp_established,
					.ps_fd = l->o->stream_fd,
					.action_script = l->script,
					.hook_sock = l->hook};

	l->t_spawn = now_ns();
	l->criu = criu_lazy_dump_start(&o, err);
	return l->criu < 0 ? -1 : 0;
}

static int event(struct lazy *l, enum ckpt_event ev, ferr_t *err)
{
	return l->o->on_event ? l->o->on_event(ev, l->t->pid, l->o->arg, err) : 0;
}

/* Post-dump: the tasks are frozen, the non-lazy images are written. The
 * caller's SAVED comes before the answer (it cuts the tenant's network:
 * CRIU unlocks it with the answer), its SERVING after (it waits for its
 * peer), then the commit: SIGKILL cannot be blocked, the tasks never run
 * again; they finish dying when CRIU lets go of them after the last page. */
static void handover(struct lazy *l, int fd)
{
	ferr_t e = {0};
	int r;

	r = event(l, CKPT_EV_SAVED, &e);
	l->t_answer = now_ns();
	if (write(fd, "fail\n", 5) < 0)
		pr_debug("answering CRIU's action script: %s", strerror(errno));
	close(fd);
	if (r < 0 || event(l, CKPT_EV_SERVING, &e) < 0)
		return; /* aborted: CRIU resumes the tasks once its peer is gone */
	if (ktree_signal(l->t->pid, SIGKILL, &e) < 0) {
		ferr_wrap(&e, "killing the frozen source copy");
		event(l, CKPT_EV_ABORTED, &e);
		return;
	}
	ferr_clear(&e);
	event(l, CKPT_EV_COMMITTED, &e);
}

/* One action of CRIU: "ok", or post-dump, which is the handover. */
static void answer(struct lazy *l, int fd)
{
	char line[64] = "";
	ssize_t n = read(fd, line, sizeof(line) - 1);

	if (n > 0)
		line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (!strcmp(line, "post-dump") && !l->answered) {
		l->answered = true;
		handover(l, fd);
		return;
	}
	if (!strcmp(line, "network-lock")) { /* CRIU locks it after our answer */
		ferr_t e = {0};
		event(l, CKPT_EV_FROZEN, &e);
	}
	if (write(fd, "ok\n", 3) < 0)
		pr_debug("answering CRIU's action script: %s", strerror(errno));
	close(fd);
}

static int wait_criu(struct lazy *l)
{
	int st = -1;

	for (;;) {
		struct pollfd pf = {.fd = l->lfd, .events = POLLIN};
		if (poll(&pf, 1, 100) > 0) {
			int fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0 && !criu_hook_peer_ok(fd)) {
				pr_warn("CRIU's action socket: refused a peer of another user");
				close(fd);
			} else if (fd >= 0) {
				answer(l, fd);
			}
		}
		pid_t r = waitpid(l->criu, &st, WNOHANG);
		if (r == l->criu || (r < 0 && errno != EINTR))
			return st;
	}
}

/* The downtime starts at the freeze, which only CRIU sees: its log gives
 * the time from the freeze to the return of the post-dump script, which
 * ends just after our answer (a little more time is counted, never less).
 * Without the log: from CRIU's start. */
static uint64_t freeze_time(const struct lazy *l)
{
	char log[PATH_MAX];
	double ms;
	ferr_t e = {0};

	if (!l->t_answer)
		return l->t_spawn;
	if (xsnprintf_path(log, sizeof(log), l->env->work_dir, "dump.log") < 0 ||
	    criu_log_frozen_to_postdump(log, &ms, &e) < 0) {
		pr_warn("downtime counted from CRIU's start: %s", e.msg);
		return l->t_spawn;
	}
	pr_info("tenant pid %d: frozen %.1f ms when post-dump returned", (int)l->t->pid, ms);
	if (l->t_answer - l->t_spawn > (uint64_t)(ms * 1e6))
		return l->t_answer - (uint64_t)(ms * 1e6);
	return l->t_spawn;
}

int ckpt_criu_save_lazy(const struct ckpt_env *env, const struct ckpt_target *t,
			const struct ckpt_save_opts *o, struct ckpt_save_result *res, ferr_t *err)
{
	struct lazy l = {.env = env, .t = t, .o = o, .lfd = -1, .criu = -1};
	int st, ret = -1;

	memset(res, 0, sizeof(*res));
	if (o->stream_fd < 0)
		return ferr_set(err, FX_USAGE, "a lazy save needs a page stream");
	if (hook_listen(&l, err) < 0 || hook_script(&l, err) < 0 || spawn_dump(&l, err) < 0)
		goto out;
	st = wait_criu(&l);
	res->ms = ms_since(l.t_spawn);
	res->t_frozen = freeze_time(&l);
	if (st != 0) /* CRIU's error lines and the log's path, as for an RPC dump */
		criu_lazy_dump_failed(l.env->work_dir, st, err);
	else
		ret = 0;
out:
	if (l.script_tmp)
		unlink(l.script);
	if (l.lfd >= 0)
		close(l.lfd);
	return ret;
}
