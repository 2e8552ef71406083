/* Recovery decisions (migrate/reconcile.h) with real processes standing in
 * for the tenant and for a dead `ferry migrate`: no CRIU involved. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "migrate/dst.h"
#include "migrate/reconcile.h"
#include "tenant/registry.h"
#include "unit.h"

static char dir[] = "/tmp/ferry-unit-reconcile-XXXXXX";

/* A tenant stand-in: a child that waits to be killed. */
static pid_t sleeper(void)
{
	pid_t p = fork();

	if (p == 0) {
		for (;;)
			pause();
	}
	return p;
}

static void kill_sleeper(pid_t p)
{
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
}

static void record(const char *name, pid_t pid, enum tenant_state st, const char *last_dump)
{
	struct tenant_rec r;
	ferr_t e = {0};

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "%s", name);
	r.kind = TK_PROCTREE;
	r.state = st;
	r.init_pid = pid;
	proc_start_time(pid, &r.init_start, NULL);
	if (last_dump)
		snprintf(r.last_dump, sizeof(r.last_dump), "%s", last_dump);
	r.created = r.updated = 1700000000;
	CHECK(registry_save(dir, &r, &e) == 0);
}

static enum tenant_state state_of(const char *name)
{
	struct tenant_rec r;
	ferr_t e = {0};

	if (registry_load(dir, name, &r, &e) < 0)
		return 0;
	enum tenant_state s = r.state;
	tenant_rec_free(&r);
	return s;
}

static bool exists(const char *id, const char *suffix)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/migrations/%s%s", dir, id, suffix);
	return access(p, F_OK) == 0;
}

static void touch(const char *id, const char *suffix)
{
	char p[PATH_MAX];
	ferr_t e = {0};

	snprintf(p, sizeof(p), "%s/migrations/%s%s", dir, id, suffix);
	CHECK(fs_write_atomic(p, "x\n", 2, 0600, &e) == 0);
}

