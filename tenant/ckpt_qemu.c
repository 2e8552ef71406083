/* The QEMU checkpoint backend (ckpt.h, ckpt_qemu.h): a VM's state is QEMU's
 * migration stream. A save stops the VM (CKPT_EV_FROZEN), streams it with
 * QMP `migrate` to an fd ferry owns (the image file DIR/vm.state, or the
 * caller's page-stream socket) and writes DIR/vm.json (QEMU version,
 * machine type, memory, CPU model, disks, QEMU's figures); its hold point
 * (CKPT_EV_SAVED) is answered by `quit` (commit) or `cont` (abort). A load
 * starts QEMU with `-incoming defer`, feeds it the stream (QMP
 * `migrate-incoming` on an fd) and holds it paused (CKPT_EV_LOADED):
 * `cont` commits, `quit` aborts. Pre-copy is a live full save (QEMU's own
 * passes), not rounds. Lazy saves and loads are QEMU's post-copy: the
 * stream goes both ways (QEMU's return path), the hold is QEMU's pause
 * before the switchover and the commit `migrate-continue`, after which
 * the source never runs the VM again (docs/vm.md, "post-copy"). */
#define LOG_PREFIX "qemu"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tenant/ckpt.h"
#include "tenant/ckpt_qemu.h"
#include "tenant/kind_tree.h"
#include "tenant/vmprobe.h"

#define RESUME_TRIES	300	     /* 100 ms apart */
#define LIVE_MAX_PASSES 40	     /* then the stop is forced */
#define MIG_BANDWIDTH	(10LL << 30) /* bytes/s: ferry's relay sets the pace */

static int ev(ckpt_event_fn fn, void *arg, enum ckpt_event e, pid_t pid, ferr_t *err)
{
	return fn ? fn(e, pid, arg, err) : 0;
}

static json_int_t jint(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);
	return json_integer_value(b ? json_object_get(v, b) : v);
}

/* A live save paused before the switchover: the VM stopped (FROZEN), then
 * QEMU sends what is left. */
struct switchover {
	const struct ckpt_save_opts *o;
	pid_t pid;
	bool *stopped;
	bool forced;
};

/* The guest dirties its memory faster than the stream goes, even
 * throttled: stop planning a short stop, finish (its downtime then is what
 * the last pass takes). */
static void force_switchover(struct qmp *q, struct switchover *sw)
{
	sw->forced = true;
	pr_warn("VM: no convergence after %d passes: finishing with a longer stop",
		LIVE_MAX_PASSES);
	qmp_exec(q, "migrate-set-parameters",
		 json_pack("{s:I}", "downtime-limit", (json_int_t)100000), -1, 5000, NULL, NULL);
}

static int at_switchover(struct qmp *q, struct switchover *sw, ferr_t *err)
{
	const char *f = getenv("FERRY_FAULT"); /* testing hook (vm_faults.sh) */

	if (f && !strcmp(f, "src-crash-at-switchover")) {
		pr_warn("FERRY_FAULT=%s: killing this process", f);
		kill(getpid(), SIGKILL);
	}
	*sw->stopped = true;
	if (ev(sw->o->on_event, sw->o->arg, CKPT_EV_FROZEN, sw->pid, err) < 0)
		return -1;
	return qmp_exec(q, "migrate-continue", json_pack("{s:s}", "state", "pre-switchover"), -1,
			10000, NULL, err);
}

/* A stopped save: the VM stopped before the stream (FROZEN). */
static int at_switchover_stopped(const struct ckpt_save_opts *o, pid_t pid, bool *stopped,
				 ferr_t *err)
{
	*stopped = true;
	return ev(o->on_event, o->arg, CKPT_EV_FROZEN, pid, err);
}

/* Poll query-migrate until the migration ends; *info its last answer. sw:
 * a live save's switchover (NULL otherwise). */
