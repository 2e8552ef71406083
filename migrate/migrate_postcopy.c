/* Post-copy, source side (migrate_mode.h, docs/migrate.md). The tenant's
 * checkpoint backend saves it lazily (tenant/ckpt.h, CKPT_SAVE_LAZY; for
 * CRIU its lazy dump with an action script, tenant/ckpt_criu_lazy.c): at
 * its SAVED point we send RESTORE and cut the tenant's network, at its
 * SERVING point (the backend serves the memory, the tenant stays frozen) we
 * wait for RESTORED and decide; on commit the backend ends the source copy
 * and we send COMMIT. After the commit the tenant runs on the destination
 * and faults its memory in through a second session (MIG_REQ_PAGES)
 * relayed to the backend here: this process and this host must stay until
 * the last page went. */
#define LOG_PREFIX "migrate"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "migrate/handover.h"
#include "migrate/migrate_fs.h"
#include "migrate/migrate_mode.h"
#include "migrate/migrate_src.h"
#include "migrate/reconcile.h"
#include "tenant/kind.h"
#include "tenant/kind_tree.h"
#include "transport/frame.h"

struct pc {
	struct src *s;
	const struct tenant_kind_ops *kind;
	bool cut;	/* the tenant's host-side network is cut */
	bool committed; /* source copy killed, COMMIT sent */
	bool aborted;	/* the destination was told to drop its copy */
	bool commit_ok; /* the destination confirmed it runs */
	bool lost;	/* the backend: not all of its memory went after the commit */
	ferr_t commit_err;
};

/* The destination drops its copy and its lazy-pages side; the backend's
 * page stream loses its peer and the tenant resumes here. */
static int abort_handover(struct pc *p)
{
	msrc_abort(p->s);
	shutdown(p->s->sv[1], SHUT_RDWR);
	p->aborted = true;
	return -1;
}

/* Frozen, state saved: the destination starts restoring while we cut the
 * tenant off (before the backend lets its network go). */
static int on_saved(struct pc *p)
{
	struct src *s = p->s;

	s->t_postdump = now_ns();
	if (msrc_send_restore(s, &p->commit_err) < 0)
		return abort_handover(p);
	if (p->kind->cut(&s->rec.net, &p->commit_err) < 0) {
		ferr_wrap(&p->commit_err, "cutting tenant %s off the network", s->rec.name);
		return abort_handover(p); /* the destination drops what it restores */
	}
	p->cut = true;
	return 0;
}

/* Testing hook (vm_postcopy.sh): FERRY_FAULT=postcopy-cut cuts the page
 * session right after the commit, as a link that fails while the memory
 * is still coming. */
static void cut_hook(struct src *s)
{
	const char *f = getenv("FERRY_FAULT");

	if (f && !strcmp(f, "postcopy-cut") && s->relay_chan && s->relay_chan->fd >= 0) {
		pr_warn("FERRY_FAULT=%s: cutting the page session", f);
		shutdown(s->relay_chan->fd, SHUT_RDWR);
	}
}

static int pc_event(enum ckpt_event ev, pid_t pid, void *arg, ferr_t *err)
{
	struct pc *p = arg;
	struct src *s = p->s;

	(void)pid;
	switch (ev) {
	case CKPT_EV_FROZEN:
		msrc_hold_packets(s); /* CRIU locks the network right after this */
		mfs_src_frozen(s);    /* the file-system delta, while CRIU saves */
		return 0;
	case CKPT_EV_SAVED:
		if (on_saved(p) < 0)
			return ferr_set(err, p->commit_err.code, "%s", p->commit_err.msg);
		return 0;
	case CKPT_EV_SERVING:
		/* decided (marker written): the source copy must never run again */
		if (msrc_wait_restored(s, &p->commit_err) < 0) {
			abort_handover(p);
			return ferr_set(err, p->commit_err.code, "%s", p->commit_err.msg);
		}
		return 0;
	case CKPT_EV_ABORTED:
		p->commit_err = *err;
		ferr_wrap(&p->commit_err, "tenant %s", s->rec.name);
		unlink(s->marker);
		s->commit_decided = false;
		return abort_handover(p);
	case CKPT_EV_COMMITTED:
		p->committed = true;
		cut_hook(s);
		mig_fault_point("src-crash-in-postcopy"); /* testing hook (reconcile.h) */
		p->commit_ok = msrc_commit(s, &p->commit_err) == 0;
		mig_fault_point("src-crash-after-postcopy-commit"); /* testing hook */
		if (p->commit_ok)
			msrc_replay_packets(s); /* it runs there now */
		msrc_progress(s, "pages");
		return 0;
	default:
		return 0;
	}
}

