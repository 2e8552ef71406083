/* Live migration, source side (migrate.h): load the tenant, connect, BEGIN,
 * then the chosen mode (migrate_mode.h) runs the migration. */
#define LOG_PREFIX "migrate"
#include "migrate/migrate.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "migrate/handover.h"
#include "migrate/migrate_mode.h"
#include "migrate/migrate_src.h"
#include "migrate/reconcile.h"
#include "tenant/garp.h"
#include "tenant/isolate.h"
#include "tenant/kind.h"
#include "tenant/lockcheck.h"
#include "migrate/wire_enums.h"
#include "tenant/registry.h"
#include "tenant/net.h"
#include "tenant/pkthold.h"
#include "tenant/uidcheck.h"
#include "transport/chan_tls.h"
#include "transport/session.h"
#include "transport/wire.h"
#include "migrate/migrate_fs.h"
#include "tenant/rootfs.h"

/* ---- the whole thing ---- */

/* The tenant's volumes (kind.h) travel unless the storage is shared. */
static int volumes(struct src *s, Ferry__Wire__MigrateBegin *b, struct tenant_volume *v,
		   Ferry__Wire__MigrateVolume *pv, Ferry__Wire__MigrateVolume **pp, ferr_t *err)
{
	const struct tenant_kind_ops *kind = kind_find(s->rec.kind);
	int n = 0;

	if (s->o->shared_storage || !kind || !kind->volumes)
		return 0;
	if ((n = kind->volumes(&s->rec, v, err)) < 0)
		return ferr_wrap(err,
				 "tenant %s (nothing was frozen; --shared-storage if the "
				 "destination sees its storage)",
				 s->rec.name);
	for (int i = 0; i < n; i++) {
		ferry__wire__migrate_volume__init(&pv[i]);
		pv[i].path = v[i].path;
		pv[i].bytes = v[i].bytes;
		pp[i] = &pv[i];
	}
	b->n_volumes = (size_t)n;
	b->volumes = pp;
	s->copy_volumes = n > 0;
	return 0;
}

static int begin(struct src *s, ferr_t *err)
{
	Ferry__Wire__MigrateBegin b = FERRY__WIRE__MIGRATE_BEGIN__INIT;
	struct tenant_volume vol[TENANT_VOLUMES_MAX];
	Ferry__Wire__MigrateVolume pv[TENANT_VOLUMES_MAX], *pp[TENANT_VOLUMES_MAX];
	struct frame_buf fb = {0};
	int r;

	if (volumes(s, &b, vol, pv, pp, err) < 0)
		return -1;
	b.migration_id = s->r->migration_id;
	b.tenant = s->rec.name;
	b.has_kind = true;
	b.kind = tenant_kind_to_pb(s->rec.kind);
	b.rootfs = s->rec.rootfs[0] ? s->rec.rootfs : NULL;
	b.net_addr = s->rec.net.addr[0] ? s->rec.net.addr : NULL;
	b.host_if = s->rec.net.host_if[0] ? s->rec.net.host_if : NULL;
	b.tenant_if = s->rec.net.tenant_if[0] ? s->rec.net.tenant_if : NULL;
	b.has_mode = true;
	/* a backend's own pre-copy is one stream, as stop-copy's */
	b.mode = mode_to_wire(s->live ? MIG_STOP_COPY : s->r->mode);
	uint8_t mac[6];
	if (s->rec.net.host_if[0] && l2_get_mac(s->rec.net.host_if, mac, NULL) == 0) {
		b.has_host_if_mac = true;
		b.host_if_mac.data = mac;
		b.host_if_mac.len = sizeof(mac);
	}
	b.has_lz4 = true;
	b.lz4 = s->o->compress;
	char agent[256] = "";
	hq_fill_begin(&b, s->o->state_dir, s->o->source_agent, agent, sizeof(agent));
	if (msrc_connect(s, &s->c, err) < 0)
		return ferr_wrap(err, "connecting to %s", s->r->dest);
	b.image_id = s->rec.image[0] ? s->rec.image : NULL;
	b.has_carry_fs = b.carry_fs = mfs_carries(s);
	b.has_copy_rootfs = b.copy_rootfs = !s->rec.image[0] && s->o->copy_rootfs;
	char rid[33];
	if (!s->rec.image[0] && s->rec.rootfs[0] && !s->o->copy_rootfs &&
	    rootfs_identity(s->rec.rootfs, true, rid, NULL) == 0)
		b.rootfs_id = rid;
	b.iso = iso_to_pb(&s->rec.iso);
	b.n_argv = s->rec.argc > 0 ? (size_t)s->rec.argc : 0;
	b.argv = s->rec.argv;
	frame_send_pb(s->c, MIG_REQ_BEGIN, &b.base);
	free(b.iso);
	chan_flush(s->c);
	if (mfs_src_begin(s, err) < 0)
		return -1;
	r = mig_recv(s->c, &fb, MIG_ACCEPT, "ACCEPT", NULL, err);
	frame_buf_free(&fb);
	return r;
}