/* The in-flight file of a `ferry migrate` that died (its lock is free). */
static void dead_owner(const char *id, const char *tenant)
{
	struct tenant_rec r;
	ferr_t e = {0};
	pid_t p;

	CHECK(registry_load(dir, tenant, &r, &e) == 0);
	p = fork();
	if (p == 0)
		_exit(inflight_begin(dir, id, &r, "b:7000", "stop-copy", &e) < 0 ? 1 : 0);
	int st = -1;
	waitpid(p, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	tenant_rec_free(&r);
}

static void test_owner_alive(void)
{
	enum mig_verdict v;
	struct tenant_rec r;
	ferr_t e = {0};
	pid_t t = sleeper();

	record("t-live", t, TS_FROZEN, NULL);
	CHECK(registry_load(dir, "t-live", &r, &e) == 0);
	int fd = inflight_begin(dir, "m1", &r, "b:7000", "stop-copy", &e);
	CHECK(fd >= 0);
	CHECK(reconcile_migration(dir, "m1", 200, &v, &e) == 0 && v == MV_PENDING);
	CHECK(state_of("t-live") == TS_FROZEN); /* not ours to touch */
	/* it ends without moving the tenant after the destination restored */
	inflight_end(dir, "m1", fd, true);
	CHECK(!exists("m1", ".src") && exists("m1", ".aborted"));
	CHECK(reconcile_migration(dir, "m1", 200, &v, &e) == 0 && v == MV_ABORT);
	CHECK(reconcile_migration(dir, "never", 200, &v, &e) == 0 && v == MV_UNKNOWN);
	tenant_rec_free(&r);
	kill_sleeper(t);
}

static void test_alive_with_marker_aborts(void)
{
	enum mig_verdict v;
	ferr_t e = {0};
	pid_t t = sleeper();

	record("t-stay", t, TS_FROZEN, NULL);
	dead_owner("m2", "t-stay");
	touch("m2", ".committed"); /* decided, but CRIU never got "ok" */
	CHECK(reconcile_migration(dir, "m2", 2000, &v, &e) == 0 && v == MV_ABORT);
	CHECK(!exists("m2", ".committed") && exists("m2", ".aborted") && !exists("m2", ".src"));
	CHECK(state_of("t-stay") == TS_RUNNING);
	/* asked again: the same answer */
	CHECK(reconcile_migration(dir, "m2", 200, &v, &e) == 0 && v == MV_ABORT);
	kill_sleeper(t);
}

static void test_gone_with_marker_commits(void)
{
	enum mig_verdict v;
	ferr_t e = {0};
	pid_t t = sleeper();

	record("t-moved", t, TS_FROZEN, NULL);
	dead_owner("m3", "t-moved");
	touch("m3", ".committed");
	kill_sleeper(t);
	CHECK(reconcile_migration(dir, "m3", 2000, &v, &e) == 0 && v == MV_COMMIT);
	CHECK(state_of("t-moved") == 0); /* record removed: it moved */
	CHECK(exists("m3", ".committed") && !exists("m3", ".src"));
}

static void test_gone_without_marker_aborts(void)
{
	enum mig_verdict v;
	ferr_t e = {0};
	pid_t t = sleeper();

	record("t-died", t, TS_FROZEN, NULL);
	dead_owner("m4", "t-died");
	kill_sleeper(t);
	CHECK(reconcile_migration(dir, "m4", 2000, &v, &e) == 0 && v == MV_ABORT);
	CHECK(exists("m4", ".aborted"));
	CHECK(state_of("t-died") == TS_GONE);
}

static void test_reconcile_all(void)
{
	char real[PATH_MAX], base[PATH_MAX], inc[PATH_MAX + 40];
	pid_t t = sleeper(), gone = sleeper();

	/* a stale "frozen" left by a killed command, no migration */
	record("t-stale", t, TS_FROZEN, NULL);
	/* an incoming migration registered at post-restore, its agent and the
	 * restored tree gone */
	snprintf(base, sizeof(base), "%s/migrations", dir);
	CHECK(realpath(base, real) != NULL);
	snprintf(inc, sizeof(inc), "%s/0123abcd", real);
	record("t-incoming", gone, TS_FROZEN, inc);
	kill_sleeper(gone);
	/* and one whose tenant runs: registered running */
	pid_t r = sleeper();
	snprintf(inc, sizeof(inc), "%s/4567cdef", real);
	record("t-arrived", r, TS_FROZEN, inc);
	reconcile_all(dir, false);
	CHECK(state_of("t-stale") == TS_RUNNING);
	CHECK(state_of("t-incoming") == 0);
	CHECK(state_of("t-arrived") == TS_RUNNING);
	kill_sleeper(t);
	kill_sleeper(r);
}

static void mkdirs(const char *id, const char *sub)
{
	char p[PATH_MAX];
	ferr_t e = {0};

	snprintf(p, sizeof(p), "%s/migrations/%s%s", dir, id, sub);
	CHECK(fs_mkdir_p(p, 0700, &e) == 0);
}

/* Pre-copy keeps its rounds in pre-ID/ beside out-ID/ (migrate_precopy.c):
 * an agent starting while the migration runs leaves them alone; the
 * recovery of a killed `ferry migrate` removes them. */
static void test_precopy_rounds(void)
{
	enum mig_verdict v;
	struct tenant_rec r;
	ferr_t e = {0};
	pid_t t = sleeper();

	record("t-pre", t, TS_RUNNING, NULL);
	CHECK(registry_load(dir, "t-pre", &r, &e) == 0);
	int fd = inflight_begin(dir, "m6", &r, "b:7000", "pre-copy", &e);
	CHECK(fd >= 0);
	mkdirs("pre-m6", "/round-1");
	mkdirs("out-m6", "");
	mkdirs("89abcdef", "/round-1"); /* an incoming one a dead agent left */
	/* an agent starts on this host meanwhile */
	struct mig_state *m = mig_state_new(4, &e);
	CHECK(m && mig_state_start(m, dir, &e) == 0);
	mig_state_free(m);
	CHECK(exists("pre-m6", "/round-1") && exists("out-m6", "") && !exists("89abcdef", ""));
	close(fd); /* its `ferry migrate` dies during the rounds */
	CHECK(reconcile_migration(dir, "m6", 2000, &v, &e) == 0 && v == MV_ABORT);
	CHECK(!exists("pre-m6", "") && !exists("out-m6", "") && !exists("m6", ".src"));
	CHECK(state_of("t-pre") == TS_RUNNING);
	tenant_rec_free(&r);
	kill_sleeper(t);
}

int main(void)
{
	char m[PATH_MAX];
	ferr_t e = {0};

	if (!mkdtemp(dir))
		return 1;
	snprintf(m, sizeof(m), "%s/migrations", dir);
	if (registry_init(dir, &e) < 0 || fs_mkdir_p(m, 0700, &e) < 0)
		return 1;
	RUN(test_owner_alive);
	RUN(test_alive_with_marker_aborts);
	RUN(test_gone_with_marker_commits);
	RUN(test_gone_without_marker_aborts);
	RUN(test_reconcile_all);
	RUN(test_precopy_rounds);
	fs_rm_rf(dir, &e);
	UNIT_DONE();
}
