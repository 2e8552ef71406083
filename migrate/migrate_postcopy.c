/* Post-copy, source side (migrate_int.h, docs/migrate.md). CRIU's lazy dump
 * runs through its command line: over swrk RPC a handed page-server socket
 * is closed before the lazy phase. The handover runs inside CRIU's post-dump
 * *action script* (`ferry criu-hook`, answered over an abstract UNIX
 * socket), which always gets "fail" so that CRIU serves the pages and keeps
 * the tasks for a failed restore (see handover()). After the commit the tenant runs
 * on the destination and faults its memory in through a second session
 * (MIG_REQ_PAGES) relayed to CRIU's lazy page server here: this process and
 * this host must stay until the last page went. */
#define LOG_PREFIX "migrate"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criu/lazydump.h"
#include "criu/timeline.h"
#include "tenant/driver.h"
#include "transport/frame.h"
#include "lib/fsutil.h"
#include "migrate/handover.h"
#include "lib/log.h"
#include "migrate/migrate_int.h"
#include "tenant/net.h"
#include "lib/util.h"

struct pc {
	struct src *s;
	int lfd;	/* the hook's listening socket */
	char hook[108]; /* its abstract name, "@ferry-hook-ID" */
	pid_t criu;
	bool answered;		    /* post-dump seen (and answered "fail") */
	bool cut;		    /* the tenant's host-side veth is down */
	bool committed;		    /* source copy killed, COMMIT sent */
	bool aborted;		    /* the destination was told to drop its copy */
	bool commit_ok;		    /* the destination confirmed it runs */
	bool script_tmp;	    /* the action script is ours to remove */
	uint64_t t_spawn, t_answer; /* CRIU started; post-dump answered */
	ferr_t commit_err;
};

static int hook_listen(struct pc *p, ferr_t *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;

	snprintf(p->hook, sizeof(p->hook), "@ferry-hook-%s", p->s->r->migration_id);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p->hook);
	sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(p->hook));
	p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, len) < 0 || listen(p->lfd, 4) < 0)
		return ferr_sys(err, FX_FAIL, "socket for CRIU's action script");
	return 0;
}

/* CRIU execs its action script directly, for every action, mostly while
 * the tenant is frozen: the static ferry-criu-hook next to this executable
 * (hook/ferry_criu_hook.c, well under 1 ms), else a shell script that runs
 * `ferry criu-hook` for post-dump only. *script gets the path. */
static int hook_script(struct pc *p, char *script, size_t len, ferr_t *err)
{
	char exe[PATH_MAX], body[PATH_MAX + 128];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return ferr_sys(err, FX_FAIL, "own executable");
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash && (size_t)(slash - exe) + sizeof("/ferry-criu-hook") <= len) {
		snprintf(script, len, "%.*s/ferry-criu-hook", (int)(slash - exe), exe);
		if (access(script, X_OK) == 0) {
			p->script_tmp = false;
			return 0;
		}
	}
	if (xsnprintf(script, len, err, "%s.hook", p->s->img) < 0)
		return -1;
	p->script_tmp = true;
	snprintf(body, sizeof(body),
		 "#!/bin/sh\ncase \"$CRTOOLS_SCRIPT_ACTION\" in post-dump) exec '%s' criu-hook;; "
		 "esac\n",
		 exe);
	return fs_write_atomic(script, body, strlen(body), 0700, err);
}

static int spawn_dump(struct pc *p, const char *work, ferr_t *err)
{
	struct src *s = p->s;
	char script[PATH_MAX];

	if (hook_script(p, script, sizeof(script), err) < 0)
		return -1;
	struct criu_lazy_dump_opts o = {.criu_path = s->o->criu_path,
					.pid = s->rec.init_pid,
					.images_dir = s->img,
					.work_dir = work,
					.file_locks = true,
					.nftables_lock = true,
					.tcp_established = true,
					.ps_fd = s->sv[0],
					.action_script = script,
					.hook_sock = p->hook};
	p->t_spawn = now_ns();
	p->criu = criu_lazy_dump_start(&o, err);
	if (p->criu < 0)
		return -1;
	/* CRIU holds its end: EOF reaches the relay when CRIU is gone */
	close(s->sv[0]);
	s->sv[0] = -1;
	return 0;
}

