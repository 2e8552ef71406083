/* Destination, post-copy: the `criu lazy-pages` daemon of a migration and
 * the connection that relays its page requests to the source (handover.h).
 * The migration's handler registers the daemon's socket here; the pages
 * connection (MIG_REQ_PAGES, same migration id) takes it and relays until
 * the daemon has every page. */
#define LOG_PREFIX "handover"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "criu/lazypages.h"
#include "migrate/handover.h"
#include "lib/fsutil.h"
#include "migrate/handover_lazy.h"
#include "lib/log.h"
#include "tenant/registry.h"
#include "transport/relay.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"

#define MAX_LAZY 16

/* Everything below is protected by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static struct {
	bool used;
	char id[65];
	int sk;	   /* our end of the daemon's page-server socket; -1 once taken */
	pid_t pid; /* the daemon, -1 until started */
	bool lz4;
	char dir[4096]; /* the migration's images, removed with the daemon */
} tab[MAX_LAZY];

int lazy_register(const char *id, int sk, bool lz4, const char *dir)
{
	int r = -1;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_LAZY && r < 0; i++) {
		if (!tab[i].used) {
			tab[i].used = true;
			snprintf(tab[i].id, sizeof(tab[i].id), "%s", id);
			tab[i].sk = sk;
			tab[i].pid = -1;
			tab[i].lz4 = lz4;
			snprintf(tab[i].dir, sizeof(tab[i].dir), "%s", dir);
			r = 0;
		}
	}
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	return r;
}

void lazy_set_daemon(const char *id, pid_t pid)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_LAZY; i++)
		if (tab[i].used && !strcmp(tab[i].id, id))
			tab[i].pid = pid;
	pthread_mutex_unlock(&lock);
}

static void reap(pid_t pid, bool kill_it)
{
	if (pid <= 0)
		return;
	if (kill_it)
		kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

void lazy_drop(const char *id, bool kill_daemon)
{
	int sk = -1;
	pid_t pid = -1;
	char dir[4096] = "";

	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_LAZY; i++) {
		if (tab[i].used && !strcmp(tab[i].id, id)) {
			tab[i].used = false;
			sk = tab[i].sk;
			pid = tab[i].pid;
			snprintf(dir, sizeof(dir), "%s", tab[i].dir);
		}
	}
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	if (sk >= 0)
		close(sk);
	reap(pid, kill_daemon);
	if (dir[0])
		fs_rm_rf(dir, NULL);
}

/* Take the socket of migration id (waits up to wait_s for its registration). */
static int take(const char *id, int wait_s, bool *lz4)
{
	struct timespec ts;
	int sk = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_s;
	pthread_mutex_lock(&lock);
	for (;;) {
		for (int i = 0; i < MAX_LAZY; i++) {
			if (tab[i].used && !strcmp(tab[i].id, id) && tab[i].sk >= 0) {
				sk = tab[i].sk;
				tab[i].sk = -1;
				*lz4 = tab[i].lz4;
			}
		}
		if (sk >= 0 || pthread_cond_timedwait(&changed, &lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&lock);
	return sk;
}

int handover_pages(struct chan *c, const struct frame_buf *req, const struct handover_opts *o,
		   ferr_t *err)
{
	Ferry__Wire__MigrateStep *m =
	    wire_unpack(&ferry__wire__migrate_step__descriptor, req->data, req->h.len, err);
	struct relay_opts ro = {.stream = MIG_STREAM_PAGES, .idle_ms = 120000};
	struct relay_stats rs;
	char id[65];
	int sk, r;

	(void)o;
	if (!m || !m->migration_id || !wire_set_id_ok(m->migration_id)) {
		wire_free(m);
		ferr_set(err, FX_INTEGRITY, "page relay request without a valid migration id");
		session_send_error(c, err);
		return -1;
	}
	snprintf(id, sizeof(id), "%s", m->migration_id);
	wire_free(m);
	sk = take(id, 30, &ro.lz4);
	if (sk < 0) {
		ferr_set(err, FX_NOTFOUND, "no post-copy migration %s waits for its pages here",
			 id);
		session_send_error(c, err);
		return -1;
	}
	r = relay_run(c, sk, &ro, &rs, err);
	close(sk);
	pr_info("migration %s: %llu lazy page bytes in %.2f s", id,
		(unsigned long long)rs.raw_tx + rs.raw_rx, rs.seconds);
	/* the daemon exits once it has every page (or lost the source) */
	lazy_drop(id, r < 0);
	return r;
}

/* ---- the daemon and the restore, started together ---- */

int lazy_restore(const struct lazy_restore *l, const struct restore_opts *ro,
		 struct restore_result *rr, ferr_t *err)
{
	char work[PATH_MAX], sockp[PATH_MAX];
	int ready = -1, r;
	pid_t pid;
	uint64_t t0 = now_ns();

	if (registry_tenant_dir(ro->state_dir, l->tenant, work, sizeof(work), err) < 0 ||
	    fs_mkdir_p(work, 0700, err) < 0 ||
	    xsnprintf(sockp, sizeof(sockp), err, "%s/lazy-pages.socket", work) < 0)
		return -1;
	unlink(sockp);
	/* `criu lazy-pages` serves the restore from the restore's work
	 * directory, where CRIU looks for lazy-pages.socket */
	struct criu_lazy_pages_opts lo = {.criu_path = l->criu_path,
					  .images_dir = l->images_dir,
					  .work_dir = work,
					  .ps_fd = l->sk};
	pid = criu_lazy_pages_start(&lo, &ready, err);
	if (pid < 0)
		return -1;
	lazy_set_daemon(l->id, pid);
	/* Both CRIUs start at once: most of their start-up (kernel feature
	 * probes, images) is the same work, done in parallel. The restore
	 * connects to the daemon's socket before it creates anything; when it
	 * came first it failed without a trace and runs again. */
	r = restore_tenant(ro, rr, err);
	if (r < 0 && criu_lazy_pages_missed(work)) {
		pr_info("migration %s: the restore came before the lazy-pages daemon; again",
			l->id);
		ferr_clear(err);
		r = criu_lazy_pages_ready(ready, 5000, work, err);
		if (r == 0)
			r = restore_tenant(ro, rr, err);
	}
	close(ready);
	pr_debug("migration %s: lazy restore %.1f ms", l->id, ms_since(t0));
	return r;
}
