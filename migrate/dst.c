/* Destination side of a live migration (dst.h, handover.h, docs/migrate.md):
 * MIGRATE_BEGIN up to the source's RESTORE (checks, pages or rounds, files);
 * the held restore and the handover from there are dst_hold.c's. */
#define LOG_PREFIX "handover"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "migrate/dst.h"
#include "migrate/dst_check.h"
#include "migrate/handover.h"
#include "migrate/dst_indoubt.h"
#include "migrate/dst_lazy.h"
#include "migrate/dst_fs.h"
#include "migrate/dst_hold.h"
#include "migrate/query.h"
#include "migrate/reconcile.h"
#include "lib/log.h"
#include "migrate/migrate_files.h"
#include "tenant/isolate.h"
#include "tenant/kind.h"
#include "migrate/dst_precopy.h"
#include "tenant/registry.h"
#include "transport/relay.h"
#include "snapshot/restore.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"
#include "migrate/wire_enums.h"

/* ---- before anything is frozen: can we take this tenant? ---- */

/* The tenant's volumes (BEGIN, tenant/kind.h) that its backend copies in
 * the stream: each created here empty and sized, at a path in a directory
 * this agent allows for tenants' data (as a root's, dst_check.h), never
 * over an existing file. */
static int make_volumes(struct dst *d, ferr_t *err)
{
	const Ferry__Wire__MigrateBegin *b = d->b;
	char parent[PATH_MAX], real[PATH_MAX];

	if (b->n_volumes > TENANT_VOLUMES_MAX)
		return ferr_set(err, FX_INTEGRITY, "more than %d volumes from the peer",
				TENANT_VOLUMES_MAX);
	for (size_t i = 0; i < b->n_volumes; i++) {
		const char *p = b->volumes[i]->path, *slash = strrchr(p, '/');
		if (p[0] != '/' || !slash || !slash[1] || strstr(p, "/../") || strchr(p, ',') ||
		    strlen(p) >= sizeof(parent))
			return ferr_set(err, FX_INTEGRITY, "bad volume path from the peer");
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - p), p);
		if (dst_check_root(&d->pol, d->o->state_dir, parent[0] ? parent : "/", real,
				   sizeof(real), err) < 0)
			return ferr_wrap(err, "volume %s", p);
		char *at = d->made[d->n_made];
		if (xsnprintf(at, PATH_MAX, err, "%s/%s", real, slash + 1) < 0)
			return -1;
		int fd = open(at, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 && errno == EEXIST)
			return ferr_set(err, FX_CONFLICT,
					"volume %s exists on %s: with storage both hosts share, "
					"migrate with --shared-storage",
					p, d->o->host_name);
		if (fd < 0)
			return ferr_sys(err, FX_CONFLICT, "volume %s", p);
		d->n_made++;
		int r = ftruncate(fd, (off_t)b->volumes[i]->bytes);
		close(fd);
		if (r < 0)
			return ferr_sys(err, FX_FAIL, "volume %s", p);
	}
	return 0;
}

static void unmake_volumes(struct dst *d)
{
	for (int i = 0; i < d->n_made; i++)
		unlink(d->made[i]);
	d->n_made = 0;
}

/* The tenant's record as BEGIN and this host's checks describe it (for the
 * kind's precheck and target; argv is b's: rec is not freed). */
