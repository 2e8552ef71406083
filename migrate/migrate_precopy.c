/* Pre-copy, source side (migrate_mode.h, precopy.h, docs/migrate.md).
 *
 * Rounds of CRIU pre-dumps with memory tracking while the tenant runs, each
 * on its own page-server socket relayed over the migration's session like
 * stop-copy's pages; then the final save (stop-copy's) with the last
 * round as its parent, so that CRIU sends only the pages still dirty. */
#define LOG_PREFIX "migrate"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tenant/kind.h"
#include "tenant/kind_tree.h"
#include "lib/fsutil.h"
#include "migrate/handover.h"
#include "lib/log.h"
#include "migrate/migrate_mode.h"
#include "migrate/migrate_src.h"
#include "migrate/precopy.h"
#include "migrate/reconcile.h"
#include "tenant/registry.h"
#include "lib/util.h"
#include "transport/wire.h"

struct pre {
	struct src *s;
	struct precopy_policy pol;
	char base[PATH_MAX];   /* STATE/migrations/pre-ID: the rounds' local images */
	char work[PATH_MAX];   /* CRIU's log and stats: the tenant's registry dir */
	char from[80];	       /* the rounds seen from the final images: "../pre-ID" */
	char parent[PATH_MAX]; /* the final dump's parent */
	uint64_t bytes[PRECOPY_ROUNDS_MAX];
};

/* Testing hook (docs/migrate.md): FERRY_FAULT=WHAT sleeps here for
 * FERRY_FAULT_PAUSE_MS (default 3000), e.g. while a test cuts the link. */
static void fault_pause(const char *what)
{
	const char *f = getenv("FERRY_FAULT"), *ms = getenv("FERRY_FAULT_PAUSE_MS");

	if (f && !strcmp(f, what)) {
		long v = ms ? strtol(ms, NULL, 10) : 3000;
		pr_warn("FERRY_FAULT=%s: pausing %ld ms", what, v);
		struct timespec ts = {v / 1000, (v % 1000) * 1000000L};
		if (v > 0)
			nanosleep(&ts, NULL);
	}
}

/* MIG_ROUND, then the destination's MIG_ACCEPT: its page server runs. */
static int send_round(struct src *s, unsigned n, bool final, ferr_t *err)
{
	Ferry__Wire__MigrateRound m = FERRY__WIRE__MIGRATE_ROUND__INIT;
	struct frame_buf fb = {0};
	int r;

	m.round = n;
	m.has_final = final;
	m.final = final;
	frame_send_pb(s->c, MIG_ROUND, &m.base);
	chan_flush(s->c);
	r = mig_recv(s->c, &fb, MIG_ACCEPT, "ACCEPT", NULL, err);
	frame_buf_free(&fb);
	return r;
}

/* The backend's pre-copy round n into dir, its pages through the relay. */
static int pre_dump(struct pre *p, unsigned n, const char *dir, struct ckpt_save_result *res,
		    ferr_t *err)
{
	struct src *s = p->s;
	const struct tenant_kind_ops *kind = kind_get(s->rec.kind, s->rec.name, err);
	struct ckpt_env env = {.tool = s->o->criu_path, .work_dir = p->work};
	struct ckpt_save_opts so = {.mode = CKPT_SAVE_ROUND,
				    .dir = dir,
				    .stream_fd = s->sv[0],
				    .track = true,
				    .tcp_established = true};
	struct ckpt_target t = {0};
	char parent[64];
	int lock, r;

	if (!kind)
		return -1;
	if (precopy_parent("..", n - 1, parent, sizeof(parent)) < 0)
		return ferr_set(err, FX_FAIL, "round name too long");
	so.prev = parent[0] ? parent : NULL;
	/* no other ferry command on the tenant meanwhile (not held across
	 * rounds: the final dump takes it itself) */
	lock = registry_lock(s->o->state_dir, s->rec.name, err);
	if (lock < 0)
		return -1;
	kind->target(&s->rec, &t);
	r = kind->ckpt->save(&env, &t, &so, res, err);
	if (r < 0)
		ferr_wrap(err, "%s %s", kind->name, s->rec.name);
	close(lock);
	return r;
}

static void round_figures(struct pre *p, unsigned n, uint64_t t0,
			  const struct ckpt_save_result *res)
{
	struct mig_round *mr = &p->s->r->rounds[n - 1];
	long psz = sysconf(_SC_PAGESIZE);
	bool stats = res->has_stats;

	mr->ms = ms_since(t0);
	mr->raw = p->s->rs.raw_tx;
	mr->payload = p->s->rs.payload_tx;
	if (stats) {
		mr->pages = res->pages;
		mr->frozen_ms = res->frozen_ms;
	}
	/* the dirty set: the backend's page count, else what crossed the relay */
	p->bytes[n - 1] = stats ? mr->pages * (uint64_t)(psz > 0 ? psz : 4096) : mr->raw;
	p->s->r->n_rounds = n;
	pr_info("pre-copy round %u of %s: %llu pages, %llu bytes relayed (%llu on the wire) in "
		"%.0f ms, frozen %.1f ms",
		n, p->s->rec.name, (unsigned long long)mr->pages, (unsigned long long)mr->raw,
		(unsigned long long)mr->payload, mr->ms, mr->frozen_ms);
}

/* One pre-dump round: the destination's page server for round n, CRIU's
 * pre-dump (the tenant runs again before its pages are sent), the relay
 * until both sides closed. */
