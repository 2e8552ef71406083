/* The CRIU checkpoint backend (ckpt.h): ferry's generic options translated
 * into CRIU's (criu/rpc.h), CRIU's notifications into ckpt events.
 *
 * Every request: file locks, network lock through nftables (iptables is not
 * a dependency), TCP connections on request, logs in the work directory.
 * A tree in the host's session (a process tree) adds shell_job and
 * ext_unix_sk; a tree with its own root (a container) is restored into it
 * with its veth pair recreated. Restores are detached (rst_sibling): the
 * tree outlives ferry. See docs/dump-restore.md. */
#define LOG_PREFIX "criu"
#include "tenant/ckpt.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "criu/imgfix.h"
#include "criu/kdat.h"
#include "criu/lazypages.h"
#include "criu/locate.h"
#include "criu/pageserver.h"
#include "criu/rpc.h"
#include "criu/spawn.h"
#include "criu/stats.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tenant/ckpt_criu.h"
#include "tenant/net.h"

static void common_opts(const struct ckpt_env *env, const struct ckpt_target *t, const char *dir,
			const char *log_file, bool tcp_established, struct criu_common_opts *c)
{
	memset(c, 0, sizeof(*c));
	c->criu_path = env->tool;
	c->images_dir = dir;
	c->work_dir = env->work_dir;
	c->log_file = log_file;
	c->log_level = env->log_level;
	c->file_locks = true;
	/* iptables is not a dependency: lock through nftables (HOST-NOTES) */
	c->nftables_lock = true;
	c->tcp_established = tcp_established;
	/* the tree may be in a session / process group led from outside (a
	 * shell) or hold a terminal; a UNIX socket to a peer outside it (e.g.
	 * stdio on a logging socket) is dumped as external */
	c->shell_job = t->host_session;
	c->ext_unix_sk = t->host_session;
}

/* CRIU's notification names, as ckpt events. */
struct relay_ev {
	ckpt_event_fn fn;
	void *arg;
};

static int on_notify(const char *script, pid_t pid, void *arg, ferr_t *err)
{
	const struct relay_ev *r = arg;
	enum ckpt_event ev = CKPT_EV_TASK;

	if (!strcmp(script, "network-lock"))
		ev = CKPT_EV_FROZEN;
	else if (!strcmp(script, "post-dump"))
		ev = CKPT_EV_SAVED;
	else if (!strcmp(script, "post-restore"))
		ev = CKPT_EV_LOADED;
	else if (!strcmp(script, "post-resume"))
		ev = CKPT_EV_RUNNING;
	else if (!pid)
		return 0;
	return r->fn(ev, pid, r->arg, err);
}

/* CRIU writes its statistics (NAME: stats-dump, stats-restore) into its
 * work directory: never report an older request's. */
static void stats_clear(const struct ckpt_env *env, const char *name)
{
	char path[PATH_MAX];

	if (xsnprintf_path(path, sizeof(path), env->work_dir, name) == 0)
		unlink(path);
}

static void save_stats(const struct ckpt_env *env, struct ckpt_save_result *res)
{
	struct criu_stats st;

	if (criu_stats_read(env->work_dir, "stats-dump", &st, NULL) < 0 || !st.has_dump)
		return;
	res->has_stats = true;
	res->freeze_ms = st.freeze_ms;
	res->frozen_ms = st.frozen_ms;
	res->mem_dump_ms = st.mem_dump_ms;
	res->mem_write_ms = st.mem_write_ms;
	res->pages = st.pages_written;
}

static int criu_save(const struct ckpt_env *env, const struct ckpt_target *t,
		     const struct ckpt_save_opts *o, struct ckpt_save_result *res, ferr_t *err)
{
	struct relay_ev rel = {o->on_event, o->arg};
	struct criu_dump_opts d;
	struct criu_dump_result cres;
	bool round = o->mode == CKPT_SAVE_ROUND;

	if (o->mode == CKPT_SAVE_LAZY)
		return ckpt_criu_save_lazy(env, t, o, res, err);
	memset(&d, 0, sizeof(d));
	common_opts(env, t, o->dir, round ? "pre-dump.log" : "dump.log", o->tcp_established, &d.c);
	if (o->on_event) {
		d.c.notify = on_notify;
		d.c.notify_arg = &rel;
	}
	d.pid = t->pid;
	d.leave_running = o->leave_running;
	d.pre_dump = round;
	d.ps.enabled = o->stream_fd >= 0;
	d.ps.fd = o->stream_fd >= 0 ? o->stream_fd : -1;
	d.parent_img = o->prev;
	d.track_mem = o->track;
	memset(res, 0, sizeof(*res));
	stats_clear(env, "stats-dump");
	if (criu_dump(&d, &cres, err) < 0)
		return -1;
	res->ms = cres.rpc_ms;
	save_stats(env, res);
	return 0;
}

