/* Accelerator probe for VM tenants (vmprobe.h). */
#include "tenant/vmprobe.h"

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
#include "lib/util.h"

#define PROBE_MS   4000
#define PROBE_EXIT 0x21 /* QEMU exits with (0x21 << 1) | 1 */

const char *vm_accel_str(enum vm_accel a)
{
	return a == VM_ACCEL_KVM ? "kvm" : a == VM_ACCEL_TCG ? "tcg" : "none";
}

const char *vm_accel_arg(enum vm_accel a)
{
	return a == VM_ACCEL_KVM ? "kvm" : "tcg,thread=multi";
}

int vm_version_cmp(const char *a, const char *b)
{
	for (;;) {
		char *ea, *eb;
		long x = strtol(a, &ea, 10), y = strtol(b, &eb, 10);
		if (x != y)
			return x < y ? -1 : 1;
		if (*ea != '.' && *eb != '.')
			return 0;
		a = *ea == '.' ? ea + 1 : ea;
		b = *eb == '.' ? eb + 1 : eb;
	}
}

int vm_qemu_locate(char *out, size_t len, ferr_t *err)
{
	const char *env = getenv("FERRY_QEMU"), *path = getenv("PATH");
	char dir[PATH_MAX];

	if (env && *env) {
		if (access(env, X_OK) < 0)
			return ferr_sys(err, FX_HOST, "FERRY_QEMU=%s", env);
		return xsnprintf(out, len, err, "%s", env);
	}
	for (const char *p = path ? path : "/usr/bin:/bin"; p && *p;) {
		const char *c = strchr(p, ':');
		size_t n = c ? (size_t)(c - p) : strlen(p);
		snprintf(dir, sizeof(dir), "%.*s/qemu-system-x86_64", (int)n, p);
		if (n && access(dir, X_OK) == 0)
			return xsnprintf(out, len, err, "%s", dir);
		p = c ? c + 1 : NULL;
	}
	return ferr_set(err, FX_HOST,
			"no qemu-system-x86_64 in PATH (Debian: apt-get install qemu-system-x86; "
			"or set FERRY_QEMU)");
}

/* Run argv with stdio on /dev/null (stdout to out_fd when >= 0) for up to
 * ms; its wait status, or -2 on timeout (killed). */
static int run_timed(char *const argv[], int out_fd, int ms)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(out_fd >= 0 ? out_fd : null, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -1;
		if (waited >= ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -2;
		}
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
}

/* The binary's version, remembered per program file (path, inode, size,
 * mtime): a migration's destination asks it several times, some of them
 * while the VM is stopped. */
static struct {
	pthread_mutex_t lock;
	char path[PATH_MAX];
	struct stat st;
	char version[32];
} ver_memo = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int run_version(const char *qemu, char *out, size_t len, ferr_t *err);

int vm_qemu_version(const char *qemu, char *out, size_t len, ferr_t *err)
{
	struct stat st;
	bool have = stat(qemu, &st) == 0;

	pthread_mutex_lock(&ver_memo.lock);
	bool hit = have && ver_memo.version[0] && !strcmp(ver_memo.path, qemu) &&
		   same_file(&ver_memo.st, &st);
	if (hit)
		snprintf(out, len, "%s", ver_memo.version);
	pthread_mutex_unlock(&ver_memo.lock);
	if (hit)
		return 0;
	if (run_version(qemu, out, len, err) < 0)
		return -1;
	pthread_mutex_lock(&ver_memo.lock);
	if (have && strlen(qemu) < sizeof(ver_memo.path)) {
		snprintf(ver_memo.path, sizeof(ver_memo.path), "%s", qemu);
		ver_memo.st = st;
		snprintf(ver_memo.version, sizeof(ver_memo.version), "%s", out);
	}
	pthread_mutex_unlock(&ver_memo.lock);
	return 0;
}

static int run_version(const char *qemu, char *out, size_t len, ferr_t *err)
{
	char tmpl[] = "/tmp/ferry-qver-XXXXXX", buf[256] = "";
	char *argv[] = {(char *)qemu, "-version", NULL};
	int fd = mkstemp(tmpl), st;

	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "temporary file");
	unlink(tmpl);
	st = run_timed(argv, fd, 10000);
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	const char *v = strstr(buf, "version ");
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || !v)
		return ferr_set(err, FX_HOST, "%s -version does not run", qemu);
	v += 8;
	return xsnprintf(out, len, err, "%.*s", (int)strspn(v, "0123456789."), v);
}

/* The probe guest: a boot sector that writes PROBE_EXIT to the
 * isa-debug-exit port (mov al, 0x21; out 0xf4, al; hlt; jmp $-1). */