static int wait_migration(struct qmp *q, pid_t pid, struct switchover *sw, json_t **info,
			  ferr_t *err)
{
	for (;;) {
		json_t *r = NULL;
		if (qmp_exec(q, "query-migrate", NULL, -1, 10000, &r, err) < 0)
			return -1;
		const char *st = json_string_value(json_object_get(r, "status"));
		if (st && !strcmp(st, "completed")) {
			*info = r;
			return 0;
		}
		if (st && (!strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
			const char *d = json_string_value(json_object_get(r, "error-desc"));
			ferr_set(err, FX_FAIL, "QEMU's migration %s%s%s", st, d ? ": " : "",
				 d ? d : "");
			json_decref(r);
			return -1;
		}
		bool pre = st && sw && !strcmp(st, "pre-switchover") && !*sw->stopped;
		if (sw && !sw->forced && jint(r, "ram", "dirty-sync-count") > LIVE_MAX_PASSES)
			force_switchover(q, sw);
		json_decref(r);
		if (pre && at_switchover(q, sw, err) < 0)
			return -1;
		if (!ktree_alive(pid))
			return ferr_set(err, FX_FAIL, "QEMU (pid %d) exited", pid);
		struct timespec ts = {0, 2 * 1000000}; /* its end is in the downtime */
		nanosleep(&ts, NULL);
	}
}

/* Capabilities and parameters of a save: a live one pauses before the
 * switchover (ferry's hold), converges by throttling a guest that dirties
 * faster than the stream goes, plans its stop within max_downtime_ms.
 * Set every time: they stay in QEMU from one save to the next. */
static int set_mode(struct qmp *q, const struct ckpt_save_opts *o, ferr_t *err)
{
	bool lazy = o->mode == CKPT_SAVE_LAZY;
	json_t *caps =
	    json_pack("{s:[{s:s, s:b}, {s:s, s:b}, {s:s, s:b}, {s:s, s:b}]}", "capabilities",
		      "capability", "pause-before-switchover", "state", o->live || lazy,
		      "capability", "auto-converge", "state", o->live, "capability", "block",
		      "state", o->copy_volumes, "capability", "postcopy-ram", "state", lazy);
	json_t *par = json_pack("{s:I}", "max-bandwidth", (json_int_t)MIG_BANDWIDTH);

	if (par && o->max_downtime_ms > 0)
		json_object_set_new(par, "downtime-limit", json_integer(o->max_downtime_ms));
	if (qmp_exec(q, "migrate-set-capabilities", caps, -1, 5000, NULL, err) < 0) {
		json_decref(par);
		return -1;
	}
	return qmp_exec(q, "migrate-set-parameters", par, -1, 5000, NULL, err);
}

/* Hand fd to QEMU under QEMU_MIG_FD. */
static int pass_fd(struct qmp *q, int fd, ferr_t *err)
{
	return qmp_exec(q, "getfd", json_pack("{s:s}", "fdname", QEMU_MIG_FD), fd, 5000, NULL, err);
}

/* The machine's facts, from its configuration (ckpt_qemu.h): machine type,
 * CPU model, memory, CPUs, disks, kernel, and all of it as "config". */
static json_t *config_info(const struct ckpt_target *t)
{
	json_t *o = json_object(), *args = json_array(), *disks = json_array();
	static const char *const keys[][2] = {{"-machine", "machine"}, {"-cpu", "cpu"},
					      {"-m", "memory"},	       {"-smp", "cpus"},
					      {"-kernel", "kernel"},   {"-initrd", "initrd"}};

	for (int i = 0; i < t->argc; i++) {
		const char *a = t->argv[i], *v = i + 1 < t->argc ? t->argv[i + 1] : NULL;
		json_array_append_new(args, json_string(a));
		for (size_t k = 0; v && k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!strcmp(a, keys[k][0]))
				json_object_set_new(o, keys[k][1], json_string(v));
		if (v && !strcmp(a, "-drive") && !strncmp(v, "file=", 5))
			json_array_append_new(disks, json_stringn(v + 5, strcspn(v + 5, ",")));
	}
	json_object_set_new(o, "config", args);
	json_object_set_new(o, "disks", disks);
	return o;
}

/* What a load elsewhere must check, and QEMU's figures of the save. */
static int write_info(struct qmp *q, const char *dir, const struct ckpt_target *t, json_t *mig,
		      ferr_t *err)
{
	json_t *ver = NULL, *o;
	char path[PATH_MAX], qv[32] = "";

	if (qmp_exec(q, "query-version", NULL, -1, 5000, &ver, err) < 0)
		return -1;
	json_t *v = json_object_get(ver, "qemu");
	snprintf(qv, sizeof(qv), "%lld.%lld.%lld", jint(v, "major", NULL), jint(v, "minor", NULL),
		 jint(v, "micro", NULL));
	json_decref(ver);
	o = config_info(t);
	json_t *x = json_pack(
	    "{s:s, s:s, s:I, s:I, s:I, s:I}", "kind", "vm", "qemu_version", qv, "downtime_ms",
	    jint(mig, "downtime", NULL), "total_ms", jint(mig, "total-time", NULL), "transferred",
	    jint(mig, "ram", "transferred"), "rounds", jint(mig, "ram", "dirty-sync-count"));
	json_object_update(o, x);
	json_decref(x);
	char *s = o ? json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (!s)
		return ferr_set(err, FX_FAIL, "out of memory");
	int r = xsnprintf_path(path, sizeof(path), dir, QEMU_INFO_FILE) < 0
		    ? ferr_set(err, FX_FAIL, "path too long")
		    : fs_write_atomic(path, s, strlen(s), 0600, err);
	free(s);
	return r;
}

/* QEMU's figures of a completed save (query-migrate) into res. */
static void put_stats(json_t *mig, bool live, const char *name, struct ckpt_save_result *res)
{
	res->has_stats = true;
	res->frozen_ms = (double)jint(mig, live ? "downtime" : "total-time", NULL);
	res->mem_write_ms = (double)jint(mig, "total-time", NULL);
	res->pages = (uint64_t)jint(mig, "ram", "normal");
	res->backend = (struct ckpt_backend_stats){
	    .has = true,
	    .downtime_ms = (double)jint(mig, "downtime", NULL),
	    .total_ms = (double)jint(mig, "total-time", NULL),
	    .transferred = (uint64_t)jint(mig, "ram", "transferred"),
	    .passes = (uint64_t)jint(mig, "ram", "dirty-sync-count"),
	    .dirty_rate = (uint64_t)jint(mig, "ram", "dirty-pages-rate"),
	    .postcopy_requests = (uint64_t)jint(mig, "ram", "postcopy-requests")};
	pr_info("VM %s saved: %lld ms, %lld ms stopped, %lld bytes, %lld passes, dirty rate %lld "
		"pages/s, %lld post-copy page requests",
		name, jint(mig, "total-time", NULL), jint(mig, "downtime", NULL),
		jint(mig, "ram", "transferred"), jint(mig, "ram", "dirty-sync-count"),
		jint(mig, "ram", "dirty-pages-rate"), jint(mig, "ram", "postcopy-requests"));
}

/* Stop, stream, describe. *stopped: the VM was stopped by us. */
static int save_stream(struct qmp *q, const struct ckpt_target *t, const struct ckpt_save_opts *o,
		       struct ckpt_save_result *res, bool *stopped, ferr_t *err)
{
	struct switchover sw = {.o = o, .pid = t->pid, .stopped = stopped};
	char path[PATH_MAX];
	json_t *mig = NULL;
	int fd = o->stream_fd;

	if (set_mode(q, o, err) < 0)
		return -1;
	if (!o->live && (qmp_exec(q, "stop", NULL, -1, 10000, NULL, err) < 0 ||
			 at_switchover_stopped(o, t->pid, stopped, err) < 0))
		return -1;
	if (fd < 0) {
		if (xsnprintf_path(path, sizeof(path), o->dir, QEMU_STATE_FILE) < 0)
			return ferr_set(err, FX_FAIL, "path too long: %s", o->dir);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return ferr_sys(err, FX_FAIL, "%s", path);
	}
	int r = pass_fd(q, fd, err);
	if (fd != o->stream_fd)
		close(fd);
	if (r < 0 ||
	    qmp_exec(q, "migrate", json_pack("{s:s}", "uri", "fd:" QEMU_MIG_FD), -1, 10000, NULL,
		     err) < 0 ||
	    wait_migration(q, t->pid, o->live ? &sw : NULL, &mig, err) < 0)
		return -1;
	*stopped = true; /* completed: QEMU keeps it paused */
	put_stats(mig, o->live, t->name, res);
	r = write_info(q, o->dir, t, mig, err);
	json_decref(mig);
	return r;
}

/* ---- post-copy (lazy saves and loads) ---- */

#define POSTCOPY_WAIT_MS 60000 /* the destination: from the commit to the device state */

/* A status of query-migrate; *info (may be NULL) the answer. Fails on
 * failed, cancelled, or a QEMU that is gone. */
static int mig_query(struct qmp *q, pid_t pid, char *st, size_t len, json_t **info, ferr_t *err)
{
	json_t *r = NULL;

	if (qmp_exec(q, "query-migrate", NULL, -1, 10000, &r, err) < 0)
		return -1;
	const char *v = json_string_value(json_object_get(r, "status"));
	snprintf(st, len, "%s", v ? v : "");
	if (!strcmp(st, "failed") || !strcmp(st, "cancelled")) {
		const char *d = json_string_value(json_object_get(r, "error-desc"));
		ferr_set(err, FX_FAIL, "QEMU's migration %s%s%s", st, d ? ": " : "", d ? d : "");
		json_decref(r);
		return -1;
	}
	if (info)
		*info = r;
	else
		json_decref(r);
	if (!ktree_alive(pid))
		return ferr_set(err, FX_FAIL, "QEMU (pid %d) exited", pid);
	return 0;
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* One pre-copy pass while the VM runs, then post-copy: QEMU stops the VM
 * and pauses before its switchover (pre-switchover); *info its figures. */
static int to_postcopy(struct qmp *q, pid_t pid, json_t **info, ferr_t *err)
{
	bool asked = false;
	char st[32];

	for (;;) {
		json_t *r = NULL;
		if (mig_query(q, pid, st, sizeof(st), &r, err) < 0)
			return -1;
		if (!strcmp(st, "pre-switchover")) {
			*info = r;
			return 0;
		}
		bool pass = jint(r, "ram", "dirty-sync-count") >= 2;
		json_decref(r);
		if (!asked && pass) {
			if (qmp_exec(q, "migrate-start-postcopy", NULL, -1, 5000, NULL, err) < 0)
				return -1;
			asked = true;
		}
		nap_ms(5);
	}
}

/* After the handover: QEMU sends the pages the destination did not get
 * yet (and those it asks for) until it completed. A broken stream leaves
 * both QEMUs in postcopy-paused: the VM's memory is split between them. */
static int serve_pages(struct qmp *q, pid_t pid, json_t **info, ferr_t *err)
{
	char st[32];

	for (;;) {
		json_t *r = NULL;
		if (mig_query(q, pid, st, sizeof(st), &r, err) < 0)
			return -1;
		if (!strcmp(st, "completed")) {
			*info = r;
			return 0;
		}
		json_decref(r);
		if (!strcmp(st, "postcopy-paused") || !strcmp(st, "postcopy-recover"))
			return ferr_set(err, FX_PEER, "the post-copy stream broke (QEMU: %s)", st);
		nap_ms(10);
	}
}

/* The handover inside a lazy save (ckpt.h): FROZEN at QEMU's pause before
 * the switchover, SAVED (vm.json written), SERVING: the decision. Commit:
 * `migrate-continue` starts the post-copy, from which on this QEMU must not
 * run the VM again (*handed), then COMMITTED. */
static int lazy_handover(struct qmp *q, const struct ckpt_target *t, const struct ckpt_save_opts *o,
			 bool *handed, ferr_t *err)
{
	if (ev(o->on_event, o->arg, CKPT_EV_SAVED, t->pid, err) < 0 ||
	    ev(o->on_event, o->arg, CKPT_EV_SERVING, t->pid, err) < 0)
		return -1;
	if (qmp_exec(q, "migrate-continue", json_pack("{s:s}", "state", "pre-switchover"), -1,
		     10000, NULL, err) < 0) {
		ferr_wrap(err, "starting QEMU's post-copy");
		ferr_t e = *err;
		ev(o->on_event, o->arg, CKPT_EV_ABORTED, t->pid, &e);
		return -1;
	}
	*handed = true;
	ferr_t e = {0};
	ev(o->on_event, o->arg, CKPT_EV_COMMITTED, t->pid, &e);
	return 0;
}

static int save_lazy(struct qmp *q, const struct ckpt_target *t, const struct ckpt_save_opts *o,
		     struct ckpt_save_result *res, bool *stopped, bool *handed, ferr_t *err)
{
	json_t *mig = NULL;

	if (o->copy_volumes)
		return ferr_set(err, FX_HOST,
				"VM %s: post-copy cannot copy its disks (QEMU's block migration is "
				"pre-copy only): --shared-storage, or --mode pre-copy",
				t->name);
	if (o->stream_fd < 0)
		return ferr_set(err, FX_FAIL, "a VM's post-copy needs a stream");
	if (set_mode(q, o, err) < 0 || pass_fd(q, o->stream_fd, err) < 0 ||
	    qmp_exec(q, "migrate", json_pack("{s:s}", "uri", "fd:" QEMU_MIG_FD), -1, 10000, NULL,
		     err) < 0 ||
	    to_postcopy(q, t->pid, &mig, err) < 0)
		return -1;
	*stopped = true;
	res->t_frozen = now_ns();
	int r = ev(o->on_event, o->arg, CKPT_EV_FROZEN, t->pid, err);
	if (r == 0)
		r = write_info(q, o->dir, t, mig, err);
	json_decref(mig);
	if (r < 0 || lazy_handover(q, t, o, handed, err) < 0)
		return -1;
	if (serve_pages(q, t->pid, &mig, err) < 0) {
		res->lost = true;
		return ferr_wrap(err,
				 "VM %s is lost on both hosts: its post-copy broke after the "
				 "handover (ferry does not drive QEMU's postcopy-recover)",
				 t->name);
	}
	put_stats(mig, true, t->name, res);
	json_decref(mig);
	return 0;
}

/* Post-copy's incoming QEMU before the hold: it reads the stream (status
 * active: the source's pre-copy pass arrived, its post-copy advice was
 * taken). */
static int lazy_loading(struct qmp *q, pid_t pid, ferr_t *err)
{
	char st[32];

	if (mig_query(q, pid, st, sizeof(st), NULL, err) < 0)
		return -1;
	if (strcmp(st, "active"))
		return ferr_set(err, FX_FAIL, "the incoming QEMU is %s, not loading",
				st[0] ? st : "idle");
	return 0;
}

/* After the commit: the source started the post-copy; QEMU loads the
 * devices and, started with -S, stays paused (then `cont`). */
static int lazy_devices(struct qmp *q, pid_t pid, ferr_t *err)
{
	char st[32], rs[32];
	uint64_t t0 = now_ns();

	for (;;) {
		if (mig_query(q, pid, st, sizeof(st), NULL, err) < 0 ||
		    qemu_status(q, rs, sizeof(rs), err) < 0)
			return -1;
		if (!strcmp(rs, "paused") || !strcmp(rs, "running"))
			return 0;
		if (!strcmp(st, "postcopy-paused"))
			return ferr_set(err, FX_PEER,
					"the post-copy stream broke before the devices came");
		if (ms_since(t0) > POSTCOPY_WAIT_MS)
			return ferr_set(err, FX_PEER,
					"no device state from the source in %d s (QEMU: %s, %s)",
					POSTCOPY_WAIT_MS / 1000, st, rs);
		nap_ms(2);
	}
}

/* Resume the source after an abort. The destination's QEMU holds the
 * disks' locks once it loaded the stream: until it is gone (discarded by its
 * agent, or by its guard when that agent died) `cont` fails; try again for
 * a while. */
static int resume(struct qmp *q, const char *name, ferr_t *err)
{
	ferr_t e = {0};

	for (int i = 0; i < RESUME_TRIES; i++) {
		ferr_clear(&e);
		if (qmp_exec(q, "cont", NULL, -1, 5000, NULL, &e) == 0)
			return 0;
		if (!strstr(e.msg, "lock"))
			break;
		struct timespec ts = {0, 100 * 1000000};
		nanosleep(&ts, NULL);
	}
	pr_warn("VM %s could not resume: %s", name, e.msg);
	if (err)
		*err = e;
	return -1;
}

static bool migrating(const char *st)
{
	static const char *const busy[] = {"setup",  "active",	   "pre-switchover",
					   "device", "cancelling", "wait-unplug"};

	for (size_t i = 0; st && i < sizeof(busy) / sizeof(busy[0]); i++)
		if (!strcmp(st, busy[i]))
			return true;
	return false;
}

/* Cancel the migration QEMU may still have (paused before the switchover,
 * or sending into a socket nobody reads), wait until it ended, then run
 * the VM if it is not running. */
static int cancel_resume(struct qmp *q, const char *name, ferr_t *err)
{
	char st[32] = "";
	int r = 0;

	for (int i = 0; r == 0 && i < 200; i++) {
		json_t *m = NULL;
		if ((r = qmp_exec(q, "query-migrate", NULL, -1, 5000, &m, err)) < 0)
			break;
		const char *ms = json_string_value(json_object_get(m, "status"));
		bool busy = migrating(ms);
		if (busy && i == 0)
			pr_info("VM %s: cancelling its migration (%s)", name, ms);
		json_decref(m);
		if (!busy)
			break;
		if (i == 0)
			r = qmp_exec(q, "migrate_cancel", NULL, -1, 5000, NULL, err);
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	}
	if (r == 0)
		r = qemu_status(q, st, sizeof(st), err);
	if (r == 0 && strcmp(st, "running")) {
		pr_info("VM %s was left %s: resuming it", name, st);
		r = resume(q, name, err);
	}
	return r;
}

/* A lazy save (the capability postcopy-ram, which only lazy saves set) got
 * its `migrate-continue`, which is given after the commit only: QEMU's
 * post-copy started (or broke, or recovers), or it went on to its end
 * (device, completed). The destination may run the VM: this QEMU must
 * never run it again. */
static bool in_postcopy(struct qmp *q)
{
	static const char *const after[] = {"postcopy-active", "postcopy-paused",
					    "postcopy-recover", "device", "completed"};
	json_t *m = NULL, *caps = NULL;
	bool pc = false, lazy = false;

	if (qmp_exec(q, "query-migrate-capabilities", NULL, -1, 5000, &caps, NULL) < 0)
		return false;
	for (size_t i = 0; i < json_array_size(caps); i++) {
		json_t *c = json_array_get(caps, i);
		const char *n = json_string_value(json_object_get(c, "capability"));
		if (n && !strcmp(n, "postcopy-ram"))
			lazy = json_is_true(json_object_get(c, "state"));
	}
	json_decref(caps);
	if (!lazy || qmp_exec(q, "query-migrate", NULL, -1, 5000, &m, NULL) < 0)
		return false;
	const char *st = json_string_value(json_object_get(m, "status"));
	for (size_t i = 0; st && i < sizeof(after) / sizeof(after[0]); i++)
		pc = pc || !strcmp(st, after[i]);
	json_decref(m);
	return pc;
}

/* A `ferry migrate` died before its decision (ckpt.h resume). */
static int qemu_resume_after(const struct ckpt_env *env, const struct ckpt_target *t, ferr_t *err)
{
	struct qmp *q = NULL;
	int r;

	if (qemu_qmp(env->work_dir, &q, err) < 0)
		return ferr_wrap(err, "VM %s's monitor", t->name);
	if (in_postcopy(q))
		r = ferr_set(err, FX_FAIL, "VM %s: its post-copy started, it must not run here",
			     t->name);
	else
		r = cancel_resume(q, t->name, err);
	qmp_close(q);
	return r;
}

/* ckpt.h handed: the VM's post-copy started. */
static bool qemu_handed(const struct ckpt_env *env, const struct ckpt_target *t)
{
	struct qmp *q = NULL;

	(void)t;
	if (qemu_qmp(env->work_dir, &q, NULL) < 0)
		return false;
	bool pc = in_postcopy(q);
	qmp_close(q);
	return pc;
}

/* Commit of a streamed save: the destination holds the VM now and this
 * QEMU, paused after a completed migration, has given up its disks. It is
 * killed outright, without waiting for it to be gone (its memory's
 * teardown took a 10 ms poll or more of the downtime): a process with
 * SIGKILL pending never runs its guest again, and the decision (commit)
 * is written already, so recovery (reconcile.c) cannot turn it into an
 * abort. */
static void end_now(struct qmp *q, pid_t pid)
{
	(void)q;
	if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
		pr_warn("QEMU (pid %d): %s", pid, strerror(errno));
}

static int qemu_save(const struct ckpt_env *env, const struct ckpt_target *t,
		     const struct ckpt_save_opts *o, struct ckpt_save_result *res, ferr_t *err)
{
	struct qmp *q = NULL;
	bool stopped = false;
	uint64_t t0 = now_ns();

	memset(res, 0, sizeof(*res));
	if (o->mode == CKPT_SAVE_ROUND)
		return ferr_set(err, FX_HOST, "the QEMU backend has no pre-copy rounds");
	if (qemu_qmp(env->work_dir, &q, err) < 0)
		return ferr_wrap(err, "VM monitor");
	if (o->mode == CKPT_SAVE_LAZY) {
		bool handed = false;
		int r = save_lazy(q, t, o, res, &stopped, &handed, err);
		res->ms = ms_since(t0);
		if (r == 0 || handed) /* after the handover: never again here */
			end_now(q, t->pid);
		else if (stopped)
			cancel_resume(q, t->name, NULL);
		qmp_close(q);
		return r;
	}
	int r = save_stream(q, t, o, res, &stopped, err);
	res->ms = ms_since(t0);
	if (r == 0 && o->on_event)
		r = o->on_event(CKPT_EV_SAVED, t->pid, o->arg, err);
	if (r == 0 && o->leave_running)
		r = 1; /* a save that leaves it running (a snapshot): resume */
	if (r == 0 && o->stream_fd >= 0) {
		end_now(q, t->pid);
	} else if (r == 0) {
		qemu_end(q, t->pid, 10000);
	} else if (stopped) {
		resume(q, t->name, NULL);
	}
	qmp_close(q);
	return r < 0 ? -1 : 0;
}

/* The host's QEMU must be able to take the stream: not older than the
 * source's, knowing its machine type. */
static int check_info(const char *dir, ferr_t *err)
{
	char path[PATH_MAX], ver[32], mach[64], want[64] = "", qemu[PATH_MAX];
	json_error_t je;
	json_t *o;

	if (xsnprintf_path(path, sizeof(path), dir, QEMU_INFO_FILE) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s", dir);
	if (!(o = json_load_file(path, 0, &je)))
		return ferr_set(err, FX_INTEGRITY, "%s: %s", path, je.text);
	const char *sv = json_string_value(json_object_get(o, "qemu_version"));
	json_t *cfg = json_object_get(o, "config");
	for (size_t i = 0; i + 1 < json_array_size(cfg); i++)
		if (!strcmp(json_string_value(json_array_get(cfg, i)) ?: "", "-machine"))
			snprintf(want, sizeof(want), "%s",
				 json_string_value(json_array_get(cfg, i + 1)) ?: "");
	int r = 0;
	if (vm_qemu_locate(qemu, sizeof(qemu), err) < 0 ||
	    vm_qemu_version(qemu, ver, sizeof(ver), err) < 0)
		r = -1;
	else if (sv && vm_version_cmp(ver, sv) < 0)
		r = ferr_set(err, FX_HOST,
			     "this host's QEMU %s is older than the source's %s: it cannot "
			     "load this VM",
			     ver, sv);
	else if (want[0] && qemu_machine(qemu, mach, sizeof(mach), NULL) == 0 &&
		 vm_version_cmp(mach + strcspn(mach, "0123456789"),
				want + strcspn(want, "0123456789")) < 0)
		r = ferr_set(err, FX_HOST,
			     "the VM's machine type %s is newer than this host's QEMU (%s)", want,
			     mach);
	json_decref(o);
	return r;
}

/* Feed the stream in dir to the incoming QEMU (unless fed: it has it
 * already) and wait until it loaded. */
static int feed(struct qmp *q, const char *dir, pid_t pid, bool fed, ferr_t *err)
{
	char path[PATH_MAX];
	json_t *mig = NULL;
	int fd;

	if (!fed) {
		if (xsnprintf_path(path, sizeof(path), dir, QEMU_STATE_FILE) < 0)
			return ferr_set(err, FX_FAIL, "path too long: %s", dir);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return ferr_sys(err, FX_INTEGRITY, "%s", path);
		int r = pass_fd(q, fd, err);
		close(fd);
		if (r < 0 ||
		    qmp_exec(q, "migrate-incoming", json_pack("{s:s}", "uri", "fd:" QEMU_MIG_FD),
			     -1, 10000, NULL, err) < 0)
			return -1;
	}
	if (wait_migration(q, pid, NULL, &mig, err) < 0)
		return -1;
	json_decref(mig);
	return 0;
}

/* QEMU for the load: the one prepared at the migration's BEGIN (it may
 * have loaded the stream by now), or a new one. */
static int incoming(const struct ckpt_env *env, const struct ckpt_target *t,
		    const struct ckpt_load_opts *o, struct qemu_guard *g, pid_t *pid,
		    struct qmp **q, bool *fed, ferr_t *err)
{
	*fed = false;
	if (o->prepared)
		return qemu_prepared_take(o->prepared, o->lazy, pid, q, g, fed, err) < 0
			   ? ferr_wrap(err, "VM %s", t->name)
			   : 0;
	return qemu_launch(env->work_dir, t->name, t->argc, t->argv, t->net, g, pid, q, err);
}

static int qemu_load(const struct ckpt_env *env, const struct ckpt_target *t,
		     const struct ckpt_load_opts *o, struct ckpt_load_result *res, ferr_t *err)
{
	struct qemu_guard g;
	struct qmp *q = NULL;
	uint64_t t0 = now_ns();
	pid_t pid = 0;

	memset(res, 0, sizeof(*res));
	if (o->lazy && !o->prepared)
		return ferr_set(err, FX_FAIL,
				"VM %s: a post-copy load needs the QEMU its migration started",
				t->name);
	if (check_info(o->dir, err) < 0)
		return -1;
	bool fed;
	if (incoming(env, t, o, &g, &pid, &q, &fed, err) < 0)
		return -1;
	/* post-copy: QEMU serves itself its memory as its pager does (ckpt.h):
	 * the caller kills it when the stream fails */
	int r = o->lazy ? ev(o->on_event, o->arg, CKPT_EV_PAGER, pid, err) : 0;
	if (r == 0)
		r = ev(o->on_event, o->arg, CKPT_EV_TASK, pid, err);
	if (r == 0)
		r = o->lazy ? lazy_loading(q, pid, err) : feed(q, o->dir, pid, fed, err);
	if (r == 0)
		r = ev(o->on_event, o->arg, CKPT_EV_LOADED, pid, err);
	if (r == 0 && o->lazy)
		r = lazy_devices(q, pid, err);
	if (r == 0)
		r = qmp_exec(q, "cont", NULL, -1, 10000, NULL, err);
	qemu_guard_release(&g, r == 0);
	if (r < 0) {
		qemu_end(q, pid, 3000);
		qmp_close(q);
		return ferr_wrap(err, "VM %s", t->name);
	}
	qmp_close(q);
	res->pid = pid;
	res->load_ms = ms_since(t0);
	return ev(o->on_event, o->arg, CKPT_EV_RUNNING, pid, err);
}

/* Pre-copy is QEMU's own (live saves: its iterative passes while the VM
 * runs); post-copy is QEMU's (lazy saves and loads) where userfaultfd works
 * (the destination checks its own when its QEMU starts). */
static int qemu_probe(const struct ckpt_env *env, struct ckpt_caps *caps, ferr_t *err)
{
	(void)env;
	bool lazy = caps->lazy;

	caps->rounds = false;
	caps->lazy = lazy && qemu_uffd_ok();
	if (lazy && !caps->lazy)
		return ferr_set(err, FX_HOST,
				"VM tenants: post-copy needs userfaultfd, which this host does not "
				"offer: use --mode pre-copy, stop-copy or auto");
	return 0;
}

static int qemu_fixup(const char *dir, ferr_t *err)
{
	(void)dir;
	(void)err;
	return 0;
}

static int qemu_locate(char *out, size_t len, ferr_t *err)
{
	return vm_qemu_locate(out, len, err);
}

const struct ckpt_ops ckpt_qemu = {
    .name = "qemu",
    .load_follows_stream = true,
    .locate = qemu_locate,
    .save = qemu_save,
    .load = qemu_load,
    .probe = qemu_probe,
    .fixup = qemu_fixup,
    .prepare_load = qemu_prepare,
    .prepared_free = qemu_prepared_free,
    .sink_open = qemu_sink_open,
    .sink_close = qemu_sink_close,
    .resume = qemu_resume_after,
    .handed = qemu_handed,
};