/* Post-copy: `criu lazy-pages` serves the tenant's memory from page_fd; the
 * restore connects to its socket in the work directory. The caller owns the
 * daemon from CKPT_EV_PAGER on. *ready: a pipe that tells when it listens. */
static int start_pager(const struct ckpt_env *env, const struct ckpt_load_opts *o, int *ready,
		       ferr_t *err)
{
	struct criu_lazy_pages_opts lo = {.criu_path = env->tool,
					  .images_dir = o->dir,
					  .work_dir = env->work_dir,
					  .ps_fd = o->page_fd};
	char sockp[PATH_MAX];
	pid_t pid;

	if (xsnprintf(sockp, sizeof(sockp), err, "%s/lazy-pages.socket", env->work_dir) < 0)
		return -1;
	unlink(sockp);
	pid = criu_lazy_pages_start(&lo, ready, err);
	if (pid < 0)
		return -1;
	if (o->on_event && o->on_event(CKPT_EV_PAGER, pid, o->arg, err) < 0) {
		criu_reap(pid, 5000, true);
		close(*ready);
		*ready = -1;
		return -1;
	}
	return 0;
}

/* Both CRIUs start at once: most of their start-up (kernel feature probes,
 * images) is the same work, done in parallel. The restore connects to the
 * daemon's socket before it creates anything; when it came first it failed
 * without a trace and runs again once the daemon listens. */
static int restore_lazy(const struct ckpt_env *env, const struct ckpt_load_opts *o,
			const struct criu_restore_opts *r, pid_t *pid, ferr_t *err)
{
	int ready = -1, rc;

	if (start_pager(env, o, &ready, err) < 0)
		return -1;
	rc = criu_restore(r, pid, err);
	if (rc < 0 && criu_lazy_pages_missed(env->work_dir)) {
		pr_info("the restore came before the lazy-pages daemon; again");
		ferr_clear(err);
		rc = criu_lazy_pages_ready(ready, 5000, env->work_dir, err);
		if (rc == 0)
			rc = criu_restore(r, pid, err);
	}
	close(ready);
	return rc;
}

/* CRIU reads images after it entered the tenant's user namespace, as its
 * root (a host GID of the tenant's range), through the directory's fd: the
 * directory becomes searchable and its files readable by that group, and
 * so do the pre-copy rounds its "parent" link leads to (depth: how many
 * more). */
static int share_images_depth(const char *dir, uint32_t gid, int depth, ferr_t *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int r = 0;

	if (!d)
		return ferr_sys(err, FX_FAIL, "open images %s", dir);
	if (fchown(dirfd(d), (uid_t)-1, gid) < 0 || fchmod(dirfd(d), 0750) < 0)
		r = ferr_sys(err, FX_FAIL, "share images %s with the tenant's root", dir);
	while (!r && (e = readdir(d))) {
		struct stat sb;
		if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		if (fchownat(dirfd(d), e->d_name, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(dirfd(d), e->d_name, (sb.st_mode & 0700) | 0040, 0) < 0)
			r = ferr_sys(err, FX_FAIL, "share image %s/%s", dir, e->d_name);
	}
	closedir(d);
	char link[PATH_MAX], parent[PATH_MAX];
	struct stat sb;
	if (!r && depth > 0 && xsnprintf_path(link, sizeof(link), dir, "parent") == 0 &&
	    lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode) && realpath(link, parent))
		r = share_images_depth(parent, gid, depth - 1, err);
	return r;
}

static int share_images(const char *dir, uint32_t gid, ferr_t *err)
{
	return share_images_depth(dir, gid, 64, err);
}

/* The tenant's veth pair: CRIU makes it (--veth-pair), except for a tenant
 * in a user namespace, whose restore cannot reach into the host's network
 * namespace: ferry makes that pair and CRIU moves its end in (net.h). */
static int load_veth(const struct ckpt_target *t, struct criu_restore_opts *r,
		     struct criu_veth *veth, char ext_spec[64], const char *ext[2], ferr_t *err)
{
	char tmp_if[16];