static int load(struct src *s, ferr_t *err)
{
	reconcile_all(s->o->state_dir, false); /* an earlier, killed migration */
	if (registry_load(s->o->state_dir, s->o->tenant, &s->rec, err) < 0) {
		if (err->code == FX_NOTFOUND)
			return ferr_set(err, FX_NOTFOUND,
					"no tenant named %s here (see `ferry ps`)", s->o->tenant);
		return -1;
	}
	registry_refresh(s->o->state_dir, &s->rec, NULL);
	if (s->rec.state != TS_RUNNING && s->rec.state != TS_FROZEN)
		return ferr_set(err, FX_CONFLICT, "tenant %s is not running (state %s)",
				s->rec.name, tenant_state_str(s->rec.state));
	if (!kind_find(s->rec.kind))
		return ferr_set(err, FX_HOST, "tenant %s is a %s: it cannot be migrated yet",
				s->rec.name, tenant_kind_str(s->rec.kind));
	if (s->rec.net.addr[0] && net_check_movable(s->rec.net.addr, err) < 0)
		return ferr_wrap(err, "tenant %s cannot move its address (nothing was frozen)",
				 s->rec.name);
	if (uid_check_dumpable(s->rec.name, s->rec.init_pid, err) < 0)
		return -1;
	if (!kind_find(s->rec.kind)->ckpt->moves_file_locks)
		return 0;
	return lock_check_movable(s->rec.name, s->rec.init_pid, err);
}

static int prepare(struct src *s, ferr_t *err)
{
	unsigned char rnd[16];
	char base[PATH_MAX];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return ferr_set(err, FX_FAIL, "no random bytes for a migration id");
	for (int i = 0; i < 16; i++)
		snprintf(s->r->migration_id + 2 * i, 3, "%02x", rnd[i]);
	if (xsnprintf(base, sizeof(base), err, "%s/migrations", s->o->state_dir) < 0 ||
	    fs_mkdir_p(base, 0700, err) < 0 ||
	    xsnprintf(s->img, sizeof(s->img), err, "%s/out-%s", base, s->r->migration_id) < 0 ||
	    xsnprintf(s->marker, sizeof(s->marker), err, "%s/%s.committed", base,
		      s->r->migration_id) < 0)
		return -1;
	s->tls = tls_ctx_new(s->o->tls_dir, s->o->name, false, err);
	return s->tls ? 0 : -1;
}

/* The tenant stops being available at the freeze: the backend's FROZEN
 * event comes right after it, minus the backend's own freezing time. It is
 * available again when the destination resumed it: COMMIT sent + the
 * destination's COMMIT -> running time. */
