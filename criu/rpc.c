/* CRIU RPC client over `criu swrk`. */
#define LOG_PREFIX "criu"
#include "criu/rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "criu/kdat.h"
#include "criu/spawn.h"
#include "lib/log.h"
#include "proto/rpc.pb-c.h"
#include "lib/util.h"

#define RESP_MAX (1U << 20)

/* One `criu swrk` child and our end of its socket. */
struct criu_conn {
	pid_t pid;
	int sk;
	char log_path[PATH_MAX]; /* "" when there is no log */
};

/* `criu swrk SK` on the other end of our socket. Nothing of ferry leaks
 * into CRIU but the socket and keep (criu/spawn.h); CRIU and its helpers get
 * a process group of their own, so that we can tell when the last helper is
 * gone (see conn_wait_helpers). */
static int conn_start(const char *criu_path, const int *keep, size_t n_keep, bool kdat_ns,
		      struct criu_conn *c, ferr_t *err)
{
	struct criu_argv argv;
	struct criu_spawn_opts so = {.argv = &argv, .own_pgrp = true, .sigpipe_default = true};
	int sv[2], *fds;

	c->pid = -1;
	c->sk = -1;
	fds = calloc(n_keep + 1, sizeof(*fds));
	if (!fds)
		return ferr_set(err, FX_FAIL, "out of memory");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(fds);
		return ferr_sys(err, FX_FAIL, "socketpair for CRIU");
	}
	fds[0] = sv[1];
	for (size_t i = 0; i < n_keep; i++)
		fds[i + 1] = keep[i];
	so.keep = fds;
	so.n_keep = n_keep + 1;
	if (kdat_ns)
		criu_kdat_use(&so);
	criu_argv_init(&argv, criu_path);
	criu_argv_add(&argv, "swrk", NULL);
	criu_argv_addf(&argv, "%d", sv[1]);
	c->pid = criu_spawn(&so, err);
	free(fds);
	close(sv[1]);
	if (c->pid < 0) {
		close(sv[0]);
		return -1;
	}
	c->sk = sv[0];
	return 0;
}

/* CRIU's own helpers (e.g. the namespace dumper) may outlive a failed CRIU
 * and go on writing images: wait (bounded) until its process group is empty
 * before the caller cleans up. */
static void conn_wait_helpers(pid_t pgid)
{
	struct timespec ts = {0, 5 * 1000 * 1000};

	for (int i = 0; i < 1000 && pgid > 0 && kill(-pgid, 0) == 0; i++)
		nanosleep(&ts, NULL);
}

/* Close our end and reap CRIU; returns its wait status (or -1). */
static int conn_finish(struct criu_conn *c)
{
	int status = -1;

	if (c->sk >= 0)
		close(c->sk);
	c->sk = -1;
	if (c->pid > 0)
		status = criu_reap(c->pid, -1, false);
	c->pid = -1;
	return status;
}

