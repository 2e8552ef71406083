/*
 * wl_escape [--disk MAJ:MIN] [--peer-pid PID --peer-comm NAME] [--abstract NAME]
 * wl_escape --serve NAME
 *
 * Run as root inside a tenant, tries to get out of it, and must fail at
 * every attempt (once before it is ready, once more on verify: after a
 * dump/restore or a migration, the destination's isolation):
 *   mknod-disk   mknod a block device (default: the device of its own root
 *                file system, i.e. the host's disk) and read from it
 *   mount        mount a new tmpfs, proc, sysfs or a cgroup hierarchy
 *   proc-sys     write /proc/sys/kernel/panic (a host-wide sysctl; the value
 *                it holds, so an unisolated tenant changes nothing)
 *   sysrq        write /proc/sysrq-trigger
 *   module       finit_module / init_module must be refused (EPERM)
 *   kexec, bpf, perf, keyctl, reboot   refused (EPERM) or unavailable
 *   peer-signal  kill(PID, 0) reaching a process named NAME (another
 *                tenant's init, its host PID), or NAME anywhere in /proc
 *   peer-socket  connect to another tenant's abstract UNIX socket @NAME
 *   limits       raise its hard RLIMIT_NOFILE; write a cgroup limit under
 *                /sys/fs/cgroup
 * Each attempt prints "escape ATTEMPT: blocked (why)" or "ESCAPED". Verify:
 * every attempt blocked, both times.
 *
 * --serve NAME: the neighbour. Listens on the abstract UNIX socket @NAME;
 * verify: still listening, and no one ever connected.
 */
#include "zdtm.h"

#include <getopt.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <dirent.h>
#include <linux/reboot.h>

static const char *peer_comm, *abstract;
static pid_t peer_pid;
static dev_t disk;
static int escaped;

static void report(const char *what, bool blocked, const char *why)
{
	printf("escape %s: %s (%s)\n", what, blocked ? "blocked" : "ESCAPED", why);
	if (!blocked) {
		escaped++;
		zdtm_note_failure("escape %s succeeded: %s", what, why);
	}
}

static void try_disk(void)
{
	char buf[512];
	const char *p = "/tmp/.esc-disk";

	unlink(p);
	if (mknod(p, S_IFBLK | 0600, disk) < 0) {
		report("mknod-disk", true, strerror(errno));
		return;
	}
	int fd = open(p, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(p);
	report("mknod-disk", n <= 0, n > 0 ? "read the host's disk" : strerror(e));
}

static void try_mounts(void)
{
	static const char *const fs[][2] = {
	    {"tmpfs", "tmpfs"}, {"proc", "proc"}, {"sysfs", "sysfs"}, {"cgroup", "memory"}};
	char why[128] = "";
	bool any = false;

	mkdir("/tmp/.esc-mnt", 0700);
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
		if (mount(fs[i][0], "/tmp/.esc-mnt", fs[i][0], 0,
			  strcmp(fs[i][0], "cgroup") ? NULL : fs[i][1]) == 0) {
			umount2("/tmp/.esc-mnt", MNT_DETACH);
			snprintf(why, sizeof(why), "mounted %s", fs[i][0]);
			any = true;
		} else if (!why[0]) {
			snprintf(why, sizeof(why), "%s", strerror(errno));
		}
	}
	rmdir("/tmp/.esc-mnt");
	report("mount", !any, why);
}

/* val NULL: write back what the file holds (a harmless test where the
 * write is allowed, e.g. a host-wide sysctl on an unisolated tenant) */
static void try_write(const char *what, const char *path, const char *val)
{
	char cur[64] = "";
	int fd = open(path, O_RDONLY);

	if (!val && fd >= 0 && read(fd, cur, sizeof(cur) - 1) > 0)
		val = cur;
	if (fd >= 0)
		close(fd);
	if (!val)
		val = "0\n";
	fd = open(path, O_WRONLY);
	if (fd < 0) {
		report(what, true, strerror(errno));
		return;
	}
	ssize_t n = write(fd, val, strlen(val));
	int e = errno;
	close(fd);
	report(what, n < 0, n < 0 ? strerror(e) : "written");
}

/* A syscall that must be refused (EPERM), or not exist here (ENOSYS). */
static void try_sys(const char *what, long r)
{
	int e = errno;
	report(what, r < 0 && (e == EPERM || e == ENOSYS), r < 0 ? strerror(e) : "allowed");
}

static void try_syscalls(void)
{
	int fd = open("/bin/wl_escape", O_RDONLY | O_CLOEXEC);

	try_sys("module", syscall(SYS_finit_module, fd, "", 0));
	if (fd >= 0)
		close(fd);
	try_sys("module-init", syscall(SYS_init_module, "x", 1UL, ""));
	try_sys("kexec", syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0UL));
	try_sys("bpf", syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, NULL, 0));
	try_sys("perf", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0UL));
	try_sys("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
	/* CAD off: harmless where it is allowed (in a PID namespace it is) */
	try_sys("reboot", syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
				  LINUX_REBOOT_CMD_CAD_OFF, NULL));
}