static void rec_from_begin(const struct dst *d, struct tenant_rec *rec)
{
	const Ferry__Wire__MigrateBegin *b = d->b;

	snprintf(rec->name, sizeof(rec->name), "%s", b->tenant);
	snprintf(rec->rootfs, sizeof(rec->rootfs), "%s", d->in.root);
	snprintf(rec->net.addr, sizeof(rec->net.addr), "%s", b->net_addr ? b->net_addr : "");
	snprintf(rec->net.host_if, sizeof(rec->net.host_if), "%s", d->in.host_if);
	rec->argc = (int)b->n_argv;
	rec->argv = b->argv;
}
static int precheck(struct dst *d, ferr_t *err)
{
	const Ferry__Wire__MigrateBegin *b = d->b;
	struct tenant_rec rec;
	bool remap;

	/* a name registered here is refused whatever its state: a peer never
	 * overwrites a record (a dumped or gone tenant's too) */
	if (registry_load(d->o->state_dir, b->tenant, &rec, err) == 0) {
		registry_refresh(d->o->state_dir, &rec, NULL);
		bool busy = rec.state == TS_RUNNING || rec.state == TS_FROZEN;
		pid_t pid = rec.init_pid;
		tenant_rec_free(&rec);
		if (busy)
			return ferr_set(err, FX_CONFLICT,
					"a tenant named %s already runs on %s (pid %d): nothing "
					"was frozen",
					b->tenant, d->o->host_name, pid);
		return ferr_set(err, FX_CONFLICT,
				"a tenant named %s is registered on %s (not running): nothing was "
				"frozen (remove it there with 'ferry rm %s' first)",
				b->tenant, d->o->host_name, b->tenant);
	} else if (err->code != FX_NOTFOUND) {
		return -1;
	}
	ferr_clear(err);
	/* the destination decides: kind, root, address, host interface */
	if (dst_check_begin(&d->pol, d->o->state_dir, d->o->host_name, b, d->kind, &d->in, err) < 0)
		return ferr_wrap(err, "tenant %s cannot come to %s (nothing was frozen)", b->tenant,
				 d->o->host_name);
	/* what the kind checks on this host (root file system, address) */
	memset(&rec, 0, sizeof(rec));
	rec_from_begin(d, &rec);
	if ((mfs_dst_wanted(b) ? mfs_dst_precheck_rec(d->o->state_dir, b, &rec, err)
			       : mfs_dst_check_shared(b, d->o->host_name, err)) < 0)
		return ferr_wrap(err, "tenant %s cannot come here (nothing was frozen)", b->tenant);
	iso_from_pb(b->iso, &rec.iso);
	if (make_volumes(d, err) < 0)
		return ferr_wrap(err, "tenant %s cannot come here (nothing was frozen)", b->tenant);
	if (d->ops->precheck(&rec, d->o->host_name, err) < 0 ||
	    dst_check_idrange(d->o->state_dir, b, &rec.iso, &remap, err) < 0 ||
	    (d->mode == MIG_POST_COPY && iso_precheck_lazy(&rec.iso, d->pol.tune_uffd, err) < 0)) {
		if (err->code == FX_NOTFOUND || err->code == FX_HOST)
			err->code = FX_CONFLICT; /* the destination cannot take it: 4 */
		return ferr_wrap(err, "tenant %s cannot come here (nothing was frozen)", b->tenant);
	}
	return 0;
}

static void on_rx(uint64_t raw, void *arg)
{
	struct dst *d = arg;

	if (dst_fault(d, "crash-during-transfer") && raw > (8U << 20)) {
		pr_warn("FERRY_FAULT=crash-during-transfer: killing this agent");
		kill(getpid(), SIGKILL);
	}
}

/* A backend whose load follows the stream (ckpt.h): start it now, before
 * the source stops anything, in the tenant's state directory as a restore
 * would (lazy for a post-copy); it reports its own failure at sink_open. */
static int prepare_stream_load(struct dst *d, ferr_t *err)
{
	const Ferry__Wire__MigrateBegin *b = d->b;
	struct ckpt_env env = d->env;
	struct ckpt_target t = {0};
	struct tenant_rec rec = {0};
	char work[PATH_MAX];

	if (!d->ops->ckpt->load_follows_stream)
		return 0;
	if (registry_tenant_dir(d->o->state_dir, b->tenant, work, sizeof(work), err) < 0 ||
	    fs_mkdir_p(work, 0700, err) < 0)
		return -1;
	rec_from_begin(d, &rec);
	d->ops->target(&rec, &t);
	env.work_dir = work;
	d->prepared = d->ops->ckpt->prepare_load(&env, &t, d->mode == MIG_POST_COPY);
	return 0;
}

