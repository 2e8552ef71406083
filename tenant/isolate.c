/* Isolation of container tenants as it travels (isolate.h). */
#define LOG_PREFIX "isolate"
#include "tenant/isolate.h"

#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "criu/idmap.h"
#include "tenant/rootfs.h"
#include "tenant/userns.h"

Ferry__Isolation *iso_to_pb(const struct tenant_iso *iso)
{
	Ferry__Isolation *p;

	if (!iso->id_count && !tenant_has_cgroup(iso))
		return NULL;
	if (!(p = calloc(1, sizeof(*p))))
		return NULL;
	ferry__isolation__init(p);
	p->has_id_base = p->has_id_count = true;
	p->id_base = iso->id_base;
	p->id_count = iso->id_count;
	p->has_mem_max = p->has_pids_max = p->has_cpu_milli = p->has_io_weight = true;
	p->mem_max = iso->mem_max;
	p->pids_max = iso->pids_max;
	p->cpu_milli = iso->cpu_milli;
	p->io_weight = iso->io_weight;
	p->has_hardened = true;
	p->hardened = iso->hardened;
	return p;
}

void iso_from_pb(const Ferry__Isolation *p, struct tenant_iso *iso)
{
	*iso = (struct tenant_iso){0};
	if (!p)
		return;
	iso->id_base = p->has_id_base ? p->id_base : 0;
	iso->id_count = p->has_id_count ? p->id_count : 0;
	iso->mem_max = p->has_mem_max && p->mem_max > 0 ? p->mem_max : 0;
	iso->pids_max = p->has_pids_max && p->pids_max > 0 ? p->pids_max : 0;
	iso->cpu_milli = p->has_cpu_milli && p->cpu_milli > 0 ? p->cpu_milli : 0;
	iso->io_weight = p->has_io_weight && p->io_weight > 0 ? p->io_weight : 0;
	iso->hardened = p->has_hardened && p->hardened;
}

int iso_precheck(const char *state_dir, const char *name, const struct tenant_iso *iso, ferr_t *err)
{
	if (iso->id_count && iso->id_base < USERNS_FIRST)
		return ferr_set(err, FX_INTEGRITY,
				"tenant %s would map its root to host ID %u: ferry never maps a "
				"tenant below %u",
				name, iso->id_base, USERNS_FIRST);
	return userns_check_free(state_dir, name, iso->id_base, iso->id_count, err);
}

int iso_precheck_remap(const char *state_dir, const char *name, const struct tenant_iso *iso,
		       bool may_remap, bool *remap, ferr_t *err)
{
	*remap = false;
	if (iso_precheck(state_dir, name, iso, err) == 0)
		return 0;
	if (err->code != FX_CONFLICT)
		return -1;
	if (!may_remap)
		return ferr_wrap(err, "its files are not its own here: it keeps its range");
	if (iso->id_count != USERNS_SIZE)
		return ferr_wrap(err, "a range of %u IDs is not re-mapped (ferry's are %u)",
				 iso->id_count, USERNS_SIZE);
	pr_info("%s: the restore re-maps it to a free range", err->msg);
	ferr_clear(err);
	*remap = true;
	return 0;
}