static int round_run(struct pre *p, unsigned n, ferr_t *err)
{
	struct src *s = p->s;
	struct ckpt_save_result res = {0};
	char name[32], dir[PATH_MAX], stage[32];
	uint64_t t0 = now_ns();
	ferr_t rerr = {0};
	int r, rr;

	if (precopy_round_name(n, name, sizeof(name)) < 0 ||
	    xsnprintf_path(dir, sizeof(dir), p->base, name) < 0)
		return ferr_set(err, FX_FAIL, "path of pre-copy round %u too long", n);
	if (mkdir(dir, 0700) < 0)
		return ferr_sys(err, FX_FAIL, "creating %s", dir);
	snprintf(stage, sizeof(stage), "pre-dump %u", n);
	msrc_progress(s, stage);
	if (send_round(s, n, false, err) < 0)
		return -1;
	if (msrc_start_relay(s, err) < 0)
		return -1;
	if (n == 2) { /* testing hooks: round 1 is in, round 2 under way */
		mig_fault_point("src-crash-during-round");
		fault_pause("src-pause-during-round");
	}
	r = pre_dump(p, n, dir, &res, err);
	rr = msrc_stop_relay(s, &rerr);
	close(s->sv[0]);
	close(s->sv[1]);
	s->sv[0] = s->sv[1] = -1;
	if (r < 0)
		return -1;
	if (rr < 0) {
		*err = rerr;
		return -1;
	}
	round_figures(p, n, t0, &res);
	return 0;
}

static int setup(struct pre *p, ferr_t *err)
{
	struct src *s = p->s;

	precopy_policy_init(&p->pol, s->o->precopy_rounds, s->o->precopy_shrink_pct);
	if (xsnprintf(p->base, sizeof(p->base), err, "%s/migrations/pre-%s", s->o->state_dir,
		      s->r->migration_id) < 0 ||
	    xsnprintf(p->from, sizeof(p->from), err, "../pre-%s", s->r->migration_id) < 0)
		return -1;
	if (registry_tenant_dir(s->o->state_dir, s->rec.name, p->work, sizeof(p->work), err) < 0 ||
	    fs_mkdir_p(p->work, 0700, err) < 0)
		return -1;
	if (mkdir(p->base, 0700) < 0) {
		int e = errno;
		p->base[0] = '\0'; /* not ours to remove */
		errno = e;
		return ferr_sys(err, FX_FAIL, "creating %s/migrations/pre-%s", s->o->state_dir,
				s->r->migration_id);
	}
	return 0;
}

/* Every page relayed counts, the rounds' and the final dump's. */
static void totals(struct pre *p, uint64_t t_final)
{
	struct migrate_result *r = p->s->r;

	r->final_round.raw = r->pages_raw;
	r->final_round.payload = r->pages_payload;
	r->final_round.frozen_ms = 0;
	if (p->s->t_postdump > t_final)
		r->final_round.ms = (p->s->t_postdump - t_final) / 1e6;
	for (unsigned i = 0; i < r->n_rounds; i++) {
		r->pages_raw += r->rounds[i].raw;
		r->pages_payload += r->rounds[i].payload;
	}
}

static int pre_copy(struct src *s, ferr_t *err)
{
	struct pre p = {.s = s};
	enum precopy_stop why = PRECOPY_CONTINUE;
	unsigned n = 0;
	uint64_t t_final;
	int r = -1;

	if (s->live) { /* the backend's own pre-copy: one live save */
		snprintf(s->r->precopy_stop, sizeof(s->r->precopy_stop), "backend");
		return mig_mode_stop_copy.run(s, err);
	}
	if (setup(&p, err) < 0)
		goto fail;
	while (why == PRECOPY_CONTINUE) {
		if (round_run(&p, n + 1, err) < 0) {
			ferr_wrap(err, "pre-copy round %u", n + 1);
			goto fail;
		}
		n++;
		why = precopy_next(&p.pol, p.bytes, n);
	}
	snprintf(s->r->precopy_stop, sizeof(s->r->precopy_stop), "%s", precopy_stop_str(why));
	pr_info("pre-copy of %s: final dump after %u round(s) (%s)", s->rec.name, n,
		precopy_stop_str(why));
	if (precopy_parent(p.from, n, p.parent, sizeof(p.parent)) < 0) {
		ferr_set(err, FX_FAIL, "parent path too long");
		goto fail;
	}
	t_final = now_ns();
	if (send_round(s, n + 1, true, err) < 0) {
		ferr_wrap(err, "final dump");
		goto fail;
	}
	s->parent_img = p.parent;
	s->track_mem = true;
	/* from here on exactly stop-copy: freeze, stream, hand over */
	r = mig_mode_stop_copy.run(s, err);
	totals(&p, t_final);
	fs_rm_rf(p.base, NULL);
	return r;
fail:
	/* a pre-dump never stops the tenant for longer than its own freeze:
	 * it runs here; the destination discards what it got */
	msrc_abort(s);
	if (p.base[0])
		fs_rm_rf(p.base, NULL);
	s->r->on_source = ktree_alive(s->rec.init_pid);
	return ferr_wrap(err, "migration of %s to %s failed (%s)", s->rec.name, s->r->dest,
			 s->r->on_source ? "it keeps running here" : "and it is not running here");
}

const struct mig_mode_ops mig_mode_pre_copy = {
    .mode = MIG_PRE_COPY,
    .run = pre_copy,
};