static int receive_pages(struct dst *d, ferr_t *err)
{
	struct relay_opts ro = {.stream = MIG_STREAM_PAGES,
				.lz4 = d->b->has_lz4 && d->b->lz4,
				.idle_ms = d->o->timeout_ms > 0 ? d->o->timeout_ms : 30000,
				.on_rx = on_rx,
				.on_rx_arg = d};
	struct relay_stats rs;
	int r;

	int fd;
	if (prepare_stream_load(d, err) < 0 ||
	    d->ops->ckpt->sink_open(&d->env, d->dir, NULL, d->prepared, &d->sink, &fd, err) < 0)
		return -1;
	if (mig_send_step(d->c, MIG_ACCEPT, NULL) < 0)
		return chan_take_error(d->c, err); /* the sink goes in serve_begin */
	r = relay_run(d->c, fd, &ro, &rs, err);
	struct ckpt_sink *sink = d->sink;
	d->sink = NULL;
	if (d->ops->ckpt->sink_close(sink, r < 0, r < 0 ? NULL : err) < 0)
		return -1;
	if (r == 0)
		pr_info("migration %s: %llu page bytes in %.2f s", d->b->migration_id,
			(unsigned long long)rs.raw_rx, rs.seconds);
	return r;
}

/* Post-copy into a load that follows the stream (ckpt.h): the load starts
 * now and its sink's socket, which carries the stream both ways (the
 * backend's requests go back to the source), waits for the source's page
 * connection (MIG_REQ_PAGES), which relays it from then on. */