static bool comm_is(pid_t pid, const char *name)
{
	char p[64], c[64] = "";
	snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return false;
	if (fgets(c, sizeof(c), f))
		c[strcspn(c, "\n")] = '\0';
	fclose(f);
	return !strcmp(c, name);
}

static void try_peer(void)
{
	if (!peer_comm)
		return;
	bool seen = false;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		pid_t p = (pid_t)atoi(e->d_name);
		if (p > 0 && p != getpid() && comm_is(p, peer_comm))
			seen = true;
	}
	if (d)
		closedir(d);
	report("peer-see", !seen, seen ? "found it in /proc" : "not in /proc");
	if (peer_pid > 0) {
		int r = kill(peer_pid, 0);
		bool hit = r == 0 && comm_is(peer_pid, peer_comm);
		report("peer-signal", !hit, r < 0 ? strerror(errno) : "a process of this tenant");
	}
}

static int abstract_addr(const char *name, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "%s", name);
	return (int)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
}

static void try_socket(void)
{
	struct sockaddr_un a;
	if (!abstract)
		return;
	int len = abstract_addr(abstract, &a);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = s < 0 ? -1 : connect(s, (struct sockaddr *)&a, (socklen_t)len);
	int e = errno;
	if (s >= 0)
		close(s);
	report("peer-socket", r < 0, r < 0 ? strerror(e) : "connected");
}

static void try_limits(void)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t want = rl.rlim_max == RLIM_INFINITY ? RLIM_INFINITY : rl.rlim_max + 1;
	struct rlimit up = {rl.rlim_cur, want};
	int r = rl.rlim_max == RLIM_INFINITY ? -1 : setrlimit(RLIMIT_NOFILE, &up);
	report("limits-rlimit", r < 0, r < 0 ? strerror(errno) : "raised its hard limit");
	if (r == 0)
		setrlimit(RLIMIT_NOFILE, &rl);
	try_write("limits-cgroup", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "-1");
	try_write("limits-cgroup-pids", "/sys/fs/cgroup/pids/pids.max", "max");
}

static void attempt_all(void)
{
	try_disk();
	try_mounts();
	try_write("proc-sys", "/proc/sys/kernel/panic", NULL);
	try_write("sysrq", "/proc/sysrq-trigger", "h");
	try_syscalls();
	try_peer();
	try_socket();
	try_limits();
	printf("escape: %d of the attempts got through\n", escaped);
	fflush(stdout);
}

static __attribute__((noreturn)) void serve(const char *name)
{
	struct sockaddr_un a;
	int len = abstract_addr(name, &a);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, (socklen_t)len) < 0 || listen(s, 8) < 0)
		zdtm_fail("listen on @%s: %s", name, strerror(errno));
	zdtm_ready();
	while (!zdtm_verify_requested()) {
		int c = accept(s, NULL, NULL);
		if (c >= 0) {
			zdtm_note_failure("someone reached @%s", name);
			close(c);
		}
		zdtm_nap_ms(50);
	}
	/* still ours: a second bind of the name fails */
	int t = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (t >= 0 && bind(t, (struct sockaddr *)&a, (socklen_t)len) == 0)
		zdtm_note_failure("@%s is not bound any more", name);
	zdtm_fail_if_noted();
	zdtm_pass();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"disk", required_argument, 0, 'd'},      {"peer-pid", required_argument, 0, 'p'},
	    {"peer-comm", required_argument, 0, 'c'}, {"abstract", required_argument, 0, 'a'},
	    {"serve", required_argument, 0, 's'},     {0, 0, 0, 0}};
	const char *srv = NULL;
	unsigned ma, mi;
	struct stat sb;
	int o;

	if (stat("/", &sb) == 0)
		disk = sb.st_dev;
	while ((o = getopt_long(argc, argv, "d:p:c:a:s:", opts, NULL)) != -1) {
		if (o == 'd' && sscanf(optarg, "%u:%u", &ma, &mi) == 2)
			disk = makedev(ma, mi);
		else if (o == 'p')
			peer_pid = (pid_t)zdtm_parse_long("--peer-pid", optarg, 1, 1 << 22);
		else if (o == 'c')
			peer_comm = optarg;
		else if (o == 'a')
			abstract = optarg;
		else if (o == 's')
			srv = optarg;
		else {
			fprintf(stderr, "usage: see the comment at the top of wl_escape.c\n");
			return 2;
		}
	}
	zdtm_init();
	if (srv)
		serve(srv);
	attempt_all();
	zdtm_ready();
	while (!zdtm_verify_requested())
		zdtm_sleep_ms(1000);
	attempt_all();
	zdtm_fail_if_noted();
	zdtm_pass();
}
