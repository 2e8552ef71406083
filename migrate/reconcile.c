/* Recovery of migrations whose owner died (reconcile.h). */
#define LOG_PREFIX "reconcile"
#include "migrate/reconcile.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "tenant/kind.h"
#include "tenant/net.h"
#include "lib/util.h"

#define INFLIGHT_MAGIC	"ferry-migration 1"
#define DECISION_KEEP_S (24 * 3600)

const char *mig_verdict_str(enum mig_verdict v)
{
	switch (v) {
	case MV_COMMIT:
		return "commit";
	case MV_ABORT:
		return "abort";
	case MV_PENDING:
		return "pending";
	default:
		return "unknown";
	}
}

void mig_fault_point(const char *what)
{
	const char *f = getenv("FERRY_FAULT");

	if (f && !strcmp(f, what)) {
		pr_warn("FERRY_FAULT=%s: killing this process", what);
		kill(getpid(), SIGKILL);
	}
}

static int mpath(char *out, size_t len, const char *state_dir, const char *id, const char *suffix,
		 ferr_t *err)
{
	return xsnprintf(out, len, err, "%s/migrations/%s%s", state_dir, id, suffix);
}

/* ---- the in-flight file of a `ferry migrate` ---- */

int inflight_begin(const char *state_dir, const char *id, const struct tenant_rec *rec,
		   const char *dest, const char *mode, ferr_t *err)
{
	char p[PATH_MAX], body[1024];
	int fd, n;

	if (mpath(p, sizeof(p), state_dir, id, ".src", err) < 0)
		return -1;
	fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "migration record %s", p);
	n = snprintf(body, sizeof(body),
		     INFLIGHT_MAGIC "\ntenant=%s\ninit_pid=%d\ninit_start=%" PRIu64
				    "\ndest=%s\nmode=%s\nowner=%d\n",
		     rec->name, (int)rec->init_pid, rec->init_start, dest, mode, (int)getpid());
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || n <= 0 || (size_t)n >= sizeof(body) ||
	    write(fd, body, (size_t)n) != n || fsync(fd) < 0) {
		ferr_sys(err, FX_FAIL, "migration record %s", p);
		unlink(p);
		close(fd);
		return -1;
	}
	return fd;
}

static void write_aborted(const char *state_dir, const char *id, const char *why);
static enum mig_verdict verdict_from_files(const char *state_dir, const char *id);

void inflight_end(const char *state_dir, const char *id, int fd, bool aborted)
{
	char p[PATH_MAX];

	if (fd < 0)
		return;
	if (aborted && verdict_from_files(state_dir, id) == MV_UNKNOWN)
		write_aborted(state_dir, id, "the source gave up before deciding");
	if (mpath(p, sizeof(p), state_dir, id, ".src", NULL) == 0)
		unlink(p);
	/* no decision to ask for: who may ask (query.h) is not kept either */
	if (verdict_from_files(state_dir, id) == MV_UNKNOWN &&
	    mpath(p, sizeof(p), state_dir, id, ".peer", NULL) == 0)
		unlink(p);
	close(fd);
}

struct inflight {
	char tenant[64];
	pid_t init_pid;
	uint64_t init_start;
};

static int inflight_parse(int fd, struct inflight *f, ferr_t *err)
{
	char buf[2048], *line, *save = NULL;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	memset(f, 0, sizeof(*f));
	if (n <= 0)
		return ferr_set(err, FX_INTEGRITY, "empty migration record");
	buf[n] = '\0';
	if (strncmp(buf, INFLIGHT_MAGIC "\n", strlen(INFLIGHT_MAGIC) + 1))
		return ferr_set(err, FX_INTEGRITY, "not a migration record");
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "tenant=", 7))
			snprintf(f->tenant, sizeof(f->tenant), "%s", line + 7);
		else if (!strncmp(line, "init_pid=", 9))
			f->init_pid = (pid_t)atoi(line + 9);
		else if (!strncmp(line, "init_start=", 11))
			f->init_start = strtoull(line + 11, NULL, 10);
	}
	if (!tenant_name_valid(f->tenant) || f->init_pid <= 0)
		return ferr_set(err, FX_INTEGRITY, "incomplete migration record");
	return 0;
}

