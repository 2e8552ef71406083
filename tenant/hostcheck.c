/* Host readiness checks (see hostcheck.h). */
#define LOG_PREFIX "hostcheck"
#include "tenant/hostcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criu/locate.h"
#include "criu/spawn.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tenant/cgroup.h"
#include "tenant/isolate.h"
#include "tenant/kind.h"
#include "tenant/registry.h"
#include "tenant/uidcheck.h"
#include "tenant/vmprobe.h"

#define PIPE_MAX_WANTED (16u << 20) /* what a lazy (post-copy) dump needed here */
#define CMD_TIMEOUT_MS	20000

const char *hc_status_str(enum hc_status s)
{
	return s == HC_OK ? "OK" : s == HC_WARN ? "WARN" : "FAIL";
}

/* Run argv (argv[0] a path: CRIU, nft, qemu) with stdout+stderr captured
 * into out (truncated, NUL-terminated), through CRIU's spawn helper.
 * *status gets the exit code, or -1 when it was killed or timed out. */
static int run_cmd(char *const argv[], char *out, size_t outlen, int *status, ferr_t *err)
{
	uint64_t deadline = now_ns() + (uint64_t)CMD_TIMEOUT_MS * 1000000;
	struct criu_argv a;
	struct criu_spawn_opts so = {.argv = &a, .stdio = CRIU_STDIO_FD};
	size_t got = 0;
	int p[2], ws;
	pid_t pid;

	out[0] = '\0';
	criu_argv_init(&a, argv[0]);
	for (size_t i = 1; argv[i]; i++)
		criu_argv_add(&a, argv[i], NULL);
	if (pipe2(p, O_CLOEXEC) < 0)
		return ferr_sys(err, FX_FAIL, "pipe");
	so.out_fd = p[1];
	pid = criu_spawn(&so, err);
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	close(p[1]);
	for (;;) {
		char buf[4096];
		uint64_t now = now_ns();
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (now >= deadline || poll(&pf, 1, (int)((deadline - now) / 1000000) + 1) == 0) {
			kill(pid, SIGKILL);
			break;
		}
		ssize_t n = read(p[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		size_t take = (size_t)n < outlen - 1 - got ? (size_t)n : outlen - 1 - got;
		memcpy(out + got, buf, take);
		got += take;
		out[got] = '\0';
	}
	close(p[0]);
	ws = criu_reap(pid, -1, false);
	*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
	return 0;
}

static bool find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char *dup, *save = NULL;
	bool found = false;

	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	if (!(dup = strdup(path)))
		return false;
	for (char *d = strtok_r(dup, ":", &save); d && !found; d = strtok_r(NULL, ":", &save))
		found = snprintf(out, len, "%s/%s", d, name) < (int)len && access(out, X_OK) == 0;
	free(dup);
	return found;
}

/* First line of out that starts with "Error", else the first line. */
static void first_error(const char *out, char *dst, size_t len)
{
	const char *e = strstr(out, "Error");
	const char *s = e ? e : out;

	snprintf(dst, len, "%.*s", (int)strcspn(s, "\n"), s);
}

static struct hc_item *add(struct hostcheck_report *r, const char *id, enum hc_status st,
			   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static struct hc_item *add(struct hostcheck_report *r, const char *id, enum hc_status st,
			   const char *fmt, ...)
{
	struct hc_item *it = &r->items[r->n_items < HC_MAX_ITEMS ? r->n_items++ : HC_MAX_ITEMS - 1];
	va_list ap;

	it->id = id;
	it->status = st;
	va_start(ap, fmt);
	vsnprintf(it->detail, sizeof(it->detail), fmt, ap);
	va_end(ap);
	return it;
}

/* `criu check [--feature F]`: 1 supported, 0 not, -1 could not run. */
static int criu_feature(const struct hostcheck_report *r, const char *feature, char *out,
			size_t outlen, ferr_t *err)
{
	char *argv[] = {(char *)r->criu_path, "check", feature ? "--feature" : NULL,
			(char *)feature, NULL};
	int st;

	if (run_cmd(argv, out, outlen, &st, err) < 0)
		return -1;
	return st == 0;
}

static int check_criu(const struct hostcheck_opts *o, struct hostcheck_report *r, ferr_t *err)
{
	char out[4096], line[256];
	ferr_t e = {0};
	int st;

	if (criu_locate(o->criu, r->criu_path, sizeof(r->criu_path), &r->criu_source, &e) < 0) {
		r->criu_path[0] = '\0';
		add(r, "criu", HC_FAIL, "%s: nothing can be dumped or restored", e.msg);
		add(r, "criu-check", HC_FAIL, "not run: no CRIU");
		return 0;
	}
	char *vargv[] = {r->criu_path, "--version", NULL};
	if (run_cmd(vargv, out, sizeof(out), &st, err) < 0)
		return -1;
	const char *v = strstr(out, "Version:");
	if (st != 0 || !v) {
		first_error(out, line, sizeof(line));
		add(r, "criu", HC_FAIL, "%s (%s) does not run: %s", r->criu_path, r->criu_source,
		    line);
		add(r, "criu-check", HC_FAIL, "not run: CRIU does not start");
		r->criu_path[0] = '\0';
		return 0;
	}
	v += strlen("Version:");
	v += strspn(v, " \t");
	snprintf(r->criu_version, sizeof(r->criu_version), "%.*s", (int)strcspn(v, "\n"), v);
	add(r, "criu", HC_OK, "CRIU %s at %s (from %s)", r->criu_version, r->criu_path,
	    r->criu_source);
	int ok = criu_feature(r, NULL, out, sizeof(out), err);
	if (ok < 0)
		return -1;
	if (ok) {
		r->ready = true;
		add(r, "criu-check", HC_OK,
		    "'criu check' passes: tenants can be dumped and restored");
	} else {
		first_error(out, line, sizeof(line));
		add(r, "criu-check", HC_FAIL,
		    "'criu check' fails (%s): dump and restore cannot work here; a CRIU >= 4.1 "
		    "is needed on new kernels ('make deps')",
		    line);
	}
	return 0;
}

/* A CRIU feature item: OK/WARN text depends on the answer. */
static int check_feature(struct hostcheck_report *r, const char *id, const char *feature,
			 const char *yes, const char *no, bool *result, ferr_t *err)
{
	char out[2048];
	int ok;

	*result = false;
	if (!r->criu_path[0]) {
		add(r, id, HC_WARN, "not checked: no working CRIU");
		return 0;
	}
	if ((ok = criu_feature(r, feature, out, sizeof(out), err)) < 0)
		return -1;
	*result = ok;
	add(r, id, ok ? HC_OK : HC_WARN, "%s", ok ? yes : no);
	return 0;
}

static bool check_pipes(struct hostcheck_report *r)
{
	long soft = fs_read_long("/proc/sys/fs/pipe-user-pages-soft");
	long max = fs_read_long("/proc/sys/fs/pipe-max-size");
	bool ok = soft == 0 && max >= (long)PIPE_MAX_WANTED;

	if (ok)
		add(r, "pipe-limits", HC_OK,
		    "fs.pipe-user-pages-soft=0, fs.pipe-max-size=%ld: lazy (post-copy) dumps work",
		    max);
	else
		add(r, "pipe-limits", HC_WARN,
		    "fs.pipe-user-pages-soft=%ld, fs.pipe-max-size=%ld: a lazy (post-copy) dump "
		    "fails "
		    "('page-pipe: tee: Operation not permitted'); it needs the host setting "
		    "'sysctl -w fs.pipe-user-pages-soft=0 fs.pipe-max-size=%u' (--tune-host)",
		    soft, max, PIPE_MAX_WANTED);
	return ok;
}

static int check_netlock(struct hostcheck_report *r, bool *ok, ferr_t *err)
{
	char nft[PATH_MAX], out[2048];
	int st;

	*ok = false;
	if (!find_in_path("nft", nft, sizeof(nft))) {
		add(r, "network-lock", HC_WARN,
		    "no 'nft' binary: tenants with their own network cannot be network-locked "
		    "while dumped (install nftables)");
		return 0;
	}
	char *argv[] = {nft, "list", "tables", NULL};
	if (run_cmd(argv, out, sizeof(out), &st, err) < 0)
		return -1;
	if (st != 0) {
		add(r, "network-lock", HC_WARN, "'nft list tables' fails: nftables unusable here");
		return 0;
	}
	bool leftover = strstr(out, "CRIU-") != NULL;
	bool criu_nft = false;
	if (r->criu_path[0]) {
		int f = criu_feature(r, "network_lock_nftables", out, sizeof(out), err);
		if (f < 0)
			return -1;
		criu_nft = f;
	}
	if (!r->criu_path[0]) {
		add(r, "network-lock", HC_WARN,
		    "nft works; CRIU's nftables lock not checked: no "
		    "working CRIU");
		return 0;
	}
	if (!criu_nft) {
		add(r, "network-lock", HC_WARN,
		    "CRIU cannot lock the network with nftables: dumps of tenants with a "
		    "network may fail");
		return 0;
	}
	*ok = true;
	add(r, "network-lock", leftover ? HC_WARN : HC_OK,
	    "nftables network lock works (--network-lock nftables)%s",
	    leftover ? "; but the host has leftover 'CRIU-*' nft tables from dumps never "
		       "restored, which may block traffic ('nft list tables')"
		     : "");
	return 0;
}

/* Processes of other users (uidcheck.h): can they be dumped here, and
 * which running tenants have some. */
static void check_other_users(struct hostcheck_report *r, const char *state_dir)
{
	struct tenant_rec *recs = NULL;
	char list[256] = "";
	size_t n = 0, used = 0, hit = 0;

	if (uid_other_dumpable()) {
		add(r, "other-users", HC_OK,
		    "processes of other users (server workers that drop privileges) can be "
		    "dumped: prlimit works on them");
		return;
	}
	if (state_dir && registry_list(state_dir, &recs, &n, NULL) == 0) {
		for (size_t i = 0; i < n; i++) {
			pid_t who;
			uid_t uid;
			if ((recs[i].state == TS_RUNNING || recs[i].state == TS_FROZEN) &&
			    uid_tree_other(recs[i].init_pid, &who, &uid) > 0 &&
			    used < sizeof(list)) {
				used += (size_t)snprintf(list + used, sizeof(list) - used,
							 "%s%s (uid %u)", hit++ ? ", " : "",
							 recs[i].name, (unsigned)uid);
			}
			tenant_rec_free(&recs[i]);
		}
		free(recs);
	}
	add(r, "other-users", HC_WARN,
	    "a process running as another user cannot be dumped here (ferry lacks "
	    "CAP_SYS_RESOURCE: CRIU cannot read its rlimits); dump and migrate refuse such "
	    "tenants before the freeze (not those in a user namespace of their own, the "
	    "default: only tenants started --privileged); affected now: %s",
	    hit ? list : "none");
}

static void set_mode(struct hostcheck_report *r, enum hc_mode m, const char *name, bool avail,
		     const char *note)
{
	r->modes[m].name = name;
	r->modes[m].available = avail;
	snprintf(r->modes[m].note, sizeof(r->modes[m].note), "%s", note);
}

/* Post-copy into a tenant's user namespace: CRIU's restored tasks open
 * userfaultfd there, which needs vm.unprivileged_userfaultfd=1 on the
 * destination; the tenants that would need it, by name. */
static void check_uffd_userns(struct hostcheck_report *r, const char *state_dir)
{
	struct tenant_rec *recs = NULL;
	char list[256] = "";
	size_t n = 0, used = 0, hit = 0;
	long v = fs_read_long("/proc/sys/vm/unprivileged_userfaultfd");

	if (v == 1) {
		add(r, "userfaultfd-userns", HC_OK,
		    "vm.unprivileged_userfaultfd=1: tenants in a user namespace (the default) can "
		    "come here in post-copy");
		return;
	}
	if (state_dir && registry_list(state_dir, &recs, &n, NULL) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (recs[i].iso.id_count && recs[i].state != TS_GONE && used < sizeof(list))
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
							 hit++ ? ", " : "", recs[i].name);
			tenant_rec_free(&recs[i]);
		}
		free(recs);
	}
	add(r, "userfaultfd-userns", HC_WARN,
	    "vm.unprivileged_userfaultfd=%ld: a tenant in a user namespace (the default) cannot "
	    "come here in post-copy (its restored tasks open userfaultfd in it); an agent whose "
	    "--config has 'tune-host userfaultfd' sets it for such a migration, else they come "
	    "in stop-copy; tenants of this host it concerns (they could not come back here in "
	    "post-copy): %s",
	    v, hit ? list : "none");
}

