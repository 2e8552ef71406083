/* Isolation of container tenants as it travels (isolate.h). */
#include "tenant/isolate.h"

#include <errno.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "lib/fsutil.h"
#include "lib/util.h"
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

int iso_precheck_lazy(const struct tenant_iso *iso, ferr_t *err)
{
	if (!iso->id_count || fs_read_long("/proc/sys/vm/unprivileged_userfaultfd") == 1)
		return 0;
	return ferr_set(err, FX_HOST,
			"post-copy of a tenant in a user namespace needs userfaultfd inside it, "
			"which this host allows only with vm.unprivileged_userfaultfd=1 (a host "
			"setting, see `ferry check`): use --mode stop-copy");
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
