/* Destination side of a live migration (dst.h, handover.h, docs/migrate.md). */
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
#include "tenant/garp.h"
#include "migrate/dst.h"
#include "migrate/dst_check.h"
#include "migrate/handover.h"
#include "migrate/dst_indoubt.h"
#include "migrate/dst_lazy.h"
#include "migrate/dst_fs.h"
#include "migrate/query.h"
#include "migrate/reconcile.h"
#include "lib/log.h"
#include "lib/reap.h"
#include "migrate/migrate_files.h"
#include "tenant/isolate.h"
#include "tenant/kind.h"
#include "tenant/net.h"
#include "migrate/dst_precopy.h"
#include "tenant/registry.h"
#include "tenant/userns.h"
#include "transport/relay.h"
#include "snapshot/restore.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"
#include "migrate/wire_enums.h"

struct dst {
	struct chan *c;
	const struct req_ctx *o;
	struct mig_state *m; /* the agent's tables: in doubt, lazy pages */
	Ferry__Wire__MigrateBegin *b;
	enum tenant_kind kind; /* b's kind and mode (wire_enums.h) */
	enum mig_mode mode;
	const char *fault; /* FERRY_FAULT (testing hook, docs/migrate.md) */
	char dir[PATH_MAX];
	char criu[PATH_MAX];
	const struct tenant_kind_ops *ops; /* the kind's (tenant/kind.h) */
	struct ckpt_env env;		   /* the tenant's backend: CRIU's path */
	struct ckpt_sink *sink;		   /* stop-copy: the page stream's receiver */
	bool registered;		   /* in the in-doubt table */
	bool lazy;			   /* post-copy: registered in the lazy table */
	int lazy_sk;			   /* the daemon's end until it starts */
	void *prepared;			   /* post-copy: the backend's prepare_load, at BEGIN */
	bool restored_sent;		   /* MIG_RESTORED went out: the source may commit */
	struct hq_source src_agent;	   /* whom to ask when in doubt (query.h) */
	struct dst_policy pol;		   /* what peers may send, at BEGIN */
	struct dst_intake in;		   /* what we decided: root, host interface */
	uint64_t t_restore, t_commit, t_running; /* t_running: CRIU's post-resume */
	struct mfs_dst *fs;			 /* the tenant's files travel (dst_fs.h) */
	int n_made;				 /* volumes created here: */
	char made[TENANT_VOLUMES_MAX][PATH_MAX]; /* their paths, parent resolved */
	double net_ms;				 /* the gratuitous ARP, at t_running */
};

static bool fault(const struct dst *d, const char *what)
{
	return d->fault && !strcmp(d->fault, what);
}