static int open_pages(struct src *s, ferr_t *err)
{
	Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;

	if (msrc_connect(s, &s->relay_chan, err) < 0)
		return ferr_wrap(err, "page connection to %s", s->r->dest);
	st.migration_id = s->r->migration_id;
	frame_send_pb(s->relay_chan, MIG_REQ_PAGES, &st.base);
	chan_flush(s->relay_chan);
	return chan_take_error(s->relay_chan, err);
}

/* The backend is done: after the last page (committed), or after resuming
 * the tenant (anything else). */
static int finish(struct pc *p, int saved, ferr_t *serr, ferr_t *err)
{
	struct src *s = p->s;
	ferr_t rerr = {0}, nerr = {0};
	bool alive = ktree_alive(s->rec.init_pid);

	s->t_pages_done = now_ns();
	if (!p->committed && !p->aborted) {
		/* the save failed before the handover: the destination drops its side */
		msrc_abort(s);
		shutdown(s->sv[1], SHUT_RDWR);
	}
	msrc_stop_relay(s, &rerr);
	if (p->committed) {
		if (!p->commit_ok) { /* lost: the backend's word says more */
			*err = p->lost && saved < 0 ? *serr : p->commit_err;
			return ferr_wrap(err, "post-copy handover of %s", s->rec.name);
		}
		if (rerr.code)
			pr_warn("tenant %s: page relay ended with: %s", s->rec.name, rerr.msg);
		p->kind->unplumb(&s->rec.net, NULL);
		tenant_released(p->kind, &s->rec);
		s->r->moved = true;
		msrc_cleanup(s);
		if (saved < 0 && !p->lost)
			pr_debug("after the handover: %s", serr->msg);
		if (saved < 0 && p->lost) { /* handed over, but its memory did not all go */
			*err = *serr;
			return ferr_wrap(err, "after the post-copy handover of %s to %s",
					 s->rec.name, s->r->dest);
		}
		return 0;
	}
	if (p->cut && alive && p->kind->plumb(&s->rec.net, &nerr) < 0)
		pr_warn("tenant %s runs here again but its network is not restored: %s",
			s->rec.name, nerr.msg);
	s->r->on_source = alive;
	s->rec.state = alive ? TS_RUNNING : TS_GONE;
	s->rec.updated = wall_time();
	registry_save(s->o->state_dir, &s->rec, NULL);
	unlink(s->marker);
	fs_rm_rf(s->img, NULL);
	if (p->commit_err.code)
		*err = p->commit_err;
	else if (saved < 0)
		*err = *serr;
	else
		ferr_set(err, FX_FAIL, "the lazy save ended before the handover");
	return ferr_wrap(err, "migration of %s to %s failed (%s)", s->rec.name, s->r->dest,
			 alive ? "it runs on this host again" : "and it is not running here");
}

/* The backend's lazy save, its memory through the relay. */
static int save(struct pc *p, const char *work, ferr_t *err)
{
	struct src *s = p->s;
	struct ckpt_env env = {.tool = s->o->criu_path, .work_dir = work};
	struct ckpt_save_opts so = {.mode = CKPT_SAVE_LAZY,
				    .dir = s->img,
				    .stream_fd = s->sv[0],
				    .tcp_established = true,
				    .copy_volumes = s->copy_volumes,
				    .on_event = pc_event,
				    .arg = p};
	struct ckpt_target t = {0};
	struct ckpt_save_result res = {0};
	int r;

	p->kind->target(&s->rec, &t);
	msrc_progress(s, "dump");
	r = p->kind->ckpt->save(&env, &t, &so, &res, err);
	s->t_lock = res.t_frozen;
	s->r->backend = res.backend;
	p->lost = res.lost;
	return r;
}

static int post_copy(struct src *s, ferr_t *err)
{
	struct pc p = {.s = s};
	char work[PATH_MAX];
	ferr_t serr = {0};
	int lock, ret = -1;

	p.kind = kind_get(s->rec.kind, s->rec.name, err);
	if (!p.kind)
		return -1;
	lock = registry_lock(s->o->state_dir, s->rec.name, err);
	if (lock < 0)
		return -1;
	if (registry_tenant_dir(s->o->state_dir, s->rec.name, work, sizeof(work), err) < 0 ||
	    fs_mkdir_p(work, 0700, err) < 0 || fs_mkdir_p(s->img, 0700, err) < 0 ||
	    open_pages(s, err) < 0)
		goto out;
	if (msrc_start_relay(s, err) < 0)
		goto out;
	s->rec.state = TS_FROZEN;
	s->rec.updated = wall_time();
	registry_save(s->o->state_dir, &s->rec, NULL);
	msrc_progress(s, "freeze");
	int saved = save(&p, work, &serr);
	ret = finish(&p, saved, &serr, err);
	close(s->sv[0]);
	s->sv[0] = -1;
out:
	close(lock);
	return ret;
}

const struct mig_mode_ops mig_mode_post_copy = {
    .mode = MIG_POST_COPY,
    .run = post_copy,
};