static int prepare_lazy_follow(struct dst *d, ferr_t *err)
{
	int fd;

	if (prepare_stream_load(d, err) < 0 ||
	    d->ops->ckpt->sink_open(&d->env, d->dir, NULL, d->prepared, &d->sink, &fd, err) < 0)
		return -1;
	if (lazy_register(d->m->lazy, d->b->migration_id, fd, d->b->has_lz4 && d->b->lz4, d->dir) <
	    0) {
		/* ours (ckpt.h), but the sink still uses it until it is closed */
		d->ops->ckpt->sink_close(d->sink, true, NULL);
		d->sink = NULL;
		close(fd);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	d->lazy = true;
	if (mig_send_step(d->c, MIG_ACCEPT, NULL) < 0)
		return chan_take_error(d->c, err);
	return 0;
}

/* Post-copy: no pages now; the lazy-pages daemon's socket waits for the
 * source's page connection (MIG_REQ_PAGES). */
static int prepare_lazy(struct dst *d, ferr_t *err)
{
	int sv[2];

	if (d->ops->ckpt->load_follows_stream)
		return prepare_lazy_follow(d, err);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return ferr_sys(err, FX_FAIL, "socketpair for the lazy-pages daemon");
	if (lazy_register(d->m->lazy, d->b->migration_id, sv[0], d->b->has_lz4 && d->b->lz4,
			  d->dir) < 0) {
		close(sv[0]);
		close(sv[1]);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	d->lazy = true;
	d->lazy_sk = sv[1];
	/* before anything is frozen: what the backend's load needs started */
	struct tenant_rec rec = {0};
	struct ckpt_target t = {0};
	snprintf(rec.rootfs, sizeof(rec.rootfs), "%s", d->in.root);
	d->ops->target(&rec, &t);
	/* not for a tenant whose files travel (dst_fs.h): its overlay is
	 * mounted at the restore, after a CRIU started now in a private mount
	 * namespace would have copied this host's mounts */
	d->prepared = d->fs ? NULL : d->ops->ckpt->prepare_load(&d->env, &t, true);
	if (mig_send_step(d->c, MIG_ACCEPT, NULL) < 0)
		return chan_take_error(d->c, err);
	return 0;
}

/* Pre-copy: the source's pre-dump rounds, then its final dump (dst_precopy.c). */
static int receive_rounds(struct dst *d, ferr_t *err)
{
	struct precopy_dst_opts po = {.ckpt = d->ops->ckpt,
				      .env = &d->env,
				      .dir = d->dir,
				      .migration_id = d->b->migration_id,
				      .lz4 = d->b->has_lz4 && d->b->lz4,
				      .timeout_ms = d->o->timeout_ms,
				      .on_rx = on_rx,
				      .on_rx_arg = d};

	return precopy_receive(d->c, &po, err);
}

static int prepare(struct dst *d, ferr_t *err)
{
	char base[PATH_MAX];

	if (d->ops->ckpt->locate(d->criu, sizeof(d->criu), err) < 0)
		return -1;
	d->env.tool = d->criu;
	if (xsnprintf(base, sizeof(base), err, "%s/migrations", d->o->state_dir) < 0 ||
	    fs_mkdir_p(base, 0700, err) < 0 ||
	    xsnprintf(d->dir, sizeof(d->dir), err, "%s/%s", base, d->b->migration_id) < 0)
		return -1;
	if (mkdir(d->dir, 0700) < 0) {
		d->dir[0] = '\0';
		return ferr_sys(err, FX_CONFLICT, "migration %s already exists here",
				d->b->migration_id);
	}
	return 0;
}

static int run(struct dst *d, ferr_t *err)
{
	struct frame_buf fb = {0};
	uint64_t raw;
	int r;

	d->ops = kind_get(d->kind, d->b->tenant, err);
	if (!d->ops)
		return -1;
	if (!dst_fault(d, "skip-precheck") && precheck(d, err) < 0)
		return -1;
	if (prepare(d, err) < 0 || mfs_dst_begin(d->c, d->o->state_dir, d->b, &d->fs, err) < 0 ||
	    (dst_post_copy(d)	       ? prepare_lazy(d, err)
	     : d->mode == MIG_PRE_COPY ? receive_rounds(d, err)
				       : receive_pages(d, err)) < 0 ||
	    mfs_dst_final(d->fs, d->c, err) < 0 || mig_files_recv(d->c, d->dir, &raw, err) < 0 ||
	    mfs_dst_ready(d->fs, err) < 0)
		return -1;
	/* the verified manifest is what gets restored: it must be what BEGIN said */
	if (dst_check_manifest(&d->pol, d->o->state_dir, d->dir, d->b, d->kind, err) < 0)
		return -1;
	if (frame_recv(d->c, &fb, err) < 0) {
		frame_buf_free(&fb);
		return ferr_wrap(err, "waiting for RESTORE");
	}
	r = fb.h.type;
	frame_buf_free(&fb);
	if (r == MIG_ABORT)
		return ferr_set(err, FX_PEER, "the source aborted the migration");
	if (r != MIG_RESTORE)
		return ferr_set(err, FX_INTEGRITY, "expected RESTORE, got frame type %d", r);
	return dst_hold_restore(d, err);
}

/* A failed incoming migration leaves no tenant directory (restore.log, ...)
 * behind, unless a record of that name exists here (another tenant's) or
 * FERRY_KEEP_FAILED is set; the error it sends says so when it quoted that
 * log. */
static void forget_tenant_dir(const struct dst *d, ferr_t *err)
{
	char dir[PATH_MAX];
	struct tenant_rec rec;
	ferr_t e = {0};
	int lock;

	if (registry_tenant_dir(d->o->state_dir, d->b->tenant, dir, sizeof(dir), NULL) < 0 ||
	    access(dir, F_OK) < 0 || getenv("FERRY_KEEP_FAILED"))
		return;
	if ((lock = registry_lock(d->o->state_dir, d->b->tenant, NULL)) < 0)
		return;
	if (registry_load(d->o->state_dir, d->b->tenant, &rec, &e) == 0)
		tenant_rec_free(&rec);
	else if (e.code == FX_NOTFOUND && fs_rm_rf(dir, NULL) == 0 && strstr(err->msg, dir))
		snprintf(err->msg + strlen(err->msg), sizeof(err->msg) - strlen(err->msg),
			 " (removed with the failed migration: FERRY_KEEP_FAILED=1 for the "
			 "agent keeps it)");
	close(lock);
}

/* MIGRATE_BEGIN: the whole migration, on this connection. */
static int serve_begin(struct chan *c, const struct frame_buf *req, const struct req_ctx *o,
		       void *state, ferr_t *err)
{
	struct dst d = {.c = c, .o = o, .m = state, .lazy_sk = -1, .fault = getenv("FERRY_FAULT")};
	int ret;

	d.b = wire_unpack(&ferry__wire__migrate_begin__descriptor, req->data, req->h.len, err);
	if (!d.b) {
		session_send_error(c, err);
		return -1;
	}
	if (!wire_set_id_ok(d.b->migration_id) || !tenant_name_valid(d.b->tenant)) {
		ret = ferr_set(err, FX_INTEGRITY, "bad migration id or tenant name");
	} else if (begin_kind_mode(d.b, &d.kind, &d.mode, err) < 0) {
		ret = -1;
	} else {
		pthread_mutex_lock(&d.m->lock);
		d.pol = d.m->intake;
		pthread_mutex_unlock(&d.m->lock);
		pr_info("migration %s of tenant %s from %s", d.b->migration_id, d.b->tenant,
			chan_peer(c));
		hq_source_of(&d.src_agent, d.b, c);
		ret = run(&d, err);
	}
	if (ret < 0 && d.ops && d.prepared) { /* ended before its directory goes */
		d.ops->ckpt->prepared_free(d.prepared);
		d.prepared = NULL;
	}
	if (ret < 0) {
		unmake_volumes(&d);
		if (d.b->tenant && tenant_name_valid(d.b->tenant))
			forget_tenant_dir(&d, err);
		if (!d.restored_sent && !chan_error(c))
			session_send_error(c, err);
		if (d.ops)
			d.ops->ckpt->sink_close(d.sink, true, NULL);
		d.sink = NULL;
		if (d.dir[0])
			if (!getenv("FERRY_KEEP_FAILED"))
				fs_rm_rf(d.dir, NULL);
		ferr_wrap(err, "migration %s of tenant %s", d.b->migration_id, d.b->tenant);
	}
	if (d.registered)
		indoubt_finish(d.m->indoubt, d.b->migration_id,
			       ret == 0 ? INDOUBT_RUNNING : INDOUBT_DISCARDED, &d.remap);
	if (d.lazy_sk >= 0)
		close(d.lazy_sk);
	if (d.lazy && ret < 0)
		lazy_drop(d.m->lazy, d.b->migration_id, true);
	if (d.ops && d.sink) /* post-copy into a following load: its sink stayed */
		d.ops->ckpt->sink_close(d.sink, ret < 0, NULL);
	if (d.ops && d.prepared)
		d.ops->ckpt->prepared_free(d.prepared);
	mfs_dst_end(d.fs, ret == 0);
	wire_free(d.b);
	return ret;
}

/* MIGRATE_RESOLVE: the source's decision for a migration in doubt. */
static int serve_resolve(struct chan *c, const struct frame_buf *req, const struct req_ctx *o,
			 void *state, ferr_t *err)
{
	struct mig_state *ms = state;
	Ferry__Wire__MigrateResolve *m =
	    wire_unpack(&ferry__wire__migrate_resolve__descriptor, req->data, req->h.len, err);
	Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;
	struct indoubt_remap rm;
	enum indoubt_outcome out;
	int ret = 0;

	(void)o;
	if (!m) {
		session_send_error(c, err);
		return -1;
	}
	out = indoubt_decide(ms->indoubt, m->migration_id, m->commit, 30, &rm);
	if (out == INDOUBT_RUNNING) {
		dst_step_remap(&rm, &st);
		mig_send_step(c, MIG_DONE, &st);
	} else {
		ret = ferr_set(err, out == INDOUBT_DISCARDED ? FX_CONFLICT : FX_NOTFOUND,
			       "migration %s: %s", m->migration_id,
			       out == INDOUBT_DISCARDED ? "the restored copy was discarded here"
							: "unknown here (nothing of it runs)");
		session_send_error(c, err);
	}
	wire_free(m);
	return ret;
}

/* At agent start: remove what migrations of an earlier (killed) agent left. */
static int clean_stale(const char *state_dir, ferr_t *err)
{
	char dir[PATH_MAX], p[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *dp;

	if (xsnprintf(dir, sizeof(dir), err, "%s/migrations", state_dir) < 0)
		return -1;
	if (!(dp = opendir(dir)))
		return 0;
	/* no incoming migration outlives the agent that received it: its
	 * directory was left by one that died (reconcile_all settled the
	 * tenant first). The source side's files (out-ID, pre-ID, ID.src,
	 * decisions) belong to `ferry migrate`, which may still run, and to its
	 * recovery. */
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.' || !strncmp(de->d_name, "out-", 4) ||
		    !strncmp(de->d_name, "pre-", 4) ||
		    xsnprintf_path(p, sizeof(p), dir, de->d_name) < 0 || lstat(p, &st) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (fs_rm_rf(p, err) < 0) {
			closedir(dp);
			return -1;
		}
	}
	closedir(dp);
	return 0;
}

/* ---- the agent's migration state and requests (dst.h) ---- */

struct mig_state *mig_state_new(unsigned conns, ferr_t *err)
{
	struct mig_state *m = calloc(1, sizeof(*m));

	if (!m) {
		ferr_set(err, FX_FAIL, "out of memory");
		return NULL;
	}
	/* outcomes: every connection's, several times over */
	pthread_mutex_init(&m->lock, NULL);
	dst_policy_default(&m->intake);
	m->indoubt = indoubt_new(conns * 8 > 64 ? conns * 8 : 64, err);
	m->lazy = m->indoubt ? lazy_tab_new(err) : NULL;
	if (!m->lazy) {
		mig_state_free(m);
		return NULL;
	}
	return m;
}

void mig_state_free(struct mig_state *m)
{
	if (!m)
		return;
	indoubt_free(m->indoubt);
	lazy_tab_free(m->lazy);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void mig_state_set_intake(struct mig_state *m, const struct dst_policy *p)
{
	pthread_mutex_lock(&m->lock);
	m->intake = *p;
	pthread_mutex_unlock(&m->lock);
}

static void settled(const char *id, bool running, void *arg)
{
	struct mig_state *m = arg;

	indoubt_finish(m->indoubt, id, running ? INDOUBT_RUNNING : INDOUBT_DISCARDED, NULL);
}

int mig_state_start(struct mig_state *m, const char *state_dir, ferr_t *err)
{
	/* what killed commands and a killed agent left (reconcile.h) */
	reconcile_agent_start(state_dir, settled, m);
	return clean_stale(state_dir, err);
}

static int serve_pages(struct chan *c, const struct frame_buf *req, const struct req_ctx *o,
		       void *state, ferr_t *err)
{
	struct mig_state *m = state;

	(void)o;
	return lazy_serve_pages(c, req, m->lazy, err);
}

static int serve_query(struct chan *c, const struct frame_buf *req, const struct req_ctx *o,
		       void *state, ferr_t *err)
{
	(void)state;
	return query_answer(c, req, o, err);
}

const struct req_handler mig_requests[] = {
    {MIG_REQ_BEGIN, "migrate", serve_begin, false},
    {MIG_REQ_RESOLVE, "resolve", serve_resolve, false},
    {MIG_REQ_PAGES, "pages", serve_pages, false},
    {MIG_REQ_QUERY, "query", serve_query, false},
    {0, NULL, NULL, false},
};