/* Post-dump: the tasks are frozen, the non-lazy images are local. CRIU gets
 * "fail" in every case: it then serves the lazy pages and, after the last
 * one, resumes the tasks instead of killing them (cr_dump_finish), so the
 * tenant survives a failed restore. It also unlocks the tenant's network at
 * once: we cut it before answering (host side of the veth down, route gone), so its
 * live sockets never answer a peer. Once the destination holds a restored
 * copy, we kill the frozen source tree ourselves (its pages stay in CRIU's
 * page pipes) and only then send COMMIT. */
static void handover(struct pc *p, int fd)
{
	struct src *s = p->s;
	ferr_t e = {0};
	bool sent;

	s->t_postdump = now_ns();
	/* the destination starts restoring while we cut: both before the answer */
	sent = msrc_send_restore(s, &p->commit_err) == 0;
	if (sent && s->rec.net.host_if[0] && s->rec.net.addr[0]) {
		if (net_host_cut(s->rec.net.host_if, s->rec.net.addr, &p->commit_err) < 0) {
			ferr_wrap(&p->commit_err, "cutting tenant %s off the network", s->rec.name);
			sent = false; /* abort: the destination drops what it restores */
		} else {
			p->cut = true;
		}
	}
	p->t_answer = now_ns();
	if (write(fd, "fail\n", 5) < 0)
		pr_debug("answering CRIU's action script: %s", strerror(errno));
	close(fd);
	if (!sent || msrc_wait_restored(s, &p->commit_err) < 0)
		goto abort;
	/* decided (marker written): the source copy must never run again */
	/* SIGKILL cannot be blocked: the tasks never run again. They finish
	 * dying when CRIU lets go of them after the last page. */
	if (driver_signal_tree(s->rec.init_pid, SIGKILL, &e) < 0) {
		p->commit_err = e;
		ferr_wrap(&p->commit_err, "killing the frozen source copy of %s", s->rec.name);
		unlink(s->marker);
		s->commit_decided = false;
		goto abort;
	}
	p->committed = true;
	p->commit_ok = msrc_commit(s, &p->commit_err) == 0;
	msrc_progress(s, "pages");
	return;
abort:
	/* the destination drops its copy and its lazy-pages daemon; CRIU's page
	 * server loses its peer and resumes the tasks */
	msrc_abort(s);
	shutdown(s->sv[1], SHUT_RDWR);
	p->aborted = true;
}

/* One action of CRIU: "ok", or post-dump, which is the handover. */
static void answer(struct pc *p, int fd)
{
	char line[64] = "";
	ssize_t n = read(fd, line, sizeof(line) - 1);

	if (n > 0)
		line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (!strcmp(line, "post-dump") && !p->answered) {
		p->answered = true;
		handover(p, fd);
		return;
	}
	if (write(fd, "ok\n", 3) < 0)
		pr_debug("answering CRIU's action script: %s", strerror(errno));
	close(fd);
}

static int wait_criu(struct pc *p)
{
	int st = -1;

	for (;;) {
		struct pollfd pf = {.fd = p->lfd, .events = POLLIN};
		if (poll(&pf, 1, 100) > 0) {
			int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				answer(p, fd);
		}
		pid_t r = waitpid(p->criu, &st, WNOHANG);
		if (r == p->criu || (r < 0 && errno != EINTR))
			return st;
	}
}

static int open_pages(struct src *s, ferr_t *err)
{
	Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;

	if (msrc_connect(s, &s->relay_chan, err) < 0)
		return ferr_wrap(err, "page connection to %s", s->r->dest);
	st.migration_id = s->r->migration_id;
	frame_send_pb(s->relay_chan, MIG_REQ_PAGES, &st.base);
	chan_flush(s->relay_chan);
	return chan_take_error(s->relay_chan, err);
}

/* The downtime starts at the freeze, which only CRIU sees: its log gives
 * the time from the freeze to the return of the post-dump script, which
 * ends just after our answer (a little more time is counted, never less).
 * Without the log: from CRIU's start. */