	if (!t->net || !t->net->addr[0] || !t->net->host_if[0])
		return 0;
	veth->if_in = t->net->tenant_if[0] ? t->net->tenant_if : "eth0";
	veth->if_out = t->net->host_if;
	if (!t->userns_gid) {
		r->veths = veth;
		r->n_veths = 1;
		return 0;
	}
	if (net_veth_precreate(veth->if_out, tmp_if, err) < 0)
		return ferr_wrap(err, "network of the tenant");
	snprintf(ext_spec, 64, "netdev[%s]:%s", veth->if_in, tmp_if);
	ext[0] = ext_spec;
	ext[1] = NULL;
	r->c.external = ext;
	return 0;
}

static int criu_load(const struct ckpt_env *env, const struct ckpt_target *t,
		     const struct ckpt_load_opts *o, struct ckpt_load_result *res, ferr_t *err)
{
	struct criu_stats st;
	struct relay_ev rel = {o->on_event, o->arg};
	struct criu_restore_opts r;
	struct criu_veth veth;
	char ext_spec[64];
	const char *ext[2];
	int rc;

	memset(&r, 0, sizeof(r));
	common_opts(env, t, o->dir, "restore.log", o->tcp_established, &r.c);
	if (o->on_event) {
		r.c.notify = on_notify;
		r.c.notify_arg = &rel;
	}
	/* detached: the restored tree outlives ferry */
	r.rst_sibling = true;
	r.lazy_pages = o->lazy;
	r.ps.fd = -1;
	/* post-copy: the tenant is down while CRIU starts (criu/kdat.h); but
	 * in that private mount namespace CRIU cannot mount its cgroup yard
	 * (EINVAL): a tenant with a cgroup pays CRIU's probes instead */
	r.swrk = t->n_cg_root ? NULL : o->prepared;
	r.root = t->root;
	r.kdat_ns = o->lazy && t->own_mounts && !t->n_cg_root;
	for (int i = 0; i < t->n_cg_root && i < CRIU_MAX_CG_ROOTS; i++) {
		r.cg_roots[i].ctrl = t->cg_root[i].ctrl[0] ? t->cg_root[i].ctrl : NULL;
		r.cg_roots[i].path = t->cg_root[i].path;
		r.n_cg_roots++;
	}
	/* the tenant's cgroup exists (the kind made it with its limits):
	 * CRIU puts the tree in, leaving the limits alone */
	if (t->n_cg_root)
		r.c.cg_mode = CRIU_CG_SOFT;
	memset(res, 0, sizeof(*res));
	if (t->userns_gid && share_images(o->dir, t->userns_gid, err) < 0)
		return -1;
	/* last before CRIU: a pair ferry makes goes again if CRIU fails */
	if (load_veth(t, &r, &veth, ext_spec, ext, err) < 0)
		return -1;
	stats_clear(env, "stats-restore");
	rc = o->lazy ? restore_lazy(env, o, &r, &res->pid, err) : criu_restore(&r, &res->pid, err);
	if (rc < 0) {
		if (r.c.external) /* the pair ferry made, wherever its end went */
			net_host_unplumb(veth.if_out, NULL, NULL);
		if (t->host_session && strstr(err->msg, "Can't fork for") &&
		    strstr(err->msg, "File exists"))
			ferr_wrap(err,
				  "a pid of the tree is in use on this host (a process tree "
				  "comes back at its old pids: restore it where they are free, "
				  "e.g. in a fresh PID namespace)");
		return -1;
	}
	if (criu_stats_read(env->work_dir, "stats-restore", &st, NULL) == 0 && st.has_restore)
		res->load_ms = st.restore_ms;
	return 0;
}

static int criu_find(char *out, size_t len, ferr_t *err)
{
	return criu_locate(NULL, out, len, NULL, err);
}

#define CRIU_LAZY_PIPE_MAX (16U << 20) /* fs.pipe-max-size a lazy dump needs */

static int write_str(const char *path, const char *val, ferr_t *err)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(val, f) < 0 || fclose(f) != 0) {
		if (f)
			fclose(f);
		return ferr_sys(err, FX_HOST, "setting %s", path);
	}
	return 0;
}

/* fs.pipe-user-pages-soft=0 and fs.pipe-max-size >= 16 MiB: CRIU's lazy dump
 * keeps every page in pipes (without CAP_SYS_RESOURCE the per-user limit
 * applies). A host setting: only when the caller may tune the host
 * (`ferry migrate --tune-host`). */