/* Isolation of container tenants (docs/isolation.md): none of it stops
 * dumps or migrations, so WARN at worst. */
static void check_isolation(struct hostcheck_report *r, const char *state_dir)
{
	char d[400];
	bool ok;

	ok = cgroup_host_info(d, sizeof(d));
	add(r, "cgroups", ok ? HC_OK : HC_WARN, "%s%s", d,
	    ok ? "" : " (--memory, --cpus, --pids and --isolate fail here)");
	ok = iso_probe_userns(d, sizeof(d));
	add(r, "userns", ok ? HC_OK : HC_WARN, "%s%s", d,
	    ok ? "" : ": --userns and --isolate fail here; tenants run as the host's root");
	iso_probe_idmap(state_dir && *state_dir ? state_dir : "/", d, sizeof(d));
	add(r, "idmapped-mounts", HC_OK, "%s", d);
	ok = iso_probe_seccomp(d, sizeof(d));
	add(r, "seccomp", ok ? HC_OK : HC_WARN, "%s", d);
	check_uffd_userns(r, state_dir);
}

/* VM tenants: QEMU and the accelerator a probe guest really boots under
 * (tenant/vmprobe.h). */
static void check_vm(struct hostcheck_report *r)
{
	struct vm_probe p;
	ferr_t e = {0};

	if (!kind_find(TK_VM)) {
		add(r, "vm", HC_WARN, "VM tenants are not supported by this build");
		set_mode(r, HC_VM, "vm", false, "VM tenants are not supported by this build");
		return;
	}
	if (vm_probe(&p, &e) < 0) {
		add(r, "vm", HC_WARN, "VM tenants cannot run here: %s", e.msg);
		set_mode(r, HC_VM, "vm", false, "no working QEMU");
		return;
	}
	add(r, "vm", HC_OK, "QEMU %s (%s), accelerator %s: %s", p.version, p.qemu,
	    vm_accel_str(p.accel), p.detail);
	set_mode(r, HC_VM, "vm", true,
		 p.accel == VM_ACCEL_KVM
		     ? "VM tenants run under KVM: run, dump, restore, stop-copy and pre-copy "
		       "(QEMU's) migration"
		     : "VM tenants run under TCG (emulated, slow): run, dump, restore, "
		       "stop-copy and pre-copy (QEMU's) migration");
}