static bool same_tree(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	return a[0] && b[0] && realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* A copy never shares a --rootfs tree with another tenant of this host in
 * a user namespace (the one holding its range, or any other): shifting the
 * tree would take the files from under that tenant. */
static int check_own_tree(const char *state_dir, const struct tenant_rec *rec, const char *why,
			  ferr_t *err)
{
	struct tenant_rec *recs;
	size_t n;
	int r = 0;

	if (rec->image[0])
		return 0; /* an image tenant's layer is its own (STATE/tenants/NAME) */
	if (registry_list(state_dir, &recs, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct tenant_rec *o = &recs[i];
		if (!r && strcmp(o->name, rec->name) && o->iso.id_count && o->state != TS_GONE &&
		    same_tree(o->rootfs, rec->rootfs))
			r = ferr_set(err, FX_CONFLICT,
				     "%s; and %s is tenant %s's root file system: a copy under "
				     "another ID range cannot share its files (restore it from a "
				     "snapshot with --name, which gives the copy files of its own)",
				     why, rec->rootfs, o->name);
		tenant_rec_free(&recs[i]);
	}
	free(recs);
	return r;
}

static int remap_files(const char *state_dir, struct tenant_rec *rec, const char *dir,
		       struct iso_remap *rm, ferr_t *err)
{
	struct idmap_shift sh = {rm->from, rm->to, rm->count};
	char tdir[PATH_MAX];

	if (registry_tenant_dir(state_dir, rec->name, tdir, sizeof(tdir), err) < 0 ||
	    fs_mkdir_p(tdir, 0700, err) < 0 ||
	    xsnprintf(rm->dir, sizeof(rm->dir), err, "%s/idmap-images", tdir) < 0 ||
	    fs_rm_rf(rm->dir, err) < 0 || idmap_dir(dir, rm->dir, &sh, &rm->rewritten, err) < 0)
		return -1;
	/* CRIU restores into the overlay: the shift goes through it */
	if (rec->image[0] && rootfs_mount_root(rec->rootfs, rec->image, err) < 0)
		return -1;
	snprintf(rm->rootfs, sizeof(rm->rootfs), "%s", rec->rootfs);
	rm->tree = !rec->image[0];
	return userns_reshift_rootfs(rec->rootfs, rm->from, rm->to, rm->count, err);
}

int iso_remap_restore(const char *state_dir, struct tenant_rec *rec, const char *dir, bool lazy,
		      struct iso_remap *rm, ferr_t *err)
{
	char why[sizeof(err->msg)];

	memset(rm, 0, sizeof(*rm));
	if (iso_precheck(state_dir, rec->name, &rec->iso, err) == 0)
		return 0;
	if (err->code != FX_CONFLICT)
		return -1;
	if (rec->iso.id_count != USERNS_SIZE)
		return ferr_wrap(err, "a range of %u IDs is not re-mapped (ferry's are %u)",
				 rec->iso.id_count, USERNS_SIZE);
	snprintf(why, sizeof(why), "%s", err->msg);
	ferr_clear(err);
	if (check_own_tree(state_dir, rec, why, err) < 0 ||
	    userns_alloc(state_dir, rec->name, &rm->to, err) < 0)
		return -1;
	rm->from = rec->iso.id_base;
	rm->count = rec->iso.id_count;
	rm->lazy = lazy;
	const char *fault = getenv("FERRY_FAULT"); /* testing hook (docs/isolation.md) */
	if (remap_files(state_dir, rec, dir, rm, err) < 0 ||
	    (fault && !strcmp(fault, "remap-after-shift") &&
	     ferr_set(err, FX_FAIL, "FERRY_FAULT=remap-after-shift: failing after the shift") <
		 0)) {
		ferr_wrap(err, "re-mapping tenant %s from host IDs %u.. to %u..", rec->name,
			  rm->from, rm->to);
		iso_remap_end(state_dir, rm, false);
		return -1;
	}
	rec->iso.id_base = rm->to;
	pr_info("tenant %s: id range re-mapped from %u-%u to %u-%u (%s; %u IDs in its images)",
		rec->name, rm->from, rm->from + rm->count - 1, rm->to, rm->to + rm->count - 1, why,
		rm->rewritten);
	return 0;
}

void iso_remap_end(const char *state_dir, struct iso_remap *rm, bool ok)
{
	ferr_t e = {0};

	if (!rm->to)
		return;
	userns_unclaim(state_dir, rm->to);
	/* a tree the copy shifted, which may be a source's shared storage */
	if (!ok && rm->tree && rm->rootfs[0] &&
	    userns_reshift_rootfs(rm->rootfs, rm->to, rm->from, rm->count, &e) < 0)
		pr_warn("tenant tree %s stays under host IDs %u..: %s", rm->rootfs, rm->to, e.msg);
	if (rm->dir[0] && (!ok || !rm->lazy))
		fs_rm_rf(rm->dir, NULL);
	if (!ok)
		rm->to = 0;
}

#define UFFD_SYSCTL "/proc/sys/vm/unprivileged_userfaultfd"

int iso_precheck_lazy(const struct tenant_iso *iso, bool tune, ferr_t *err)
{
	long was = fs_read_long(UFFD_SYSCTL);
	FILE *f;

	if (!iso->id_count || was == 1)
		return 0;
	if (!tune)
		return ferr_set(
		    err, FX_HOST,
		    "post-copy of a tenant in a user namespace needs userfaultfd inside "
		    "it, which this host allows only with vm.unprivileged_userfaultfd=1 "
		    "(a host setting, see `ferry check`; the agent sets it with "
		    "'tune-host userfaultfd' in its --config): use --mode stop-copy");
	if (!(f = fopen(UFFD_SYSCTL, "we")) || fputs("1", f) < 0 || fclose(f) != 0) {
		if (f)
			fclose(f);
		return ferr_sys(err, FX_HOST, "setting vm.unprivileged_userfaultfd=1");
	}
	pr_warn("tune-host userfaultfd: set vm.unprivileged_userfaultfd=1 (was %ld) on this host "
		"for a post-copy into a user namespace",
		was);
	return 0;
}

/* ---- inside a container's init ---- */

static int fail_msg(char *msg, size_t len, const char *what, int e)
{
	snprintf(msg, len, "%s: %s", what, strerror(e));
	return -e;
}

int iso_mount_sys(const char *where, char *msg, size_t len)
{
	if (mkdir(where, 0555) < 0 && errno != EEXIST)
		return fail_msg(msg, len, "create /sys", errno);
	if (mount("sysfs", where, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return fail_msg(msg, len, "mount a read-only /sys", errno);
	return 0;
}

int iso_mask_paths(char *msg, size_t len)
{
	static const char *const masked[] = {
	    "/proc/kcore",	 "/proc/keys",	      "/proc/latency_stats", "/proc/timer_list",
	    "/proc/timer_stats", "/proc/sched_debug", "/proc/acpi",	     "/proc/asound",
	    "/proc/scsi",	 "/sys/firmware"};
	static const char *const ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
					 "/proc/sysrq-trigger"};
	struct stat sb;
	char what[96];

	for (size_t i = 0; i < ARRAY_SIZE(masked); i++) {
		if (stat(masked[i], &sb) < 0)
			continue;
		snprintf(what, sizeof(what), "mask %s", masked[i]);
		int r = S_ISDIR(sb.st_mode)
			    ? mount("tmpfs", masked[i], "tmpfs",
				    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
			    : mount("/dev/null", masked[i], NULL, MS_BIND, NULL);
		if (r < 0)
			return fail_msg(msg, len, what, errno);
	}
	for (size_t i = 0; i < ARRAY_SIZE(ro); i++) {
		if (stat(ro[i], &sb) < 0)
			continue;
		snprintf(what, sizeof(what), "make %s read-only", ro[i]);
		if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    mount(NULL, ro[i], NULL,
			  MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) < 0)
			return fail_msg(msg, len, what, errno);
	}
	return 0;
}

/* The OCI runtime spec's default set (runc, containerd, podman). */
static const int keep_caps[] = {CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,	     CAP_FOWNER,
				CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,	     CAP_SETUID,
				CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
				CAP_KILL,    CAP_AUDIT_WRITE};

static bool kept(int c)
{
	for (size_t i = 0; i < ARRAY_SIZE(keep_caps); i++)
		if (keep_caps[i] == c)
			return true;
	return false;
}

int iso_restrict(char *msg, size_t len)
{
	long last = fs_read_long("/proc/sys/kernel/cap_last_cap");

	if (last < CAP_AUDIT_READ)
		last = CAP_AUDIT_READ;
	for (int c = 0; c <= last; c++)
		if (!kept(c) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return fail_msg(msg, len, "drop a capability from the bounding set", errno);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail_msg(msg, len, "clear the ambient capabilities", errno);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail_msg(msg, len, "set no_new_privs", errno);
	return iso_seccomp_load(msg, len);
}

int iso_seccomp_load(char *msg, size_t len)
{
	static const char *const denied[] = {"init_module",
					     "finit_module",
					     "delete_module",
					     "create_module",
					     "kexec_load",
					     "kexec_file_load",
					     "mount",
					     "umount2",
					     "fsopen",
					     "fsconfig",
					     "fsmount",
					     "fspick",
					     "move_mount",
					     "open_tree",
					     "mount_setattr",
					     "pivot_root",
					     "add_key",
					     "request_key",
					     "keyctl",
					     "bpf",
					     "perf_event_open",
					     "swapon",
					     "swapoff",
					     "reboot",
					     "acct",
					     "settimeofday",
					     "clock_settime",
					     "clock_adjtime",
					     "adjtimex",
					     "syslog",
					     "iopl",
					     "ioperm",
					     "open_by_handle_at",
					     "name_to_handle_at",
					     "lookup_dcookie",
					     "quotactl",
					     "quotactl_fd",
					     "nfsservctl",
					     "userfaultfd",
					     "vhangup",
					     "get_kernel_syms",
					     "query_module",
					     "uselib",
					     "ustat",
					     "sysfs",
					     "_sysctl",
					     "vm86",
					     "vm86old",
					     "kcmp",
					     "process_vm_writev",
					     "fanotify_init"};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = 0;

	if (!ctx)
		return fail_msg(msg, len, "seccomp_init", ENOMEM);
	for (size_t i = 0; i < ARRAY_SIZE(denied) && !r; i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (r < 0 && r != -EDOM) /* EDOM: a pseudo syscall here */
			fail_msg(msg, len, denied[i], -r);
		else
			r = 0;
	}
	if (!r && (r = seccomp_load(ctx)) < 0)
		fail_msg(msg, len, "load the seccomp filter", -r);
	seccomp_release(ctx);
	return r;
}

/* ---- host probes ---- */

/* A child in a fresh user namespace with maps 0 USERNS_FIRST 65536 that
 * waits until go closes; its pid, or -1. */
static pid_t probe_child(int *go_w, char *detail, size_t len)
{
	int go[2], rd[2];
	char c;

	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(rd, O_CLOEXEC) < 0)
		return fail_msg(detail, len, "pipe", errno), -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(rd[0]);
		if (unshare(CLONE_NEWUSER) == 0)
			(void)!write(rd[1], "u", 1);
		close(rd[1]);
		(void)!read(go[0], &c, 1);
		_exit(0);
	}
	close(go[0]);
	close(rd[1]);
	bool ok = pid > 0 && read(rd[0], &c, 1) == 1;
	int e = errno;
	close(rd[0]);
	*go_w = go[1];
	if (!ok) {
		snprintf(detail, len, "unshare(CLONE_NEWUSER) failed%s%s", e ? ": " : "",
			 e ? strerror(e) : "");
		close(go[1]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return -1;
	}
	ferr_t err = {0};
	if (userns_write_maps(pid, USERNS_FIRST, USERNS_SIZE, &err) < 0) {
		snprintf(detail, len, "%s", err.msg);
		close(go[1]);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static void probe_end(pid_t pid, int go_w)
{
	close(go_w);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

bool iso_probe_userns(char *detail, size_t len)
{
	int go;
	pid_t pid = probe_child(&go, detail, len);

	if (pid < 0)
		return false;
	probe_end(pid, go);
	snprintf(detail, len,
		 "user namespaces work: every tenant not started --privileged has its root "
		 "mapped to a host ID range of its own (65536 IDs each from %u)",
		 USERNS_FIRST);
	return true;
}

bool iso_probe_idmap(const char *dir, char *detail, size_t len)
{
	char path[64];
	int go, ns = -1, tree = -1;
	pid_t pid = probe_child(&go, detail, len);

	if (pid < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	tree = (int)syscall(SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)ns};
	int r = ns < 0 || tree < 0
		    ? -1
		    : (int)syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &a, sizeof(a));
	int e = errno;
	if (tree >= 0)
		close(tree);
	if (ns >= 0)
		close(ns);
	probe_end(pid, go);
	if (r < 0)
		snprintf(detail, len,
			 "no idmapped mounts of %s here (%s): ferry shifts a tenant's rootfs "
			 "owners once (chown), which it does anyway (docs/isolation.md)",
			 dir, strerror(e));
	else
		snprintf(detail, len,
			 "idmapped mounts work on %s, but ferry does not use them: CRIU (4.2) "
			 "neither dumps nor restores a mount's ID map, so a tenant on one would "
			 "come back with its files owned by unmapped IDs; ferry shifts a tenant's "
			 "rootfs owners once (chown) instead (docs/isolation.md)",
			 dir);
	return r == 0;
}

bool iso_probe_seccomp(char *detail, size_t len)
{
	const struct scmp_version *v = seccomp_version();
	char act[256] = "";
	FILE *f = fopen("/proc/sys/kernel/seccomp/actions_avail", "re");

	if (f) {
		if (!fgets(act, sizeof(act), f))
			act[0] = '\0';
		fclose(f);
	}
	if (!strstr(act, "errno") || !v) {
		snprintf(detail, len,
			 "no seccomp filters in this kernel: --isolate tenants cannot be "
			 "filtered (ferry run --isolate fails)");
		return false;
	}
	snprintf(detail, len,
		 "seccomp filters work (libseccomp %u.%u.%u): --isolate tenants get the "
		 "default filter, CRIU restores it",
		 v->major, v->minor, v->micro);
	return true;
}
