/* Destination of a live migration: the held restore and the handover
 * (dst_hold.h). */
#define LOG_PREFIX "handover"
#include "migrate/dst_hold.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/reap.h"
#include "lib/util.h"
#include "migrate/handover.h"
#include "snapshot/restore.h"
#include "tenant/garp.h"
#include "tenant/net.h"
#include "tenant/registry.h"
#include "tenant/userns.h"
#include "transport/session.h"

static int indoubt_seconds(void)
{
	const char *s = getenv("FERRY_MIGRATE_INDOUBT_S");
	int v = s ? atoi(s) : 0;

	return v > 0 ? v : MIG_INDOUBT_S;
}

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

	if (dst_fault(d, "crash-during-restore")) {
		pr_warn("FERRY_FAULT=crash-during-restore: killing this agent");
		kill(getpid(), SIGKILL);
	}
	if (dst_fault(d, "after-restore-disconnect")) {
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
	if (dst_fault(d, "drop-after-restored")) {
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
	if (ev == CKPT_EV_RUNNING && dst_fault(arg, "crash-after-resume")) {
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

void dst_step_remap(const struct indoubt_remap *rm, Ferry__Wire__MigrateStep *st)
{
	if (!rm->to)
		return;
	st->has_id_remap_from = st->has_id_remap_to = st->has_id_remap_count = true;
	st->id_remap_from = rm->from;
	st->id_remap_to = rm->to;
	st->id_remap_count = rm->count;
}

/* DONE says when the tenant's ID range was taken here and re-mapped
 * (tenant/isolate.h): the source reports it (the range keeps its size);
 * kept for MIGRATE_RESOLVE's answer too (dst_indoubt.h). */
static void done_remap(struct dst *d, const struct restore_result *rr, Ferry__Wire__MigrateStep *st)
{
	const Ferry__Isolation *iso = d->b->iso;

	if (!rr->id_to)
		return;
	d->remap.from = rr->id_from;
	d->remap.to = rr->id_to;
	d->remap.count = iso && iso->has_id_count && iso->id_count ? iso->id_count : USERNS_SIZE;
	dst_step_remap(&d->remap, st);
}

int dst_hold_restore(struct dst *d, ferr_t *err)
{
	Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;
	struct restore_opts ro = {.state_dir = d->o->state_dir,
				  .criu_path = d->criu,
				  .images_dir = d->dir,
				  .on_event = restore_event,
				  .event_arg = d,
				  .lazy = dst_post_copy(d),
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
	forget_images(d, rr.name, !dst_post_copy(d)); /* post-copy: the daemon still reads them */
	return 0;
}