static int lazy_pipes(bool tune, ferr_t *err)
{
	long soft = fs_read_long("/proc/sys/fs/pipe-user-pages-soft");
	long max = fs_read_long("/proc/sys/fs/pipe-max-size");
	char v[32];

	if (soft == 0 && max >= (long)CRIU_LAZY_PIPE_MAX)
		return 0;
	if (!tune)
		return ferr_set(err, FX_HOST,
				"post-copy needs fs.pipe-user-pages-soft=0 and fs.pipe-max-size >= "
				"%u on this host (now %ld and %ld): run with --tune-host to set "
				"them, or use --mode stop-copy",
				CRIU_LAZY_PIPE_MAX, soft, max);
	snprintf(v, sizeof(v), "%u", CRIU_LAZY_PIPE_MAX);
	if (write_str("/proc/sys/fs/pipe-user-pages-soft", "0", err) < 0 ||
	    (max < (long)CRIU_LAZY_PIPE_MAX && write_str("/proc/sys/fs/pipe-max-size", v, err) < 0))
		return -1;
	pr_warn("--tune-host: set fs.pipe-user-pages-soft=0 (was %ld) and fs.pipe-max-size=%ld "
		"(was %ld) on this host",
		soft, max < (long)CRIU_LAZY_PIPE_MAX ? (long)CRIU_LAZY_PIPE_MAX : max, max);
	return 0;
}

/* Pre-copy rounds need dirty memory tracking (soft-dirty), lazy saves
 * userfaultfd (CRIU's feature check) and the pipe limits above. */
static int criu_probe(const struct ckpt_env *env, struct ckpt_caps *caps, ferr_t *err)
{
	struct criu_features f = {.mem_track = caps->rounds, .lazy_pages = caps->lazy};

	caps->live = false; /* pre-copy through rounds of pre-dumps */
	if (!caps->rounds && !caps->lazy)
		return 0; /* nothing to ask CRIU */
	if (criu_check_features(env->tool, &f, err) < 0)
		return -1;
	caps->rounds = caps->rounds && f.mem_track;
	caps->lazy = caps->lazy && f.lazy_pages;
	if (caps->lazy && lazy_pipes(caps->tune, err) < 0)
		return -1;
	return 0;
}

/* Timers CRIU saved expired-unread (criu/imgfix.h). */
static int criu_fixup(const char *dir, ferr_t *err)
{
	return imgfix_dir(dir, NULL, err);
}

/* Before anything is frozen: CRIU's kernel probes (criu/kdat.h) and the
 * restore's `criu swrk`, in the namespace with those probes when the tenant
 * has its own mounts. */
static void *criu_prepare_load(const struct ckpt_env *env, const struct ckpt_target *t, bool lazy)
{
	ferr_t e = {0};
	struct criu_swrk *w;

	if (lazy && criu_kdat_prepare(env->tool, &e) < 0)
		pr_info("CRIU starts without cached probes: %s", e.msg);
	ferr_clear(&e);
	w = criu_swrk_start(env->tool, lazy && t->own_mounts, &e);
	if (!w)
		pr_info("the restore's CRIU starts later: %s", e.msg);
	return w;
}

static void criu_prepared_free(void *p)
{
	criu_swrk_free(p);
}

struct ckpt_sink {
	struct page_server ps;
	char *dir;
};

static int criu_sink_open(const struct ckpt_env *env, const char *dir, const char *prev,
			  void *prepared, struct ckpt_sink **out, int *fd, ferr_t *err)
{
	struct ckpt_sink *s = calloc(1, sizeof(*s));

	(void)prepared; /* the restore's CRIU reads the pages once they are in */
	*out = NULL;
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	s->ps = (struct page_server)PAGE_SERVER_INIT;
	if (page_server_start(env->tool, dir, prev, &s->ps, err) < 0) {
		free(s->dir);
		free(s);
		return -1;
	}
	*out = s;
	*fd = s->ps.sk;
	return 0;
}

static int criu_sink_close(struct ckpt_sink *s, bool failed, ferr_t *err)
{
	int r;

	if (!s)
		return 0;
	r = page_server_stop(&s->ps, failed, s->dir, err);
	free(s->dir);
	free(s);
	return r;
}

const struct ckpt_ops ckpt_criu = {
    .name = "criu",
    .moves_file_locks = true,
    .locate = criu_find,
    .save = criu_save,
    .load = criu_load,
    .probe = criu_probe,
    .fixup = criu_fixup,
    .prepare_load = criu_prepare_load,
    .prepared_free = criu_prepared_free,
    .sink_open = criu_sink_open,
    .sink_close = criu_sink_close,
};