static int conn_send(struct criu_conn *c, const CriuReq *req, ferr_t *err)
{
	size_t len = criu_req__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	ssize_t n;

	if (!buf)
		return ferr_set(err, FX_FAIL, "out of memory");
	criu_req__pack(req, buf);
	do
		n = send(c->sk, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	free(buf);
	if (n < 0 || (size_t)n != len)
		return ferr_sys(err, FX_HOST, "sending a request to CRIU (pid %d)", c->pid);
	return 0;
}

/* CRIU went away without answering: say how it ended and where its log is. */
static int conn_died(struct criu_conn *c, ferr_t *err)
{
	char tail[768];
	int st = conn_finish(c);

	criu_log_tail(c->log_path, tail, sizeof(tail));
	if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return ferr_set(err, FX_HOST, "could not execute CRIU (see `ferry check`)");
	return ferr_set(err, FX_FAIL, "CRIU ended without an answer (%s %d)%s%s%s%s",
			st >= 0 && WIFSIGNALED(st) ? "signal" : "exit status",
			st >= 0 && WIFSIGNALED(st) ? WTERMSIG(st)
			: st >= 0		   ? WEXITSTATUS(st)
						   : -1,
			*tail ? ": " : "", tail, *c->log_path ? "; full log: " : "", c->log_path);
}

static int conn_recv(struct criu_conn *c, CriuResp **resp, ferr_t *err)
{
	ssize_t n;
	uint8_t *buf;

	do
		n = recv(c->sk, NULL, 0, MSG_PEEK | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return conn_died(c, err);
	if ((size_t)n > RESP_MAX)
		return ferr_set(err, FX_FAIL, "CRIU answered with %zd bytes", n);
	buf = malloc((size_t)n);
	if (!buf)
		return ferr_set(err, FX_FAIL, "out of memory");
	ssize_t got;
	do
		got = recv(c->sk, buf, (size_t)n, 0);
	while (got < 0 && errno == EINTR);
	if (got != n) {
		free(buf);
		return conn_died(c, err);
	}
	*resp = criu_resp__unpack(NULL, (size_t)n, buf);
	free(buf);
	if (!*resp)
		return ferr_set(err, FX_FAIL, "CRIU's answer does not decode");
	return 0;
}

/* Send req, answer notifications through co->notify, return the final
 * answer (caller frees). A callback failure is kept in err and makes CRIU
 * abort; the final answer then reports failure. */
static int conn_call(struct criu_conn *c, const CriuReq *req, const struct criu_common_opts *co,
		     CriuResp **out, ferr_t *err)
{
	ferr_t cb_err = {0};
	bool cb_failed = false;

	if (conn_send(c, req, err) < 0)
		return -1;
	for (;;) {
		CriuResp *resp = NULL;
		if (conn_recv(c, &resp, err) < 0) {
			if (cb_failed)
				*err = cb_err;
			return -1;
		}
		if (resp->type != CRIU_REQ_TYPE__NOTIFY) {
			if (cb_failed && !resp->success) {
				criu_resp__free_unpacked(resp, NULL);
				*err = cb_err;
				return -1;
			}
			*out = resp;
			return 0;
		}
		const char *script =
		    resp->notify && resp->notify->script ? resp->notify->script : "";
		pid_t npid = resp->notify && resp->notify->has_pid ? resp->notify->pid : 0;
		bool ok = true;
		pr_debug("notify %s pid %d", script, npid);
		if (co && co->notify && !cb_failed &&
		    co->notify(script, npid, co->notify_arg, &cb_err) < 0) {
			ok = false;
			cb_failed = true;
		}
		criu_resp__free_unpacked(resp, NULL);
		CriuReq ack = CRIU_REQ__INIT;
		ack.type = CRIU_REQ_TYPE__NOTIFY;
		ack.has_notify_success = true;
		ack.notify_success = ok;
		if (conn_send(c, &ack, err) < 0)
			return -1;
	}
}

static CriuCgMode cg_mode(enum criu_cg_mode m)
{
	switch (m) {
	case CRIU_CG_IGNORE:
		return CRIU_CG_MODE__IGNORE;
	case CRIU_CG_NONE:
		return CRIU_CG_MODE__CG_NONE;
	case CRIU_CG_PROPS:
		return CRIU_CG_MODE__PROPS;
	case CRIU_CG_SOFT:
		return CRIU_CG_MODE__SOFT;
	case CRIU_CG_FULL:
		return CRIU_CG_MODE__FULL;
	case CRIU_CG_STRICT:
		return CRIU_CG_MODE__STRICT;
	default:
		return CRIU_CG_MODE__DEFAULT;
	}
}

/* Fill the options every request shares. Opens the directories: fds in
 * dirs[2] (closed by the caller). */
static int fill_common(CriuOpts *opts, const struct criu_common_opts *co, int dirs[2],
		       char *log_path, size_t log_len, ferr_t *err)
{
	dirs[0] = dirs[1] = -1;
	log_path[0] = '\0';
	dirs[0] = open(co->images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirs[0] < 0)
		return ferr_sys(err, FX_NOTFOUND, "image directory %s", co->images_dir);
	opts->images_dir_fd = dirs[0];
	if (co->work_dir) {
		dirs[1] = open(co->work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dirs[1] < 0)
			return ferr_sys(err, FX_NOTFOUND, "CRIU work directory %s", co->work_dir);
		opts->has_work_dir_fd = true;
		opts->work_dir_fd = dirs[1];
	}
	if (co->log_file) {
		opts->log_file = (char *)co->log_file;
		snprintf(log_path, log_len, "%s/%s", co->work_dir ? co->work_dir : co->images_dir,
			 co->log_file);
		opts->has_log_level = true;
		opts->log_level = criu_log_level(co->log_level);
	}
	opts->has_tcp_established = co->tcp_established;
	opts->tcp_established = co->tcp_established;
	opts->has_shell_job = co->shell_job;
	opts->shell_job = co->shell_job;
	opts->has_ext_unix_sk = co->ext_unix_sk;
	opts->ext_unix_sk = co->ext_unix_sk;
	opts->has_file_locks = co->file_locks;
	opts->file_locks = co->file_locks;
	opts->has_orphan_pts_master = co->orphan_pts_master;
	opts->orphan_pts_master = co->orphan_pts_master;
	if (co->nftables_lock) {
		opts->has_network_lock = true;
		opts->network_lock = CRIU_NETWORK_LOCK_METHOD__NFTABLES;
	}
	if (co->cg_mode != CRIU_CG_DEFAULT) {
		opts->has_manage_cgroups = true;
		opts->manage_cgroups = true;
		opts->has_manage_cgroups_mode = true;
		opts->manage_cgroups_mode = cg_mode(co->cg_mode);
	}
	if (co->external) {
		size_t n = 0;
		while (co->external[n])
			n++;
		opts->n_external = n;
		opts->external = (char **)co->external;
	}
	if (co->notify) {
		opts->has_notify_scripts = true;
		opts->notify_scripts = true;
	}
	return 0;
}

static void close_dirs(int dirs[2])
{
	for (int i = 0; i < 2; i++)
		if (dirs[i] >= 0)
			close(dirs[i]);
}

/* A failed answer: CRIU's message, the log tail and where the full log is. */
static int resp_error(const struct criu_conn *c, const CriuResp *resp, const char *what,
		      ferr_t *err)
{
	char tail[768];

	criu_log_tail(c->log_path, tail, sizeof(tail));
	if (!*tail && resp && resp->cr_errmsg) {
		snprintf(tail, sizeof(tail), "%s", resp->cr_errmsg);
		tail[strcspn(tail, "\n")] = '\0';
	}
	return ferr_set(err, FX_FAIL, "CRIU %s failed%s%s%s%s", what, *tail ? ": " : "", tail,
			*c->log_path ? "; full log: " : "", c->log_path);
}

static void fill_ps(CriuOpts *opts, CriuPageServerInfo *ps, const struct criu_ps *in)
{
	if (!in->enabled)
		return;
	criu_page_server_info__init(ps);
	if (in->address)
		ps->address = (char *)in->address;
	if (in->port) {
		ps->has_port = true;
		ps->port = in->port;
	}
	if (in->fd >= 0) {
		ps->has_fd = true;
		ps->fd = in->fd;
	}
	opts->ps = ps;
}

int criu_dump(const struct criu_dump_opts *o, struct criu_dump_result *res, ferr_t *err)
{
	CriuOpts opts = CRIU_OPTS__INIT;
	CriuPageServerInfo ps;
	CriuReq req = CRIU_REQ__INIT;
	CriuResp *resp = NULL;
	struct criu_conn c = {.pid = -1, .sk = -1};
	int dirs[2], keep[1] = {o->ps.enabled ? o->ps.fd : -1}, r = -1;
	uint64_t t0 = now_ns();
	const char *what = o->pre_dump ? "pre-dump" : "dump";

	memset(res, 0, sizeof(*res));
	if (fill_common(&opts, &o->c, dirs, c.log_path, sizeof(c.log_path), err) < 0)
		goto out;
	opts.has_pid = true;
	opts.pid = o->pid;
	opts.has_leave_running = o->leave_running;
	opts.leave_running = o->leave_running;
	fill_ps(&opts, &ps, &o->ps);
	opts.parent_img = (char *)o->parent_img;
	opts.has_track_mem = o->track_mem;
	opts.track_mem = o->track_mem;
	opts.has_lazy_pages = o->lazy_pages;
	opts.lazy_pages = o->lazy_pages;
	/* a connection not yet accepted at the freeze (in a listen queue) would
	 * fail the dump: skip it; the network lock drops it and its client's
	 * SYN retries (or, once it sent data, a reset) reach the restored tenant */
	opts.has_tcp_skip_in_flight = true;
	opts.tcp_skip_in_flight = true;
	/* one pre-dump per CRIU: a plain PRE_DUMP would make swrk wait for the
	 * next request after its answer */
	req.type = o->pre_dump ? CRIU_REQ_TYPE__SINGLE_PRE_DUMP : CRIU_REQ_TYPE__DUMP;
	req.opts = &opts;

	if (conn_start(o->c.criu_path, keep, 1, false, &c, err) < 0)
		goto out;
	if (conn_call(&c, &req, &o->c, &resp, err) < 0) {
		ferr_wrap(err, "CRIU %s of pid %d", what, o->pid);
		goto out;
	}
	if (!resp->success) {
		resp_error(&c, resp, what, err);
		ferr_wrap(err, "pid %d", o->pid);
		goto out;
	}
	res->restored = resp->dump && resp->dump->has_restored && resp->dump->restored;
	r = 0;
out:
	if (resp)
		criu_resp__free_unpacked(resp, NULL);
	pid_t pgid = c.pid;
	conn_finish(&c);
	if (r < 0)
		conn_wait_helpers(pgid);
	close_dirs(dirs);
	res->rpc_ms = ms_since(t0);
	return r;
}

struct criu_swrk {
	struct criu_conn c;
};

struct criu_swrk *criu_swrk_start(const char *criu_path, bool kdat_ns, ferr_t *err)
{
	struct criu_swrk *w = calloc(1, sizeof(*w));

	if (!w) {
		ferr_set(err, FX_FAIL, "out of memory");
		return NULL;
	}
	if (conn_start(criu_path, NULL, 0, kdat_ns, &w->c, err) < 0) {
		free(w);
		return NULL;
	}
	return w;
}

void criu_swrk_free(struct criu_swrk *w)
{
	if (!w)
		return;
	conn_finish(&w->c); /* swrk sees EOF and exits */
	free(w);
}

/* The swrk started ahead, when there is one and it fits. */
static bool take_swrk(const struct criu_restore_opts *o, struct criu_conn *c)
{
	struct criu_swrk *w = o->swrk;

	if (!w || w->c.pid <= 0 || o->n_inherit || o->ps.enabled)
		return false;
	c->pid = w->c.pid;
	c->sk = w->c.sk;
	w->c.pid = -1;
	w->c.sk = -1;
	return true;
}

static void fill_cg_roots(CriuOpts *opts, const struct criu_restore_opts *o, CgroupRoot *cgr,
			  CgroupRoot **cgrp)
{
	size_t n = o->n_cg_roots < CRIU_MAX_CG_ROOTS ? o->n_cg_roots : CRIU_MAX_CG_ROOTS;

	for (size_t i = 0; i < n; i++) {
		cgroup_root__init(&cgr[i]);
		cgr[i].ctrl = (char *)o->cg_roots[i].ctrl;
		cgr[i].path = (char *)o->cg_roots[i].path;
		cgrp[i] = &cgr[i];
	}
	opts->n_cg_root = n;
	opts->cg_root = cgrp;
}

int criu_restore(const struct criu_restore_opts *o, pid_t *pid, ferr_t *err)
{
	CriuOpts opts = CRIU_OPTS__INIT;
	CriuPageServerInfo ps;
	CriuReq req = CRIU_REQ__INIT;
	CriuResp *resp = NULL;
	struct criu_conn c = {.pid = -1, .sk = -1};
	CriuVethPair *vp = NULL, **vpp = NULL;
	InheritFd *ifd = NULL, **ifdp = NULL;
	CgroupRoot cgr[CRIU_MAX_CG_ROOTS], *cgrp[CRIU_MAX_CG_ROOTS];
	int dirs[2] = {-1, -1}, r = -1;
	int *keep = calloc(o->n_inherit + 1, sizeof(int));

	*pid = -1;
	vp = calloc(o->n_veths + 1, sizeof(*vp));
	vpp = calloc(o->n_veths + 1, sizeof(*vpp));
	ifd = calloc(o->n_inherit + 1, sizeof(*ifd));
	ifdp = calloc(o->n_inherit + 1, sizeof(*ifdp));
	if (!keep || !vp || !vpp || !ifd || !ifdp) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	if (fill_common(&opts, &o->c, dirs, c.log_path, sizeof(c.log_path), err) < 0)
		goto out;
	opts.root = (char *)o->root;
	for (size_t i = 0; i < o->n_veths; i++) {
		criu_veth_pair__init(&vp[i]);
		vp[i].if_in = (char *)o->veths[i].if_in;
		vp[i].if_out = (char *)o->veths[i].if_out;
		vpp[i] = &vp[i];
	}
	opts.n_veths = o->n_veths;
	opts.veths = vpp;
	fill_cg_roots(&opts, o, cgr, cgrp);
	for (size_t i = 0; i < o->n_inherit; i++) {
		inherit_fd__init(&ifd[i]);
		ifd[i].key = (char *)o->inherit[i].key;
		ifd[i].fd = o->inherit[i].fd;
		ifdp[i] = &ifd[i];
		keep[i] = o->inherit[i].fd;
	}
	opts.n_inherit_fd = o->n_inherit;
	opts.inherit_fd = ifdp;
	keep[o->n_inherit] = o->ps.enabled ? o->ps.fd : -1;
	opts.has_rst_sibling = o->rst_sibling;
	opts.rst_sibling = o->rst_sibling;
	opts.has_lazy_pages = o->lazy_pages;
	opts.lazy_pages = o->lazy_pages;
	fill_ps(&opts, &ps, &o->ps);
	req.type = CRIU_REQ_TYPE__RESTORE;
	req.opts = &opts;

	if (!take_swrk(o, &c) &&
	    conn_start(o->c.criu_path, keep, o->n_inherit + 1, o->kdat_ns, &c, err) < 0)
		goto out;
	if (conn_call(&c, &req, &o->c, &resp, err) < 0) {
		ferr_wrap(err, "CRIU restore from %s", o->c.images_dir);
		goto out;
	}
	if (!resp->success || !resp->restore) {
		resp_error(&c, resp, "restore", err);
		ferr_wrap(err, "images %s", o->c.images_dir);
		goto out;
	}
	*pid = resp->restore->pid;
	r = 0;
out:
	if (resp)
		criu_resp__free_unpacked(resp, NULL);
	conn_finish(&c);
	close_dirs(dirs);
	free(keep);
	free(vp);
	free(vpp);
	free(ifd);
	free(ifdp);
	return r;
}

/* A request without images (version, feature check). */
static int simple_call(const char *criu_path, CriuReq *req, CriuResp **resp, ferr_t *err)
{
	struct criu_conn c = {.pid = -1, .sk = -1};
	int r;

	if (conn_start(criu_path, NULL, 0, false, &c, err) < 0)
		return -1;
	r = conn_call(&c, req, NULL, resp, err);
	conn_finish(&c);
	return r;
}

int criu_get_version(const char *criu_path, struct criu_version *v, ferr_t *err)
{
	CriuReq req = CRIU_REQ__INIT;
	CriuResp *resp = NULL;

	memset(v, 0, sizeof(*v));
	req.type = CRIU_REQ_TYPE__VERSION;
	if (simple_call(criu_path, &req, &resp, err) < 0)
		return ferr_wrap(err, "asking %s for its version", criu_path);
	if (!resp->success || !resp->version) {
		criu_resp__free_unpacked(resp, NULL);
		return ferr_set(err, FX_HOST, "%s does not report its version (CRIU too old?)",
				criu_path);
	}
	v->major = resp->version->major_number;
	v->minor = resp->version->minor_number;
	v->sublevel = resp->version->has_sublevel ? resp->version->sublevel : 0;
	if (resp->version->gitid)
		snprintf(v->gitid, sizeof(v->gitid), "%s", resp->version->gitid);
	if (v->sublevel)
		snprintf(v->text, sizeof(v->text), "%d.%d.%d", v->major, v->minor, v->sublevel);
	else
		snprintf(v->text, sizeof(v->text), "%d.%d", v->major, v->minor);
	criu_resp__free_unpacked(resp, NULL);
	return 0;
}

int criu_check_features(const char *criu_path, struct criu_features *f, ferr_t *err)
{
	CriuReq req = CRIU_REQ__INIT;
	CriuFeatures want = CRIU_FEATURES__INIT;
	CriuResp *resp = NULL;

	want.has_mem_track = f->mem_track;
	want.mem_track = f->mem_track;
	want.has_lazy_pages = f->lazy_pages;
	want.lazy_pages = f->lazy_pages;
	want.has_pidfd_store = f->pidfd_store;
	want.pidfd_store = f->pidfd_store;
	req.type = CRIU_REQ_TYPE__FEATURE_CHECK;
	req.features = &want;
	if (simple_call(criu_path, &req, &resp, err) < 0)
		return ferr_wrap(err, "CRIU feature check");
	if (!resp->features) {
		criu_resp__free_unpacked(resp, NULL);
		return ferr_set(err, FX_HOST, "CRIU feature check gave no answer");
	}
	f->mem_track = f->mem_track && resp->features->has_mem_track && resp->features->mem_track;
	f->lazy_pages =
	    f->lazy_pages && resp->features->has_lazy_pages && resp->features->lazy_pages;
	f->pidfd_store =
	    f->pidfd_store && resp->features->has_pidfd_store && resp->features->pidfd_store;
	criu_resp__free_unpacked(resp, NULL);
	return 0;
}