static void freeze_time(struct pc *p)
{
	struct src *s = p->s;
	char log[PATH_MAX];
	double ms;
	ferr_t e = {0};

	s->t_lock = p->t_spawn;
	if (!p->t_answer)
		return;
	if (registry_tenant_dir(s->o->state_dir, s->rec.name, log, sizeof(log), &e) < 0 ||
	    xsnprintf(log + strlen(log), sizeof(log) - strlen(log), &e, "/dump.log") < 0 ||
	    criu_log_frozen_to_postdump(log, &ms, &e) < 0) {
		pr_warn("downtime counted from CRIU's start: %s", e.msg);
		return;
	}
	pr_info("tenant %s: frozen %.1f ms when post-dump returned", s->rec.name, ms);
	if (p->t_answer - p->t_spawn > (uint64_t)(ms * 1e6))
		s->t_lock = p->t_answer - (uint64_t)(ms * 1e6);
}

/* CRIU has exited: after the last page (committed), or after resuming the
 * tasks (anything else). */
static int finish(struct pc *p, int status, ferr_t *err)
{
	struct src *s = p->s;
	ferr_t rerr = {0}, nerr = {0};
	bool alive = driver_pid_alive(s->rec.init_pid);
	char script[PATH_MAX];

	s->t_pages_done = now_ns();
	freeze_time(p);
	if (xsnprintf(script, sizeof(script), NULL, "%s.hook", s->img) == 0)
		unlink(script);
	if (!p->committed && !p->aborted) {
		/* CRIU failed before the handover: the destination drops its side */
		msrc_abort(s);
		shutdown(s->sv[1], SHUT_RDWR);
	}
	msrc_stop_relay(s, &rerr);
	if (p->committed) {
		if (!p->commit_ok) {
			*err = p->commit_err;
			return ferr_wrap(err, "post-copy handover of %s", s->rec.name);
		}
		if (rerr.code)
			pr_warn("tenant %s: page relay ended with: %s", s->rec.name, rerr.msg);
		if (status != 0)
			pr_debug("CRIU's lazy dump exited with status %d after the handover",
				 status);
		if (s->rec.net.host_if[0])
			net_host_unplumb(s->rec.net.host_if, s->rec.net.addr, NULL);
		s->r->moved = true;
		msrc_cleanup(s);
		return 0;
	}
	if (p->cut && alive && net_host_plumb(s->rec.net.host_if, s->rec.net.addr, &nerr) < 0)
		pr_warn("tenant %s runs here again but its network is not restored: %s",
			s->rec.name, nerr.msg);
	s->r->on_source = alive;
	s->rec.state = alive ? TS_RUNNING : TS_GONE;
	s->rec.updated = wall_time();
	registry_save(s->o->state_dir, &s->rec, NULL);
	unlink(s->marker);
	fs_rm_rf(s->img, NULL);
	if (p->commit_err.code)
		*err = p->commit_err;
	else {
		char work[PATH_MAX] = ".";
		registry_tenant_dir(s->o->state_dir, s->rec.name, work, sizeof(work), NULL);
		criu_lazy_dump_failed(work, status, err); /* CRIU's error lines, the log */
	}
	return ferr_wrap(err, "migration of %s to %s failed (%s)", s->rec.name, s->r->dest,
			 alive ? "it runs on this host again" : "and it is not running here");
}

int msrc_post_copy(struct src *s, ferr_t *err)
{
	struct pc p = {.s = s, .lfd = -1, .criu = -1};
	char work[PATH_MAX];
	int lock, ret = -1;

	lock = registry_lock(s->o->state_dir, s->rec.name, err);
	if (lock < 0)
		return -1;
	if (registry_tenant_dir(s->o->state_dir, s->rec.name, work, sizeof(work), err) < 0 ||
	    fs_mkdir_p(work, 0700, err) < 0 || fs_mkdir_p(s->img, 0700, err) < 0 ||
	    open_pages(s, err) < 0 || hook_listen(&p, err) < 0)
		goto out;
	if (msrc_start_relay(s, err) < 0)
		goto out;
	s->rec.state = TS_FROZEN;
	s->rec.updated = wall_time();
	registry_save(s->o->state_dir, &s->rec, NULL);
	msrc_progress(s, "freeze");
	if (spawn_dump(&p, work, err) < 0) {
		shutdown(s->sv[1], SHUT_RDWR);
		msrc_stop_relay(s, NULL);
		s->rec.state = TS_RUNNING;
		registry_save(s->o->state_dir, &s->rec, NULL);
		goto out;
	}
	msrc_progress(s, "dump");
	ret = finish(&p, wait_criu(&p), err);
out:
	if (p.lfd >= 0)
		close(p.lfd);
	close(lock);
	return ret;
}
