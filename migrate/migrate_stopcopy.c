/* Stop-copy, source side (migrate_mode.h, docs/migrate.md): the tenant's
 * checkpoint backend saves it frozen, its memory streaming through the page
 * relay as it is saved; at the save's hold point (CKPT_EV_SAVED: CRIU's
 * post-dump) the images go, the destination restores and holds, and the
 * decision is written before the backend is answered (commit: it ends the
 * source copy; abort: the tenant resumes here). Pre-copy's final save is
 * this one with the last round as its parent. */
#define LOG_PREFIX "migrate"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "migrate/migrate_fs.h"
#include "migrate/migrate_mode.h"
#include "migrate/migrate_src.h"
#include "snapshot/dump.h"
#include "tenant/ckpt.h"
#include "tenant/kind_tree.h"

static int post_dump(struct src *s, ferr_t *err)
{
	s->t_postdump = now_ns();
	if (msrc_stop_relay(s, err) < 0)
		return -1;
	return msrc_hold(s, err);
}

/* The save's events (tenant/ckpt.h): its hold point is the handover. */
static int src_event(enum ckpt_event ev, pid_t pid, void *arg, ferr_t *err)
{
	struct src *s = arg;

	(void)pid;
	if (ev == CKPT_EV_FROZEN && !s->t_lock) {
		msrc_hold_packets(s); /* CRIU locks the network right after this */
		mfs_src_frozen(s);    /* the file-system delta, while CRIU saves */
		s->t_lock = now_ns();
		msrc_progress(s, "dump");
	}
	if (ev == CKPT_EV_SAVED)
		return post_dump(s, err);
	return 0;
}

/* Freeze + stream + hand over. */
static int stop_copy(struct src *s, ferr_t *err)
{
	struct dump_opts d = {.state_dir = s->o->state_dir,
			      .criu_path = s->o->criu_path,
			      .name = s->rec.name,
			      .images_dir = s->img,
			      .tcp_established = true,
			      .on_event = src_event,
			      .event_arg = s,
			      .prev = s->parent_img,
			      .track = s->track_mem,
			      .live = s->live,
			      .max_downtime_ms = s->o->max_downtime_ms};
	struct dump_result dr;
	int r;

	if (msrc_start_relay(s, err) < 0)
		return -1;
	d.stream = true;
	d.stream_fd = s->sv[0];
	msrc_progress(s, "freeze");
	r = dump_tenant(&d, &dr, err);
	ferr_t rerr = {0};
	if (msrc_stop_relay(s, &rerr) < 0 && r == 0)
		pr_warn("%s", rerr.msg);
	close(s->sv[0]);
	close(s->sv[1]);
	s->r->freeze_ms = dr.freeze_ms;
	s->r->backend = dr.backend;
	if (r < 0 && s->commit_decided && !ktree_alive(s->rec.init_pid)) {
		/* CRIU got our "ok" and the source copy is gone: the decision stands */
		pr_warn("after the handover decision: %s", err->msg);
		ferr_clear(err);
		r = 0;
	}
	if (r < 0) {
		msrc_abort(s);
		unlink(s->marker);
		fs_rm_rf(s->img, NULL);
		s->r->on_source = ktree_alive(s->rec.init_pid);
		return ferr_wrap(err, "migration of %s to %s failed (%s)", s->rec.name, s->r->dest,
				 s->r->on_source ? "it runs on this host again"
						 : "and it is not running here");
	}
	if (msrc_commit(s, err) < 0)
		return -1;
	msrc_replay_packets(s); /* it runs there now */
	s->r->moved = true;
	msrc_cleanup(s);
	return 0;
}

const struct mig_mode_ops mig_mode_stop_copy = {
    .mode = MIG_STOP_COPY,
    .run = stop_copy,
};
