/* Container tenants: start and stop (see container.h).
 *
 * Process layout of container_start:
 *   ferry (P) --fork--> helper (I): unshare(PID|NS|UTS|IPC|NET)
 *                       I --fork--> init (C): PID 1 of the new PID namespace
 *   I reports C's host PID and exits, so C is reparented (never ferry's zombie).
 *   C sets up its root and reports "ready"; P plumbs the network, then sends
 *   "go"; C closes every fd but 0-2 and execs. Messages travel as fixed-size
 *   records (atomic pipe writes) on a CLOEXEC pipe, so P sees EOF exactly when
 *   the exec succeeded and an error record when any step failed. */
#define LOG_PREFIX "container"
#include "tenant/container.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "tenant/isolate.h"
#include "tenant/net.h"
#include "tenant/registry.h"
#include "tenant/userns.h"
#include "lib/util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

enum { MSG_PID = 'P', MSG_READY = 'R', MSG_ERROR = 'E', MSG_USERNS = 'U' };

struct msg {
	char type;
	int32_t pid;
	char text[480];
};

/* ---- inside the container (child side; never returns on error) ---- */

static void send_msg(int fd, char type, int32_t pid, const char *fmt, ...)
{
	struct msg m = {.type = type, .pid = pid};
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(m.text, sizeof(m.text), fmt, ap);
		va_end(ap);
	}
	while (write(fd, &m, sizeof(m)) < 0 && errno == EINTR)
		;
}

#define child_fail(fd, ...)                                                                        \
	do {                                                                                       \
		send_msg(fd, MSG_ERROR, 0, __VA_ARGS__);                                           \
		_exit(1);                                                                          \
	} while (0)

static void dev_links(int st);

/* In a user namespace the nodes are files of the rootfs (/.ferry/dev,
 * userns_make_dev, made by ferry before: a user namespace cannot mknod, and
 * its own tmpfs would not honour nodes). /dev is a tmpfs of the tenant's
 * own as without one (what it writes there is its own, saved with it), the
 * nodes bind-mounted into it. */
static void make_dev_userns(int st)
{
	static const char *const nodes[] = {USERNS_DEV_NODES};
	char src[64], dst[64];
	int fd;

	if (mkdir("/dev", 0755) < 0 && errno != EEXIST)
		child_fail(st, "rootfs: cannot create /dev: %s", strerror(errno));
	if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m") < 0)
		child_fail(st, "mount tmpfs on /dev: %s", strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		snprintf(src, sizeof(src), "/.ferry/dev/%s", nodes[i]);
		snprintf(dst, sizeof(dst), "/dev/%s", nodes[i]);
		if ((fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0666)) < 0)
			child_fail(st, "create %s: %s", dst, strerror(errno));
		close(fd);
		if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
			child_fail(st, "bind %s on %s: %s", src, dst, strerror(errno));
	}
	if (mkdir("/dev/pts", 0755) < 0 && errno != EEXIST)
		child_fail(st, "mkdir /dev/pts: %s", strerror(errno));
	if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620") < 0)
		child_fail(st, "mount devpts on /dev/pts: %s", strerror(errno));
	dev_links(st);
}

static void make_dev(int st)
{
	static const struct {
		const char *name;
		unsigned maj, min;
	} devs[] = {{"null", 1, 3},   {"zero", 1, 5},	 {"full", 1, 7},
		    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	char p[64];

	if (mkdir("/dev", 0755) < 0 && errno != EEXIST)
		child_fail(st, "rootfs: cannot create /dev: %s", strerror(errno));
	if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m") < 0)
		child_fail(st, "mount tmpfs on /dev: %s", strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(devs); i++) {
		snprintf(p, sizeof(p), "/dev/%s", devs[i].name);
		if (mknod(p, S_IFCHR | 0666, makedev(devs[i].maj, devs[i].min)) < 0 ||
		    chmod(p, 0666) < 0)
			child_fail(st, "mknod %s: %s", p, strerror(errno));
	}
	if (mkdir("/dev/pts", 0755) < 0)
		child_fail(st, "mkdir /dev/pts: %s", strerror(errno));
	if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620") < 0)
		child_fail(st, "mount devpts on /dev/pts: %s", strerror(errno));
	dev_links(st);
}

static void dev_links(int st)
{
	static const char *const links[][2] = {{"ptmx", "pts/ptmx"},
					       {"fd", "/proc/self/fd"},
					       {"stdin", "/proc/self/fd/0"},
					       {"stdout", "/proc/self/fd/1"},
					       {"stderr", "/proc/self/fd/2"}};
	char p[64];

	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		snprintf(p, sizeof(p), "/dev/%s", links[i][0]);
		if (symlink(links[i][1], p) < 0 && errno != EEXIST)
			child_fail(st, "symlink %s: %s", p, strerror(errno));
	}
}