static void msrc_timings(struct src *s)
{
	struct migrate_result *r = s->r;
	double frozen_at; /* ms since t0 */

	frozen_at = s->t_lock ? (s->t_lock - s->t0) / 1e6 - r->freeze_ms : 0;
	if (s->t_postdump)
		r->dump_ms = (s->t_postdump - s->t0) / 1e6 - frozen_at;
	r->transfer_ms = s->t_files > s->t_postdump ? (s->t_files - s->t_postdump) / 1e6 : 0;
	r->handover_ms = s->t_commit > s->t_restored ? (s->t_commit - s->t_restored) / 1e6 : 0;
	if (r->moved)
		r->downtime_ms = (s->t_commit - s->t0) / 1e6 - frozen_at + r->resume_ms;
	/* post-copy: the memory follows in the background after the resume */
	if (r->moved && s->t_pages_done > s->t_commit)
		r->pages_done_ms = (s->t_pages_done - s->t_commit) / 1e6 - r->resume_ms;
	r->wire_bytes = s->c ? chan_wire_rx(s->c) + chan_wire_tx(s->c) : 0;
	if (s->relay_chan && s->relay_chan != s->c) /* post-copy: the page session */
		r->wire_bytes += chan_wire_rx(s->relay_chan) + chan_wire_tx(s->relay_chan);
	r->total_ms = ms_since(s->t0);
}

static void fs_result(struct src *s)
{
	struct migrate_result *r = s->r;
	struct mfs_stats f;

	mfs_src_end(s, &f);
	r->fs_carried = f.carried;
	r->fs_image_sent = f.image_sent;
	r->fs_raw = f.first_raw;
	r->fs_wire = f.first_wire;
	r->fs_delta_raw = f.delta_raw;
	r->fs_delta_wire = f.delta_wire;
	r->fs_delta_entries = f.delta_entries;
	r->fs_deleted = f.deleted;
	r->fs_first_ms = f.first_ms;
	r->fs_delta_ms = f.delta_ms;
}

int migrate_tenant(const struct migrate_opts *o, struct migrate_result *r, ferr_t *err)
{
	struct src s = {.o = o, .r = r, .sv = {-1, -1}};
	int ret = -1, inflight = -1;

	memset(r, 0, sizeof(*r));
	r->replayed = -1;
	s.t0 = now_ns();
	snprintf(r->tenant, sizeof(r->tenant), "%s", o->tenant);
	snprintf(r->dest, sizeof(r->dest), "%s:%u", o->host, o->port);
	if (!tenant_name_valid(o->tenant))
		return ferr_set(err, FX_USAGE, "invalid tenant name '%s'", o->tenant);
	if (load(&s, err) < 0) {
		tenant_rec_free(&s.rec); /* a refusal after the record was read */
		return -1;
	}
	r->on_source = true;
	if (mig_mode_choose(o, kind_find(s.rec.kind)->ckpt, &r->mode, err) < 0)
		goto out;
	s.live = r->mode == MIG_PRE_COPY && mig_mode_backend_live(kind_find(s.rec.kind)->ckpt);
	if (prepare(&s, err) < 0)
		goto out;
	/* locked while we live: recovery knows when we are gone (reconcile.h) */
	inflight = inflight_begin(o->state_dir, r->migration_id, &s.rec, r->dest,
				  mig_mode_str(r->mode), err);
	if (inflight < 0)
		goto out;
	msrc_progress(&s, "connect");
	if (begin(&s, err) < 0) {
		ferr_wrap(err, "%s cannot take tenant %s (it keeps running here)", r->dest,
			  s.rec.name);
		goto out;
	}
	ret = mig_mode_ops(r->mode)->run(&s, err);
	msrc_timings(&s);
	msrc_progress(&s, ret == 0 ? "done" : "failed");
out:
	fs_result(&s);
	inflight_end(o->state_dir, r->migration_id, inflight, !r->moved && s.restore_sent);
	if (s.relay_chan && s.relay_chan != s.c)
		chan_close(s.relay_chan);
	pkthold_free(s.hold); /* a migration that failed: nothing to replay */
	chan_close(s.c);
	if (s.tls)
		tls_ctx_free(s.tls);
	tenant_rec_free(&s.rec);
	r->total_ms = ms_since(s.t0);
	return ret;
}