static int write_probe_guest(char *path, size_t len, ferr_t *err)
{
	static const unsigned char code[] = {0xb0, PROBE_EXIT, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd};
	unsigned char sec[512] = {0};
	int fd;

	if (xsnprintf(path, len, err, "/tmp/ferry-vmprobe-XXXXXX") < 0)
		return -1;
	if ((fd = mkstemp(path)) < 0)
		return ferr_sys(err, FX_FAIL, "temporary file");
	memcpy(sec, code, sizeof(code));
	sec[510] = 0x55;
	sec[511] = 0xaa;
	if (write(fd, sec, sizeof(sec)) != (ssize_t)sizeof(sec)) {
		close(fd);
		unlink(path);
		return ferr_sys(err, FX_FAIL, "probe guest %s", path);
	}
	close(fd);
	return 0;
}

/* Does the probe guest boot with this accelerator? */
static bool boots(const char *qemu, const char *img, const char *accel, int *st)
{
	char drive[PATH_MAX + 64];
	snprintf(drive, sizeof(drive), "file=%s,format=raw,if=floppy", img);
	char *argv[] = {(char *)qemu,
			"-accel",
			(char *)accel,
			"-display",
			"none",
			"-nodefaults",
			"-no-user-config",
			"-m",
			"16",
			"-device",
			"isa-debug-exit,iobase=0xf4,iosize=1",
			"-drive",
			drive,
			"-boot",
			"a",
			NULL};
	*st = run_timed(argv, -1, PROBE_MS);
	return *st >= 0 && WIFEXITED(*st) && WEXITSTATUS(*st) == ((PROBE_EXIT << 1) | 1);
}

static int probe_now(struct vm_probe *p, ferr_t *err)
{
	char img[PATH_MAX];
	int st, fd;

	if (write_probe_guest(img, sizeof(img), err) < 0)
		return -1;
	if ((fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(p->detail, sizeof(p->detail), "/dev/kvm cannot be opened (%s): TCG",
			 strerror(errno));
	} else {
		close(fd);
		if (boots(p->qemu, img, "kvm", &st)) {
			p->accel = VM_ACCEL_KVM;
			snprintf(p->detail, sizeof(p->detail), "a probe guest boots under KVM");
			unlink(img);
			return 0;
		}
		snprintf(p->detail, sizeof(p->detail),
			 "/dev/kvm opens but a probe guest %s under KVM: TCG",
			 st == -2 ? "does not boot within 2.5 s" : "fails");
	}
	bool tcg = boots(p->qemu, img, "tcg", &st);
	unlink(img);
	if (!tcg)
		return ferr_set(err, FX_HOST, "%s does not boot a probe guest under TCG either",
				p->qemu);
	p->accel = VM_ACCEL_TCG;
	return 0;
}

static void boot_id(char *out, size_t len)
{
	char *b = NULL;
	size_t n = 0;

	snprintf(out, len, "?");
	if (fs_read_all("/proc/sys/kernel/random/boot_id", &b, &n, 128, NULL) == 0) {
		snprintf(out, len, "%.*s", (int)strcspn(b, "\n"), b);
		free(b);
	}
}

/* Cache: "BOOT_ID QEMU_VERSION ACCEL\nDETAIL\n" (the kernel and QEMU
 * decide; the binary's path does not). */
static bool cache_read(const char *path, const char *key, struct vm_probe *p)
{
	char *b = NULL, acc[8];
	size_t n = 0, kl = strlen(key);

	if (fs_read_all(path, &b, &n, 4096, NULL) < 0)
		return false;
	bool ok = n > kl + 1 && !strncmp(b, key, kl) && b[kl] == ' ' &&
		  sscanf(b + kl + 1, "%7s", acc) == 1 && strchr(b, '\n');
	if (ok) {
		p->accel = !strcmp(acc, "kvm") ? VM_ACCEL_KVM : VM_ACCEL_TCG;
		const char *d = strchr(b, '\n') + 1;
		snprintf(p->detail, sizeof(p->detail), "%.*s", (int)strcspn(d, "\n"), d);
	}
	free(b);
	return ok;
}

#define PROBE_CACHE_DIR "/run/ferry"
#define PROBE_CACHE	PROBE_CACHE_DIR "/vm-probe"

int vm_probe(struct vm_probe *p, ferr_t *err)
{
	char key[PATH_MAX + 128], bid[64];
	const char *path = PROBE_CACHE;

	memset(p, 0, sizeof(*p));
	if (vm_qemu_locate(p->qemu, sizeof(p->qemu), err) < 0 ||
	    vm_qemu_version(p->qemu, p->version, sizeof(p->version), err) < 0)
		return -1;
	boot_id(bid, sizeof(bid));
	snprintf(key, sizeof(key), "%s %s", bid, p->version);
	bool cache = fs_mkdir_p(PROBE_CACHE_DIR, 0755, NULL) == 0;
	if (cache && cache_read(path, key, p))
		return 0;
	if (probe_now(p, err) < 0)
		return -1;
	if (cache) {
		char buf[sizeof(key) + 300];
		int n = snprintf(buf, sizeof(buf), "%s %s\n%s\n", key, vm_accel_str(p->accel),
				 p->detail);
		fs_write_atomic(path, buf, (size_t)n, 0644, NULL);
	}
	return 0;
}