/* A user namespace may mount a proc only while a full one is visible in
 * its mount namespace: before the old root goes. */
static void mount_proc(int st, const char *where)
{
	if (mkdir(where, 0555) < 0 && errno != EEXIST)
		child_fail(st, "rootfs: cannot create /proc: %s", strerror(errno));
	if (mount("proc", where, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		child_fail(st, "mount /proc: %s", strerror(errno));
}

/* The tenant's root in a user namespace: the tree ferry cloned before
 * (open_tree as the host's root: the rootfs may lie under directories the
 * namespace's root cannot search, e.g. an image tenant's overlay under
 * STATE/tenants/NAME), attached on top of / and entered through its fd. */
static void enter_tree(int st, int tree, bool harden)
{
	char msg[200];

	if (syscall(SYS_move_mount, tree, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0)
		child_fail(st, "attach the rootfs: %s", strerror(errno));
	if (fchdir(tree) < 0)
		child_fail(st, "enter the rootfs: %s", strerror(errno));
	close(tree);
	mount_proc(st, "proc");
	if (harden && iso_mount_sys("sys", msg, sizeof(msg)) < 0)
		child_fail(st, "%s", msg);
}

static void pivot_into(int st, const struct container_opts *o, int tree)
{
	const char *rootfs = o->rootfs;
	bool userns = o->id_count > 0;
	char msg[200];

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(st, "make mounts private: %s", strerror(errno));
	if (tree >= 0) {
		enter_tree(st, tree, o->harden);
	} else {
		if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
			child_fail(st, "bind-mount rootfs %s: %s", rootfs, strerror(errno));
		if (chdir(rootfs) < 0)
			child_fail(st, "chdir %s: %s", rootfs, strerror(errno));
	}
	/* pivot_root(".", ".") stacks the old root on top of the new one */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		child_fail(st, "pivot_root into %s: %s", rootfs, strerror(errno));
	if (umount2(".", MNT_DETACH) < 0)
		child_fail(st, "detach the old root: %s", strerror(errno));
	if (chdir("/") < 0)
		child_fail(st, "chdir /: %s", strerror(errno));
	if (userns) {
		make_dev_userns(st);
		if (o->harden && iso_mask_paths(msg, sizeof(msg)) < 0)
			child_fail(st, "%s", msg);
		return;
	}
	mount_proc(st, "/proc");
	make_dev(st);
}

static void setup_stdio(int st)
{
	int in, out;

	if (mkdir("/.ferry", 0700) < 0 && errno != EEXIST)
		child_fail(st, "rootfs: cannot create /.ferry: %s", strerror(errno));
	out = open(CONTAINER_CONSOLE, O_WRONLY | O_CREAT | O_APPEND | O_NOCTTY, 0600);
	if (out < 0)
		child_fail(st, "open console log %s: %s", CONTAINER_CONSOLE, strerror(errno));
	in = open("/dev/null", O_RDONLY | O_NOCTTY);
	if (in < 0)
		child_fail(st, "open /dev/null: %s", strerror(errno));
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		child_fail(st, "set up stdio: %s", strerror(errno));
	if (in > 2)
		close(in);
	if (out > 2)
		close(out);
}

static void reset_signals(void)
{
	sigset_t all;

	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

static __attribute__((noreturn)) void container_init(const struct container_opts *o, int st, int go,
						     int tree)
{
	char c;

	if (setsid() < 0)
		child_fail(st, "setsid: %s", strerror(errno));
	if (sethostname(o->name, strlen(o->name)) < 0)
		child_fail(st, "sethostname %s: %s", o->name, strerror(errno));
	pivot_into(st, o, tree);
	setup_stdio(st);
	send_msg(st, MSG_READY, 0, NULL);
	if (read(go, &c, 1) != 1) /* ferry gave up (network failed or it died) */
		_exit(1);
	reset_signals();
	clearenv();
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("HOME", "/root", 1);
	setenv("HOSTNAME", o->name, 1);
	/* no inherited fds: everything but stdio closes on exec (and the status
	 * pipe with it, which tells ferry the exec succeeded) */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		child_fail(st, "close_range: %s", strerror(errno));
	char msg[200];
	if (o->id_count && o->harden && iso_restrict(msg, sizeof(msg)) < 0)
		child_fail(st, "%s", msg);
	execvp(o->argv[0], o->argv);
	child_fail(st, "cannot run '%s' inside the rootfs: %s", o->argv[0], strerror(errno));
}

/* A user namespace first (it owns the namespaces made after it); ferry
 * writes its maps (it holds CAP_SETUID above it) and says "m" on go. */
static void enter_userns(int st, int go)
{
	char c;

	if (unshare(CLONE_NEWUSER) < 0)
		child_fail(st, "unshare the user namespace: %s", strerror(errno));
	send_msg(st, MSG_USERNS, getpid(), NULL);
	if (read(go, &c, 1) != 1 || c != 'm')
		_exit(1);
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		child_fail(st, "become root of the user namespace: %s", strerror(errno));
}

static __attribute__((noreturn)) void container_helper(const struct container_opts *o, int st,
						       int go)
{
	pid_t c;

	int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
	int e, tree = -1;

	/* the cgroup first, as the host's root: then its namespace sees it as / */
	if (o->cg && (e = cgroup_join_self(o->cg)) < 0)
		child_fail(st, "enter the tenant's cgroup: %s", strerror(-e));
	if (o->cg)
		flags |= CLONE_NEWCGROUP;
	/* its root, cloned while ferry can still reach it (enter_tree) */
	if (o->id_count &&
	    (tree = (int)syscall(SYS_open_tree, AT_FDCWD, o->rootfs,
				 OPEN_TREE_CLONE | AT_RECURSIVE | OPEN_TREE_CLOEXEC)) < 0)
		child_fail(st, "clone the rootfs %s: %s", o->rootfs, strerror(errno));
	if (o->id_count)
		enter_userns(st, go);
	if (unshare(flags) < 0)
		child_fail(st, "unshare namespaces: %s", strerror(errno));
	c = fork();
	if (c < 0)
		child_fail(st, "fork the init: %s", strerror(errno));
	if (c == 0)
		container_init(o, st, go, tree);
	send_msg(st, MSG_PID, c, NULL);
	_exit(0);
}

/* ---- ferry's side ---- */

/* Read one record; 0 on EOF, 1 on a record, -1 on timeout/error. */
static int read_msg(int fd, struct msg *m, uint64_t deadline_ns, ferr_t *err)
{
	size_t got = 0;

	while (got < sizeof(*m)) {
		uint64_t now = now_ns();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int ms = now >= deadline_ns ? 0 : (int)((deadline_ns - now) / 1000000) + 1;
		int r = poll(&p, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ferr_sys(err, FX_FAIL, "wait for the container");
		if (r == 0)
			return ferr_set(err, FX_FAIL, "container set-up timed out");
		ssize_t n = read(fd, (char *)m + got, sizeof(*m) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ferr_sys(err, FX_FAIL, "read container status");
		if (n == 0)
			return got ? ferr_set(err, FX_FAIL, "short container status record") : 0;
		got += (size_t)n;
	}
	m->text[sizeof(m->text) - 1] = '\0';
	return 1;
}

/* Wait for the init's PID and its "ready". */
static int wait_ready(const struct container_opts *o, int st, int go, pid_t *pid, uint64_t deadline,
		      ferr_t *err)
{
	bool ready = false;
	struct msg m;

	*pid = 0;
	while (!ready || !*pid) {
		int r = read_msg(st, &m, deadline, err);
		if (r < 0)
			return -1;
		if (r == 0)
			return ferr_set(err, FX_FAIL, "container set-up ended without a word");
		if (m.type == MSG_ERROR)
			return ferr_set(err, FX_FAIL, "%s", m.text);
		if (m.type == MSG_USERNS) {
			if (userns_write_maps(m.pid, o->id_base, o->id_count, err) < 0)
				return ferr_wrap(err, "map the tenant's user namespace");
			if (write(go, "m", 1) != 1)
				return ferr_sys(err, FX_FAIL, "start the container");
		} else if (m.type == MSG_PID)
			*pid = m.pid;
		else if (m.type == MSG_READY)
			ready = true;
	}
	return 0;
}

static int start_checked(const struct container_opts *o, int st, int go, pid_t helper,
			 struct container_info *out, ferr_t *err)
{
	uint64_t deadline = now_ns() + (uint64_t)(o->timeout_ms ? o->timeout_ms : 10000) * 1000000;
	struct msg m;
	int status, r;

	r = wait_ready(o, st, go, &out->pid, deadline, err);
	waitpid(helper, &status, 0);
	if (r < 0)
		goto kill;
	if (proc_start_time(out->pid, &out->start, err) < 0)
		goto kill;
	if (o->net_addr && *o->net_addr
		? net_setup_tenant(out->pid, o->host_if, o->tenant_if, o->net_addr, err) < 0
		: net_tenant_lo_up(out->pid, err) < 0)
		goto kill;
	if (write(go, "g", 1) != 1) {
		ferr_sys(err, FX_FAIL, "start the container's init");
		goto unplumb;
	}
	r = read_msg(st, &m, deadline, err);
	if (r < 0)
		goto unplumb;
	if (r == 1) {
		ferr_set(err, FX_FAIL, "%s", m.type == MSG_ERROR ? m.text : "unexpected status");
		goto unplumb;
	}
	return 0;
unplumb:
	if (o->net_addr && *o->net_addr)
		net_host_unplumb(o->host_if, o->net_addr, NULL);
kill:
	if (out->pid > 0)
		container_stop(out->pid, out->start, SIGKILL, 5000, NULL);
	out->pid = 0;
	return -1;
}

int container_start(const struct container_opts *o, struct container_info *out, ferr_t *err)
{
	int st[2], go[2];
	pid_t helper;
	struct stat sb;

	memset(out, 0, sizeof(*out));
	if (o->rootfs[0] != '/')
		return ferr_set(err, FX_USAGE, "rootfs %s: must be an absolute path", o->rootfs);
	if (!strcmp(o->rootfs, "/"))
		return ferr_set(err, FX_USAGE,
				"rootfs / is the host's own root: give the tenant "
				"a root file system directory of its own");
	if (stat(o->rootfs, &sb) < 0)
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL, "rootfs %s",
				o->rootfs);
	if (!S_ISDIR(sb.st_mode))
		return ferr_set(err, FX_USAGE, "rootfs %s: not a directory", o->rootfs);
	if (!o->argv || !o->argv[0])
		return ferr_set(err, FX_USAGE, "no command to run in the container");
	if (o->id_count && (userns_shift_rootfs(o->rootfs, o->id_base, o->id_count, err) < 0 ||
			    userns_make_dev(o->rootfs, o->id_base, err) < 0))
		return ferr_wrap(err, "start container %s", o->name);
	if (pipe2(st, O_CLOEXEC) < 0)
		return ferr_sys(err, FX_FAIL, "pipe");
	if (pipe2(go, O_CLOEXEC) < 0) {
		close(st[0]);
		close(st[1]);
		return ferr_sys(err, FX_FAIL, "pipe");
	}
	fflush(NULL);
	helper = fork();
	if (helper == 0) {
		close(st[0]);
		close(go[1]);
		container_helper(o, st[1], go[0]);
	}
	close(st[1]);
	close(go[0]);
	int r = helper < 0 ? ferr_sys(err, FX_FAIL, "fork")
			   : start_checked(o, st[0], go[1], helper, out, err);
	close(st[0]);
	close(go[1]);
	return r < 0 ? ferr_wrap(err, "start container %s", o->name) : 0;
}

int container_stop(pid_t pid, uint64_t start, int sig, int timeout_ms, ferr_t *err)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;

	if (pid <= 0 || !tenant_pid_alive(pid, start))
		return 0;
	if (kill(pid, sig) < 0 && errno != ESRCH)
		return ferr_sys(err, FX_FAIL, "signal %d to process %d", sig, (int)pid);
	while (tenant_pid_alive(pid, start)) {
		if (now_ns() >= deadline)
			return ferr_set(
			    err, FX_FAIL,
			    "process %d is still alive %d ms after signal %d "
			    "(an init ignores signals it has no handler for: use SIGKILL)",
			    (int)pid, timeout_ms, sig);
		usleep(10000);
	}
	return 0;
}

int container_prepare_restore(const char *rootfs, ferr_t *err)
{
	/* inside the root: a link the tenant planted never leads out of it */
	int fd = fs_open_in_root(rootfs, CONTAINER_CONSOLE + 1, O_WRONLY | O_CREAT | O_APPEND, 0600,
				 err);

	struct stat sb;

	if (fd < 0)
		return ferr_wrap(err, "create the console log");
	/* a tenant in a user namespace owns its rootfs: its console log too */
	if (stat(rootfs, &sb) == 0 && sb.st_uid != 0 && fchown(fd, sb.st_uid, sb.st_gid) < 0) {
		close(fd);
		return ferr_sys(err, FX_FAIL, "chown the console log");
	}
	close(fd);
	return 0;
}

int container_link_console(const char *state_dir, const char *name, const char *rootfs, ferr_t *err)
{
	char dir[PATH_MAX], link[PATH_MAX], target[PATH_MAX];

	if (registry_tenant_dir(state_dir, name, dir, sizeof(dir), err) < 0 ||
	    xsnprintf(link, sizeof(link), err, "%s/console.log", dir) < 0 ||
	    xsnprintf(target, sizeof(target), err, "%s%s", rootfs, CONTAINER_CONSOLE) < 0)
		return -1;
	if (unlink(link) < 0 && errno != ENOENT)
		return ferr_sys(err, FX_FAIL, "remove %s", link);
	if (symlink(target, link) < 0)
		return ferr_sys(err, FX_FAIL, "symlink %s", link);
	return 0;
}