int hostcheck_run(const struct hostcheck_opts *o, struct hostcheck_report *r, ferr_t *err)
{
	bool dirty, uffd, tcp, netlock, pipes;
	struct utsname u;

	memset(r, 0, sizeof(*r));
	if (uname(&u) == 0)
		snprintf(r->kernel, sizeof(r->kernel), "%s %s", u.sysname, u.release);
	if (check_criu(o, r, err) < 0 ||
	    check_feature(r, "dirty-tracking", "mem_dirty_track",
			  "soft-dirty memory tracking works: iterative pre-copy possible",
			  "no dirty memory tracking (soft-dirty) in this kernel: pre-copy "
			  "impossible, use stop-copy or post-copy",
			  &dirty, err) < 0 ||
	    check_feature(r, "userfaultfd", "uffd-noncoop",
			  "userfaultfd (non-cooperative) works: post-copy (lazy pages) possible",
			  "no non-cooperative userfaultfd: post-copy impossible", &uffd, err) < 0)
		return -1;
	pipes = check_pipes(r);
	if (check_netlock(r, &netlock, err) < 0 ||
	    check_feature(r, "tcp-established", "tcp_half_closed",
			  "TCP repair works, half-closed connections included: established "
			  "connections move with the tenant",
			  "TCP repair cannot restore half-closed connections here: a dump "
			  "with --tcp-established of a tenant holding one may fail",
			  &tcp, err) < 0)
		return -1;
	check_other_users(r, o->state_dir);
	check_isolation(r, o->state_dir);

	set_mode(r, HC_STOP_COPY, "stop-copy", r->ready,
		 r->ready ? "freeze, dump, transfer, restore" : "CRIU does not work here");
	set_mode(r, HC_PRE_COPY, "pre-copy", r->ready && dirty,
		 !r->ready ? "CRIU does not work here"
		 : dirty   ? "iterative memory pre-dumps, short freeze"
			   : "needs soft-dirty memory tracking (missing in this kernel)");
	set_mode(r, HC_POST_COPY, "post-copy", r->ready && uffd && pipes,
		 !r->ready ? "CRIU does not work here"
		 : !uffd   ? "needs userfaultfd (missing)"
		 : pipes   ? "opt-in (--mode post-copy): restore first, pages follow"
			   : "needs the pipe sysctls (see pipe-limits) or --tune-host");
	check_vm(r);
	(void)netlock;
	return 0;
}
