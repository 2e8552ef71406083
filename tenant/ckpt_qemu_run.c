/* Starting and ending a VM's QEMU (ckpt_qemu.h). */
#define LOG_PREFIX "qemu"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tenant/ckpt_qemu.h"
#include "tenant/kind_tree.h"
#include "tenant/vmprobe.h"

#define QEMU_START_MS 20000
#define MAX_ARGS      96

struct qargs {
	char *v[MAX_ARGS + 1];
	int n;
	char buf[4][PATH_MAX + 128];
};

static void add(struct qargs *a, const char *s)
{
	if (a->n < MAX_ARGS)
		a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

/* The host's part of the command line. */
static int host_args(const char *dir, const char *name, const struct tenant_net *net,
		     const struct vm_probe *p, bool incoming, struct qargs *a, ferr_t *err)
{
	add(a, "-name");
	add(a, name);
	add(a, "-accel");
	add(a, vm_accel_arg(p->accel));
	add(a, "-display");
	add(a, "none");
	add(a, "-qmp");
	if (xsnprintf(a->buf[0], sizeof(a->buf[0]), err, "unix:%s/qmp.sock,server=on,wait=off",
		      dir) < 0 ||
	    xsnprintf(a->buf[1], sizeof(a->buf[1]), err,
		      "file,id=ser0,path=%s/console.log,append=on", dir) < 0)
		return -1;
	add(a, a->buf[0]);
	add(a, "-chardev");
	add(a, a->buf[1]);
	if (net && net->host_if[0]) {
		if (xsnprintf(a->buf[2], sizeof(a->buf[2]), err,
			      "tap,id=n0,ifname=%s,script=no,downscript=no", net->host_if) < 0)
			return -1;
		add(a, "-netdev");
		add(a, a->buf[2]);
	}
	if (incoming) {
		add(a, "-incoming");
		add(a, "defer");
		add(a, "-S");
	}
	return 0;
}

/* The middle process of an incoming QEMU guards it: it holds the read end
 * of a pipe from the loading ferry and kills QEMU when that ferry goes
 * away before it released the VM (a byte: keep it). */
static void guard(pid_t qemu, int gfd)
{
	char c = 0;
	ssize_t n;

	while ((n = read(gfd, &c, 1)) < 0 && errno == EINTR)
		;
	if (n != 1 || c != 'k')
		kill(qemu, SIGKILL);
	_exit(0);
}

/* Middle process: a new session, nothing of ferry's open but the pipes
 * (sockets of an agent must not outlive it here or in QEMU), output into
 * DIR/qemu.log, fork QEMU, tell its pid, guard it when asked. */
static void exec_qemu(const char *dir, struct qargs *a, int pfd, int gfd)
{
	char log[PATH_MAX];
	int null, fd;

	setsid();
	pfd = fcntl(pfd, F_DUPFD, 10);
	gfd = gfd >= 0 ? fcntl(gfd, F_DUPFD, 10) : -1;
	if (pfd < 0 || dup2(pfd, 3) < 0 || (gfd >= 0 && dup2(gfd, 4) < 0))
		_exit(1);
	pfd = 3;
	gfd = gfd >= 0 ? 4 : -1;
	close_range(gfd >= 0 ? 5 : 4, ~0U, 0);
	null = open("/dev/null", O_RDWR);
	snprintf(log, sizeof(log), "%s/qemu.log", dir);
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(null, 0);
	dup2(fd >= 0 ? fd : null, 1);
	dup2(fd >= 0 ? fd : null, 2);
	pid_t pid = fork();
	if (pid != 0) {
		ssize_t w = write(pfd, &pid, sizeof(pid));
		(void)w;
		close(pfd);
		if (pid > 0 && gfd >= 0)
			guard(pid, gfd);
		_exit(pid < 0);
	}
	close(pfd);
	if (gfd >= 0)
		close(gfd);
	if (null > 2)
		close(null);
	if (fd > 2)
		close(fd);
	execv(a->v[0], a->v);
	fprintf(stderr, "exec %s: %s\n", a->v[0], strerror(errno));
	_exit(127);
}

/* Fork twice: QEMU is nobody's child here and outlives ferry. With g, the
 * middle process stays as QEMU's guard (qemu_guard_release). */
static int spawn(const char *dir, struct qargs *a, pid_t *pid, struct qemu_guard *g, ferr_t *err)
{
	int p[2], gp[2] = {-1, -1}, st;

	if (pipe2(p, O_CLOEXEC) < 0)
		return ferr_sys(err, FX_FAIL, "pipe");
	if (g && pipe2(gp, O_CLOEXEC) < 0) {
		close(p[0]);
		close(p[1]);
		return ferr_sys(err, FX_FAIL, "pipe");
	}
	pid_t mid = fork();
	if (mid == 0) {
		close(p[0]);
		if (g)
			close(gp[1]);
		exec_qemu(dir, a, p[1], gp[0]);
	}
	close(p[1]);
	if (g)
		close(gp[0]);
	ssize_t n = mid > 0 ? read(p[0], pid, sizeof(*pid)) : -1;
	close(p[0]);
	if (g && mid > 0 && n == sizeof(*pid) && *pid > 0) {
		g->mid = mid;
		g->fd = gp[1];
		return 0;
	}
	if (g)
		close(gp[1]);
	if (mid > 0)
		waitpid(mid, &st, 0);
	if (mid < 0 || n != sizeof(*pid) || *pid <= 0)
		return ferr_set(err, FX_FAIL, "could not start QEMU");
	return 0;
}

void qemu_guard_release(struct qemu_guard *g, bool keep)
{
	int st;

	if (!g || g->fd < 0)
		return;
	if (keep && write(g->fd, "k", 1) != 1)
		keep = false;
	close(g->fd);
	g->fd = -1;
	waitpid(g->mid, &st, 0);
}

/* The last line QEMU wrote (its error, when it failed to start). */
static void log_tail(const char *dir, char *out, size_t len)
{
	char path[PATH_MAX], *b = NULL;
	size_t n = 0;

	snprintf(out, len, "no message");
	if (xsnprintf_path(path, sizeof(path), dir, "qemu.log") < 0 ||
	    fs_read_all(path, &b, &n, 1 << 16, NULL) < 0)
		return;
	while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r'))
		n--;
	b[n] = 0;
	char *l = strrchr(b, '\n');
	if (n > 0)
		snprintf(out, len, "%s", l ? l + 1 : b);
	free(b);
}

/* Wait until QMP answers or QEMU is gone. */
static int wait_qmp(const char *dir, pid_t pid, struct qmp **q, ferr_t *err)
{
	char sock[PATH_MAX], tail[512];
	uint64_t t0 = now_ns();

	if (xsnprintf_path(sock, sizeof(sock), dir, "qmp.sock") < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s", dir);
	for (;;) {
		ferr_t e = {0};
		if (access(sock, F_OK) == 0 && qmp_open(sock, 5000, q, &e) == 0)
			return 0;
		if (!ktree_alive(pid)) {
			log_tail(dir, tail, sizeof(tail));
			return ferr_set(err, FX_FAIL, "QEMU exited while starting: %s", tail);
		}
		if (ms_since(t0) > QEMU_START_MS) {
			kill(pid, SIGKILL);
			return ferr_set(err, FX_FAIL, "QEMU did not open its monitor in %d s%s%s",
					QEMU_START_MS / 1000, e.msg[0] ? ": " : "", e.msg);
		}
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
}

/* A plain value: letters, digits and ._-+ (no option separators). */
static bool plain(const char *v, size_t max)
{
	size_t n = strlen(v);

	return n > 0 && n <= max &&
	       strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-+") == n;
}

/* An absolute path without commas (QEMU's option separator) or "..". */
static bool abs_path(const char *v)
{
	return v[0] == '/' && !strchr(v, ',') && !strstr(v, "/../") && strlen(v) < PATH_MAX;
}

static bool drive_ok(const char *v)
{
	const char *rest;
	char path[PATH_MAX];

	if (strncmp(v, "file=", 5) || !(rest = strchr(v + 5, ',')) ||
	    (size_t)(rest - v - 5) >= sizeof(path))
		return false;
	snprintf(path, sizeof(path), "%.*s", (int)(rest - v - 5), v + 5);
	return abs_path(path) && (!strcmp(rest, ",format=raw,if=ide,index=0,media=disk") ||
				  !strcmp(rest, ",format=qcow2,if=ide,index=0,media=disk"));
}

static bool nic_ok(const char *v)
{
	const char *mac = v + strlen("virtio-net-pci,netdev=n0,mac=");

	if (strncmp(v, "virtio-net-pci,netdev=n0,mac=", mac - v) || strlen(mac) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? mac[i] != ':' : !strchr("0123456789abcdefABCDEF", mac[i]))
			return false;
	return true;
}

/* One option and its value (v: NULL for a flag). */
static bool option_ok(const char *a, const char *v)
{
	if (!strcmp(a, "-nodefaults") || !strcmp(a, "-no-user-config"))
		return true;
	if (!v)
		return false;
	if (!strcmp(a, "-machine"))
		return !strncmp(v, "pc-", 3) && plain(v, 63);
	if (!strcmp(a, "-cpu") || !strcmp(a, "-m") || !strcmp(a, "-smp"))
		return plain(v, 63);
	if (!strcmp(a, "-serial"))
		return !strcmp(v, "chardev:ser0");
	if (!strcmp(a, "-device"))
		return nic_ok(v);
	if (!strcmp(a, "-drive"))
		return drive_ok(v);
	if (!strcmp(a, "-kernel") || !strcmp(a, "-initrd"))
		return abs_path(v);
	if (!strcmp(a, "-append"))
		return strlen(v) < 4096;
	return false;
}

int qemu_config_check(int argc, char *const *argv, ferr_t *err)
{
	if (argc < 1 || strcmp(argv[0], "qemu-system-x86_64"))
		return ferr_set(err, FX_INTEGRITY,
				"a VM's configuration starts with qemu-system-x86_64");
	for (int i = 1; i < argc; i++) {
		bool flag = !strcmp(argv[i], "-nodefaults") || !strcmp(argv[i], "-no-user-config");
		const char *v = !flag && i + 1 < argc ? argv[i + 1] : NULL;
		if (!option_ok(argv[i], v))
			return ferr_set(err, FX_INTEGRITY,
					"the VM's configuration has an option ferry does not start "
					"QEMU with: %.64s%s%.64s",
					argv[i], v ? " " : "", v ? v : "");
		if (v)
			i++;
	}
	return 0;
}

int qemu_launch(const char *dir, const char *name, int argc, char *const *argv,
		const struct tenant_net *net, struct qemu_guard *g, pid_t *pid, struct qmp **q,
		ferr_t *err)
{
	bool incoming = g != NULL;
	struct qargs a = {.n = 0};
	struct vm_probe p;
	char sock[PATH_MAX];
	struct qmp *qs = NULL;

	if (qemu_config_check(argc, argv, err) < 0)
		return ferr_wrap(err, "VM %s", name);
	if (vm_probe(&p, err) < 0)
		return -1;
	add(&a, p.qemu);
	for (int i = 1; i < argc; i++)
		add(&a, argv[i]);
	if (host_args(dir, name, net, &p, incoming, &a, err) < 0)
		return -1;
	if (a.n >= MAX_ARGS)
		return ferr_set(err, FX_USAGE, "VM %s: too many QEMU arguments", name);
	if (xsnprintf_path(sock, sizeof(sock), dir, "qmp.sock") < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s", dir);
	unlink(sock);
	pr_info("starting QEMU for %s (%s)%s", name, vm_accel_str(p.accel),
		incoming ? ", incoming" : "");
	if (g)
		g->fd = -1;
	if (spawn(dir, &a, pid, g, err) < 0)
		return ferr_wrap(err, "VM %s", name);
	if (wait_qmp(dir, *pid, &qs, err) < 0) {
		qemu_guard_release(g, false);
		return ferr_wrap(err, "VM %s", name);
	}
	if (q)
		*q = qs;
	else
		qmp_close(qs);
	return 0;
}

int qemu_qmp(const char *dir, struct qmp **q, ferr_t *err)
{
	char sock[PATH_MAX];

	if (xsnprintf_path(sock, sizeof(sock), dir, "qmp.sock") < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s", dir);
	return qmp_open(sock, 5000, q, err);
}

void qemu_end(struct qmp *q, pid_t pid, int ms)
{
	if (q)
		qmp_exec(q, "quit", NULL, -1, 2000, NULL, NULL);
	for (int t = 0; t < ms && ktree_alive(pid); t += 10) {
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	if (ktree_alive(pid))
		ktree_kill(pid, SIGKILL, 5000, NULL);
}

int qemu_status(struct qmp *q, char *out, size_t len, ferr_t *err)
{
	json_t *r = NULL;

	if (qmp_exec(q, "query-status", NULL, -1, 5000, &r, err) < 0)
		return -1;
	const char *s = json_string_value(json_object_get(r, "status"));
	snprintf(out, len, "%s", s ? s : "?");
	json_decref(r);
	return 0;
}

static int run_machine_help(const char *qemu, char *out, size_t len, ferr_t *err);

/* Remembered per program file, as its version (vmprobe.c): the
 * destination's load asks while the VM is stopped. */
int qemu_machine(const char *qemu, char *out, size_t len, ferr_t *err)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char m_path[PATH_MAX], m_type[64];
	static struct stat m_st;
	struct stat st;
	bool have = stat(qemu, &st) == 0, hit;

	pthread_mutex_lock(&lock);
	hit = have && m_type[0] && !strcmp(m_path, qemu) && m_st.st_ino == st.st_ino &&
	      m_st.st_dev == st.st_dev && m_st.st_size == st.st_size &&
	      m_st.st_mtim.tv_sec == st.st_mtim.tv_sec &&
	      m_st.st_mtim.tv_nsec == st.st_mtim.tv_nsec;
	if (hit)
		snprintf(out, len, "%s", m_type);
	pthread_mutex_unlock(&lock);
	if (hit)
		return 0;
	if (run_machine_help(qemu, out, len, err) < 0)
		return -1;
	pthread_mutex_lock(&lock);
	if (have && strlen(qemu) < sizeof(m_path)) {
		snprintf(m_path, sizeof(m_path), "%s", qemu);
		snprintf(m_type, sizeof(m_type), "%s", out);
		m_st = st;
	}
	pthread_mutex_unlock(&lock);
	return 0;
}

static int run_machine_help(const char *qemu, char *out, size_t len, ferr_t *err)
{
	char cmd[PATH_MAX + 64], line[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "'%s' -machine help 2>/dev/null", qemu);
	if (strchr(qemu, '\'') || !(f = popen(cmd, "r")))
		return ferr_set(err, FX_HOST, "cannot run %s -machine help", qemu);
	int found = -1;
	while (fgets(line, sizeof(line), f)) {
		char *a = strstr(line, "(alias of ");
		if (strncmp(line, "pc ", 3) || !a)
			continue;
		a += 10;
		snprintf(out, len, "%.*s", (int)strcspn(a, ")\n"), a);
		found = 0;
	}
	pclose(f);
	if (found < 0)
		return ferr_set(err, FX_HOST, "%s knows no machine type \"pc\"", qemu);
	return 0;
}