static int indoubt_seconds(void)
{
	const char *s = getenv("FERRY_MIGRATE_INDOUBT_S");
	int v = s ? atoi(s) : 0;

	return v > 0 ? v : MIG_INDOUBT_S;
}

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

	if (fault(d, "crash-during-transfer") && raw > (8U << 20)) {
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

/* ---- the held restore ---- */

/* Session lost after MIG_RESTORED: the source may have committed. */
static int decide_in_doubt(struct dst *d, ferr_t *err)
{
	int dec = indoubt_peek(d->m->indoubt, d->b->migration_id);

	if (dec < 0) {
		pr_warn("migration %s: session lost after RESTORED; holding tenant %s (stopped) "
			"up to %d s for the source's decision",
			d->b->migration_id, d->b->tenant, indoubt_seconds());
		dec = hq_wait_decision(&d->src_agent, d->o, d->m->indoubt, d->b->migration_id,
				       indoubt_seconds());
	}
	if (dec == 1)
		return 0;
	return ferr_set(err, FX_PEER, "%s: no decision from the source: restored copy discarded",
			dec == 0 ? "source aborted" : "source vanished");
}

static int hold(struct dst *d, ferr_t *err)
{
	Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;
	struct frame_buf fb = {0};
	int ret;

	if (fault(d, "crash-during-restore")) {
		pr_warn("FERRY_FAULT=crash-during-restore: killing this agent");
		kill(getpid(), SIGKILL);
	}
	if (fault(d, "after-restore-disconnect")) {
		pr_warn("FERRY_FAULT=after-restore-disconnect: dropping the session");
		shutdown(d->c->fd, SHUT_RDWR);
		return ferr_set(err, FX_PEER, "session dropped before RESTORED (test fault)");
	}
	st.has_restore_ms = true;
	st.restore_ms = ms_since(d->t_restore);
	if (indoubt_register(d->m->indoubt, d->b->migration_id, d->c->fd) == 0)
		d->registered = true;
	if (mig_send_step(d->c, MIG_RESTORED, &st) < 0)
		return chan_take_error(d->c, err);
	d->restored_sent = true;
	if (fault(d, "drop-after-restored")) {
		pr_warn("FERRY_FAULT=drop-after-restored: dropping the session");
		shutdown(d->c->fd, SHUT_RDWR);
	}
	if (frame_recv(d->c, &fb, err) < 0) {
		ret = decide_in_doubt(d, err);
	} else if (fb.h.type == MIG_COMMIT) {
		ret = 0;
	} else if (fb.h.type == MIG_ABORT || fb.h.type == WIRE_ERROR) {
		ret = ferr_set(err, FX_PEER, "the source aborted the migration");
	} else {
		ret = session_unexpected(&fb, chan_peer(d->c), "COMMIT", err);
	}
	frame_buf_free(&fb);
	if (ret == 0)
		d->t_commit = now_ns();
	return ret;
}

/* The host side of the veth gets the MAC it had on the source (garp.h). The
 * container driver plumbed it (route, proxy ARP) just before; a driver that
 * must take the link down for this loses the route: plumb again. */
static void keep_mac(struct dst *d)
{
	const Ferry__Wire__MigrateBegin *b = d->b;
	ferr_t e = {0};

	if (!b->has_host_if_mac || b->host_if_mac.len != 6 || !d->in.host_if[0] || !b->net_addr)
		return;
	if (l2_set_mac(d->in.host_if, b->host_if_mac.data, &e) < 0 ||
	    net_host_plumb(d->in.host_if, b->net_addr, &e) < 0)
		pr_warn("tenant %s: %s (its neighbour entries recover by ARP)", b->tenant, e.msg);
}

/* The tenant's address is reached through this host now. */
static void announce(struct dst *d)
{
	uint64_t t = now_ns();
	ferr_t e = {0};

	if (d->b->net_addr && *d->b->net_addr &&
	    garp_announce(d->b->net_addr, d->in.host_if, &e) < 0)
		pr_warn("tenant %s: %s (neighbours learn the move when their ARP entries expire)",
			d->b->tenant, e.msg);
	d->net_ms = ms_since(t);
}

/* The load's events (tenant/ckpt.h): its hold point is the handover. */
static int restore_event(enum ckpt_event ev, pid_t pid, void *arg, ferr_t *err)
{
	struct dst *d = arg;

	/* the restored root is our child (restored as the backend's sibling):
	 * reap it when it ends, even if this restore fails from here on */
	if (ev == CKPT_EV_PAGER) { /* post-copy: dst_lazy.c ends it with the migration */
		lazy_set_daemon(d->m->lazy, d->b->migration_id, pid);
		return 0;
	}
	reap_watch(pid);
	if (ev == CKPT_EV_RUNNING && !d->t_running) {
		d->t_running = now_ns(); /* the backend resumed the tasks just before */
		announce(d);		 /* at once: its clients are waiting */
	}
	if (ev == CKPT_EV_RUNNING && fault(arg, "crash-after-resume")) {
		pr_warn("FERRY_FAULT=crash-after-resume: killing this agent");
		kill(getpid(), SIGKILL);
	}
	if (ev != CKPT_EV_LOADED)
		return 0;
	keep_mac(arg);
	return hold(arg, err);
}

/* Registered: the images are not needed any more. */
static void forget_images(struct dst *d, const char *name, bool remove)
{
	struct tenant_rec rec;
	int lock = registry_lock(d->o->state_dir, name, NULL);

	if (lock >= 0 && registry_load(d->o->state_dir, name, &rec, NULL) == 0) {
		if (!strcmp(rec.last_dump, d->dir)) {
			rec.last_dump[0] = '\0';
			registry_save(d->o->state_dir, &rec, NULL);
		}
		tenant_rec_free(&rec);
	}
	if (lock >= 0)
		close(lock);
	if (remove)
		fs_rm_rf(d->dir, NULL);
}

static bool post_copy(const struct dst *d)
{
	return d->mode == MIG_POST_COPY;
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

/* The tenant runs here: a "migration" event for the agent to print. */
static void report_running(const struct dst *d, const struct restore_result *rr, double resume_ms)
{
	struct event e;

	ev_init(&e, "migration");
	ev_bool(&e, "ok", true);
	ev_str(&e, "migration_id", d->b->migration_id);
	ev_str(&e, "tenant", rr->name);
	ev_str(&e, "mode", mig_mode_str(d->mode));
	ev_int(&e, "pid", rr->pid);
	ev_double(&e, "restore_ms", rr->criu_ms);
	ev_double(&e, "resume_ms", resume_ms);
	ev_str(&e, "peer", d->o->peer);
	ev_str(&e, "peer_name", d->o->peer_name);
	if (rr->id_to) { /* its range was taken here (tenant/isolate.h) */
		ev_int(&e, "id_remap_from", rr->id_from);
		ev_int(&e, "id_remap_to", rr->id_to);
	}
	ev_emit(d->o->events, &e);
}

/* DONE says when the tenant's ID range was taken here and re-mapped
 * (tenant/isolate.h): the source reports it (the range keeps its size). */
static void done_remap(const struct dst *d, const struct restore_result *rr,
		       Ferry__Wire__MigrateStep *st)
{
	const Ferry__Isolation *iso = d->b->iso;

	if (!rr->id_to)
		return;
	st->has_id_remap_from = st->has_id_remap_to = st->has_id_remap_count = true;
	st->id_remap_from = rr->id_from;
	st->id_remap_to = rr->id_to;
	st->id_remap_count =
	    iso && iso->has_id_count && iso->id_count ? iso->id_count : USERNS_SIZE;
}

static int restore_and_handover(struct dst *d, ferr_t *err)
{
	Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;
	struct restore_opts ro = {.state_dir = d->o->state_dir,
				  .criu_path = d->criu,
				  .images_dir = d->dir,
				  .on_event = restore_event,
				  .event_arg = d,
				  .lazy = post_copy(d),
				  .prepared = d->prepared,
				  .register_held = true,
				  /* what this host decided, not the peer's strings */
				  .rootfs = d->in.root,
				  .host_if = d->in.host_if};
	struct restore_result rr;
	int r;

	d->t_restore = now_ns();
	ro.page_fd = d->lazy_sk; /* post-copy: the backend's pager inherits it */
	r = restore_tenant(&ro, &rr, err);
	if (d->lazy_sk >= 0) {
		close(d->lazy_sk);
		d->lazy_sk = -1;
	}
	if (r < 0)
		return -1;
	reap_watch(rr.pid);
	st.has_resume_ms = st.has_net_ms = st.has_pid = true;
	/* the tenant runs from CRIU's resume on, not from when CRIU's answer
	 * and our registry record are done */
	st.resume_ms = d->t_running ? (d->t_running - d->t_commit) / 1e6 : ms_since(d->t_commit);
	if (!d->t_running) /* the backend said nothing at the resume */
		announce(d);
	st.net_ms = d->net_ms;
	st.pid = (uint32_t)rr.pid;
	done_remap(d, &rr, &st);
	report_running(d, &rr, st.resume_ms);
	/* best effort: the source can resolve; first, as the source replays
	 * the segments it held for the tenant on it (tenant/pkthold.h) */
	mig_send_step(d->c, MIG_DONE, &st);
	forget_images(d, rr.name, !post_copy(d)); /* post-copy: the daemon still reads them */
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
	if (!fault(d, "skip-precheck") && precheck(d, err) < 0)
		return -1;
	if (prepare(d, err) < 0 || mfs_dst_begin(d->c, d->o->state_dir, d->b, &d->fs, err) < 0 ||
	    (post_copy(d)	       ? prepare_lazy(d, err)
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
	return restore_and_handover(d, err);
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
			       ret == 0 ? INDOUBT_RUNNING : INDOUBT_DISCARDED);
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
	enum indoubt_outcome out;
	int ret = 0;

	(void)o;
	if (!m) {
		session_send_error(c, err);
		return -1;
	}
	out = indoubt_decide(ms->indoubt, m->migration_id, m->commit, 30);
	if (out == INDOUBT_RUNNING) {
		mig_send_step(c, MIG_DONE, NULL);
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

	indoubt_finish(m->indoubt, id, running ? INDOUBT_RUNNING : INDOUBT_DISCARDED);
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