/* ---- one migration of this host as source ---- */

static enum mig_verdict verdict_from_files(const char *state_dir, const char *id)
{
	char p[PATH_MAX];

	if (mpath(p, sizeof(p), state_dir, id, ".committed", NULL) == 0 && access(p, F_OK) == 0)
		return MV_COMMIT;
	if (mpath(p, sizeof(p), state_dir, id, ".aborted", NULL) == 0 && access(p, F_OK) == 0)
		return MV_ABORT;
	return MV_UNKNOWN;
}

/* The tenant stays here: the decision is "abort", from now on for everyone. */
static void write_aborted(const char *state_dir, const char *id, const char *why)
{
	char c[PATH_MAX], a[PATH_MAX], line[256];

	if (mpath(c, sizeof(c), state_dir, id, ".committed", NULL) < 0 ||
	    mpath(a, sizeof(a), state_dir, id, ".aborted", NULL) < 0)
		return;
	snprintf(line, sizeof(line), "migration %s: aborted by recovery at %lld: %s\n", id,
		 (long long)wall_time(), why);
	if (fs_write_atomic(a, line, strlen(line), 0600, NULL) == 0)
		unlink(c);
}

static int lock_tenant(const char *state_dir, const char *name)
{
	for (int i = 0; i < 40; i++) {
		int fd = registry_lock(state_dir, name, NULL);
		if (fd >= 0)
			return fd;
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* The packet hold's blackhole route (tenant/net.h), left by the killed
 * `ferry migrate` whatever the outcome. */
static void drop_hold_route(const struct tenant_rec *rec)
{
	ferr_t e = {0};

	if (rec->net.addr[0] && net_hold_route(rec->net.addr, false, &e) < 0)
		pr_warn("tenant %s: %s", rec->name, e.msg);
}

/* Alive here: the record says so again, the network is plumbed again
 * (post-copy cut it before the handover). */
static void keep_here(const char *state_dir, const struct inflight *f)
{
	struct tenant_rec rec;
	ferr_t e = {0};

	if (registry_load(state_dir, f->tenant, &rec, &e) < 0) {
		pr_warn("tenant %s runs here but has no record: %s", f->tenant, e.msg);
		return;
	}
	drop_hold_route(&rec);
	if (rec.state != TS_RUNNING || rec.init_pid != f->init_pid) {
		rec.state = TS_RUNNING;
		rec.init_pid = f->init_pid;
		rec.init_start = f->init_start;
		rec.updated = wall_time();
		if (registry_save(state_dir, &rec, &e) < 0)
			pr_warn("tenant %s: %s", f->tenant, e.msg);
	}
	const struct tenant_kind_ops *kind = kind_find(rec.kind);
	if (kind && kind->plumb(&rec.net, &e) < 0)
		pr_warn("tenant %s runs here again but its network is not restored: %s", f->tenant,
			e.msg);
	tenant_rec_free(&rec);
}

/* It stays here: a backend whose tenant does not resume by itself when
 * the save's owner dies (ckpt.h resume) is told to run it again. Called
 * without the migration's and the tenant's locks: the destination may hold
 * what the tenant needs (a VM's disk locks) until it learns the verdict,
 * which it asks this host for. */
static void resume_here(const char *state_dir, const char *name)
{
	struct tenant_rec rec;
	struct ckpt_target t = {0};
	char work[PATH_MAX];
	ferr_t e = {0};

	if (registry_load(state_dir, name, &rec, NULL) < 0)
		return;
	const struct tenant_kind_ops *kind = kind_find(rec.kind);
	if (kind && kind->ckpt->resume &&
	    registry_tenant_dir(state_dir, name, work, sizeof(work), &e) == 0 &&
	    tenant_pid_alive(rec.init_pid, rec.init_start)) {
		struct ckpt_env env = {.work_dir = work};
		kind->target(&rec, &t);
		if (kind->ckpt->resume(&env, &t, &e) < 0)
			pr_warn("tenant %s stays here but does not run: %s", name, e.msg);
	}
	tenant_rec_free(&rec);
}

/* Gone from here after the commit: the record goes (unless the name belongs
 * to a live tenant by now). */
static void moved_away(const char *state_dir, const struct inflight *f)
{
	struct tenant_rec rec;

	if (registry_load(state_dir, f->tenant, &rec, NULL) < 0)
		return;
	drop_hold_route(&rec);
	bool other = rec.state == TS_RUNNING && rec.init_pid != f->init_pid &&
		     tenant_pid_alive(rec.init_pid, rec.init_start);
	tenant_rec_free(&rec);
	if (!other)
		registry_remove(state_dir, f->tenant, NULL);
}

static void forget_src(const char *state_dir, const char *id, const char *src)
{
	char p[PATH_MAX];

	if (mpath(p, sizeof(p), state_dir, "out-", id, NULL) == 0)
		fs_rm_rf(p, NULL);
	/* pre-copy: the rounds' images (migrate_precopy.c) */
	if (mpath(p, sizeof(p), state_dir, "pre-", id, NULL) == 0)
		fs_rm_rf(p, NULL);
	if (xsnprintf(p, sizeof(p), NULL, "%s/migrations/out-%s.hook", state_dir, id) == 0)
		unlink(p);
	unlink(src);
}

/* The tenant's process is alive but its backend handed its state over
 * (ckpt.h handed: a VM whose post-copy started): it is no copy that may
 * run here; it is ended (it cannot serve its pages without the dead
 * `ferry migrate`'s relay). */
static bool handed_over(const char *state_dir, const char *name, pid_t pid)
{
	struct tenant_rec rec;
	struct ckpt_target t = {0};
	char work[PATH_MAX];
	bool h = false;

	if (registry_load(state_dir, name, &rec, NULL) < 0)
		return false;
	const struct tenant_kind_ops *kind = kind_find(rec.kind);
	if (kind && kind->ckpt->handed && rec.init_pid == pid &&
	    registry_tenant_dir(state_dir, name, work, sizeof(work), NULL) == 0) {
		struct ckpt_env env = {.work_dir = work};
		kind->target(&rec, &t);
		h = kind->ckpt->handed(&env, &t);
	}
	if (h) {
		pr_warn(
		    "tenant %s: its state was handed over (post-copy) before its `ferry migrate` "
		    "died: this copy never runs again, it is ended",
		    name);
		kind->kill(&rec, SIGKILL, 5000, NULL);
	}
	tenant_rec_free(&rec);
	return h;
}

static enum mig_verdict decide(const char *state_dir, const char *id, const struct inflight *f,
			       int wait_ms, bool *stays)
{
	enum tenant_settle s = tenant_settle(f->init_pid, f->init_start, wait_ms);
	enum mig_verdict v;
	int lk;

	if (s == SETTLE_BUSY)
		return MV_PENDING;
	lk = lock_tenant(state_dir, f->tenant);
	if (lk < 0)
		return MV_PENDING;
	if (s == SETTLE_ALIVE && handed_over(state_dir, f->tenant, f->init_pid))
		s = SETTLE_GONE;
	if (s == SETTLE_ALIVE) {
		write_aborted(state_dir, id, "the tenant runs on the source");
		keep_here(state_dir, f);
		*stays = true;
		v = MV_ABORT;
	} else if (verdict_from_files(state_dir, id) == MV_COMMIT) {
		moved_away(state_dir, f);
		v = MV_COMMIT;
	} else {
		struct tenant_rec rec;
		write_aborted(state_dir, id, "the tenant died on the source before a decision");
		if (registry_load(state_dir, f->tenant, &rec, NULL) == 0) {
			registry_refresh(state_dir, &rec, NULL);
			tenant_rec_free(&rec);
		}
		v = MV_ABORT;
	}
	close(lk);
	return v;
}

int reconcile_migration(const char *state_dir, const char *id, int wait_ms, enum mig_verdict *v,
			ferr_t *err)
{
	char src[PATH_MAX];
	struct stat a, b;
	struct inflight f;
	int fd;

	*v = MV_UNKNOWN;
	if (mpath(src, sizeof(src), state_dir, id, ".src", err) < 0)
		return -1;
	fd = open(src, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return ferr_sys(err, FX_FAIL, "migration record %s", src);
		*v = verdict_from_files(state_dir, id);
		return 0;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		*v = MV_PENDING; /* its `ferry migrate` (or another reconciler) works on it */
		return 0;
	}
	/* the owner may have finished (and unlinked it) while we waited */
	if (fstat(fd, &a) < 0 || stat(src, &b) < 0 || a.st_ino != b.st_ino) {
		close(fd);
		*v = verdict_from_files(state_dir, id);
		return 0;
	}
	if (inflight_parse(fd, &f, err) < 0) {
		close(fd);
		return ferr_wrap(err, "migration %s", id);
	}
	bool stays = false;
	*v = decide(state_dir, id, &f, wait_ms, &stays);
	if (*v != MV_PENDING) {
		pr_info("migration %s of tenant %s: its `ferry migrate` is gone; outcome: %s", id,
			f.tenant, mig_verdict_str(*v));
		forget_src(state_dir, id, src);
	}
	close(fd);
	if (stays)
		resume_here(state_dir, f.tenant);
	return 0;
}

/* ---- the whole host ---- */

static bool has_suffix(const char *s, const char *suffix, char *stem, size_t len)
{
	size_t n = strlen(s), m = strlen(suffix);

	if (n <= m || strcmp(s + n - m, suffix) || n - m >= len)
		return false;
	memcpy(stem, s, n - m);
	stem[n - m] = '\0';
	return true;
}

static void scan_migrations(const char *state_dir)
{
	char dir[PATH_MAX], id[256], p[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (xsnprintf(dir, sizeof(dir), NULL, "%s/migrations", state_dir) < 0 ||
	    !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		if (has_suffix(de->d_name, ".src", id, sizeof(id))) {
			enum mig_verdict v;
			ferr_t e = {0};
			if (reconcile_migration(state_dir, id, 5000, &v, &e) < 0)
				pr_warn("%s", e.msg);
		} else if ((has_suffix(de->d_name, ".committed", id, sizeof(id)) ||
			    has_suffix(de->d_name, ".aborted", id, sizeof(id)) ||
			    has_suffix(de->d_name, ".peer", id, sizeof(id))) &&
			   xsnprintf_path(p, sizeof(p), dir, de->d_name) == 0 &&
			   stat(p, &st) == 0 && st.st_mtime + DECISION_KEEP_S < time(NULL)) {
			unlink(p);
		}
	}
	closedir(d);
}

/* A record some killed command left "frozen" (no ferry holds its lock). */
static void settle_frozen(const char *state_dir, const char *name)
{
	struct tenant_rec rec;
	bool stays = false;
	int lk = registry_lock(state_dir, name, NULL);

	if (lk < 0)
		return;
	if (registry_load(state_dir, name, &rec, NULL) == 0) {
		if (rec.state == TS_FROZEN) {
			enum tenant_settle s = tenant_settle(rec.init_pid, rec.init_start, 2000);
			if (s == SETTLE_ALIVE && handed_over(state_dir, name, rec.init_pid))
				s = SETTLE_GONE;
			if (s == SETTLE_ALIVE) {
				pr_info("tenant %s: stale frozen state, it runs", name);
				rec.state = TS_RUNNING;
				rec.updated = wall_time();
				registry_save(state_dir, &rec, NULL);
				stays = true;
			} else if (s == SETTLE_GONE) {
				registry_refresh(state_dir, &rec, NULL);
			}
		}
		tenant_rec_free(&rec);
	}
	close(lk);
	if (stays)
		resume_here(state_dir, name);
}

/* Records registered by an incoming migration (last_dump is its directory,
 * STATE/migrations/ID) whose agent is gone: the restore holds the tenant's
 * lock from before the record is written until last_dump is cleared, so a
 * free lock means nobody works on it any more. Returns true when rec is
 * such a record. */
static bool settle_incoming(const char *state_dir, const struct tenant_rec *listed,
			    bool at_agent_start, reconcile_settled_fn settled, void *arg)
{
	char base[PATH_MAX], real[PATH_MAX], id[80];
	struct tenant_rec rec;
	const char *slash;
	int lk;

	if (xsnprintf(base, sizeof(base), NULL, "%s/migrations", state_dir) < 0 ||
	    !realpath(base, real) || strncmp(listed->last_dump, real, strlen(real)) ||
	    listed->last_dump[strlen(real)] != '/')
		return false;
	slash = listed->last_dump + strlen(real) + 1;
	if (strchr(slash, '/') || !strncmp(slash, "out-", 4) || strlen(slash) >= sizeof(id))
		return false;
	snprintf(id, sizeof(id), "%s", slash);
	lk = registry_lock(state_dir, listed->name, NULL);
	if (lk < 0)
		return true; /* its restore (or another command) works on it */
	if (registry_load(state_dir, listed->name, &rec, NULL) < 0) {
		close(lk);
		return true;
	}
	enum tenant_settle s = SETTLE_BUSY;
	if (strcmp(rec.last_dump, listed->last_dump) ||
	    (rec.state != TS_RUNNING && rec.state != TS_FROZEN))
		goto out; /* settled meanwhile */
	s = tenant_settle(rec.init_pid, rec.init_start, 5000);
	if (s == SETTLE_ALIVE) {
		pr_info("tenant %s (migration %s) runs here: registered running", rec.name, id);
		rec.state = TS_RUNNING;
		rec.last_dump[0] = '\0';
		rec.updated = wall_time();
		registry_save(state_dir, &rec, NULL);
		if (settled)
			settled(id, true, arg);
	} else if (s == SETTLE_GONE) {
		pr_info("tenant %s (migration %s) did not survive its agent: record removed",
			rec.name, id);
		registry_remove(state_dir, rec.name, NULL);
		if (settled)
			settled(id, false, arg);
	} else if (at_agent_start) {
		pr_warn("tenant %s (migration %s) is still held by CRIU: left as it is", rec.name,
			id);
	}
out:
	tenant_rec_free(&rec);
	close(lk);
	return true;
}

static void reconcile(const char *state_dir, bool at_agent_start, reconcile_settled_fn settled,
		      void *arg)
{
	struct tenant_rec *v = NULL;
	size_t n = 0;

	scan_migrations(state_dir);
	if (registry_list(state_dir, &v, &n, NULL) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		bool live = v[i].state == TS_RUNNING || v[i].state == TS_FROZEN;
		if (live && v[i].last_dump[0] &&
		    settle_incoming(state_dir, &v[i], at_agent_start, settled, arg))
			;
		else if (v[i].state == TS_FROZEN)
			settle_frozen(state_dir, v[i].name);
		tenant_rec_free(&v[i]);
	}
	free(v);
}

void reconcile_all(const char *state_dir, bool at_agent_start)
{
	reconcile(state_dir, at_agent_start, NULL, NULL);
}

void reconcile_agent_start(const char *state_dir, reconcile_settled_fn settled, void *arg)
{
	reconcile(state_dir, true, settled, arg);
}
