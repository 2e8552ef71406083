/* Destination, post-copy: the `criu lazy-pages` daemon of a migration and
 * the connection that relays its page requests to the source (dst_lazy.h).
 * The migration's handler registers the daemon's socket here; the pages
 * connection (MIG_REQ_PAGES, same migration id) takes it and relays until
 * the daemon has every page. */
#define LOG_PREFIX "handover"
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "migrate/handover.h"
#include "lib/fsutil.h"
#include "migrate/dst_lazy.h"
#include "lib/log.h"
#include "tenant/registry.h"
#include "transport/relay.h"
#include "transport/session.h"
#include "lib/util.h"
#include "transport/wire.h"

/* One post-copy migration: registered by its MIGRATE_BEGIN connection, its
 * socket taken by its pages connection, dropped by whichever ends it. */
struct lazy_ent {
	struct lazy_ent *next;
	char id[65];
	int sk;	   /* our end of the daemon's page-server socket; -1 once taken */
	int relay; /* taken: the pages connection's, until it closes it (-1) */
	pid_t pid; /* the daemon, -1 until started */
	bool lz4;
	char dir[PATH_MAX]; /* the migration's images, removed with the daemon */
};

/* Locking: lock protects the list and every entry's fields; changed is
 * signalled on every registration and drop (take() waits on it). Entries
 * are freed only by lazy_drop (and lazy_tab_free, when no connection runs). */
struct lazy_tab {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct lazy_ent *ents;
};

struct lazy_tab *lazy_tab_new(ferr_t *err)
{
	struct lazy_tab *t = calloc(1, sizeof(*t));

	if (!t) {
		ferr_set(err, FX_FAIL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->changed, NULL);
	return t;
}

void lazy_tab_free(struct lazy_tab *t)
{
	if (!t)
		return;
	while (t->ents) {
		struct lazy_ent *e = t->ents;
		t->ents = e->next;
		if (e->sk >= 0)
			close(e->sk);
		free(e);
	}
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->changed);
	free(t);
}

static struct lazy_ent *find(struct lazy_tab *t, const char *id)
{
	for (struct lazy_ent *e = t->ents; e; e = e->next)
		if (!strcmp(e->id, id))
			return e;
	return NULL;
}

int lazy_register(struct lazy_tab *t, const char *id, int sk, bool lz4, const char *dir)
{
	struct lazy_ent *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->sk = sk;
	e->relay = -1;
	e->pid = -1;
	e->lz4 = lz4;
	snprintf(e->dir, sizeof(e->dir), "%s", dir);
	pthread_mutex_lock(&t->lock);
	e->next = t->ents;
	t->ents = e;
	pthread_cond_broadcast(&t->changed);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void lazy_set_daemon(struct lazy_tab *t, const char *id, pid_t pid)
{
	struct lazy_ent *e;

	pthread_mutex_lock(&t->lock);
	e = find(t, id);
	if (e)
		e->pid = pid;
	pthread_mutex_unlock(&t->lock);
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

void lazy_drop(struct lazy_tab *t, const char *id, bool kill_daemon)
{
	struct lazy_ent *e = NULL;

	pthread_mutex_lock(&t->lock);
	for (struct lazy_ent **pp = &t->ents; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->id, id)) {
			e = *pp;
			*pp = e->next;
			break;
		}
	}
	/* a relay still running on a migration that ends: its socket is
	 * shut down while the relay cannot have closed it (it clears relay
	 * under the lock first), never a number some other file has now */
	if (e && e->relay >= 0)
		shutdown(e->relay, SHUT_RDWR);
	pthread_cond_broadcast(&t->changed);
	pthread_mutex_unlock(&t->lock);
	if (!e)
		return;
	if (e->sk >= 0)
		close(e->sk);
	reap(e->pid, kill_daemon);
	if (e->dir[0])
		fs_rm_rf(e->dir, NULL);
	free(e);
}

/* Take the socket of migration id (waits up to wait_s for its registration). */
static int take(struct lazy_tab *t, const char *id, int wait_s, bool *lz4)
{
	struct timespec ts;
	struct lazy_ent *e;
	int sk = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_s;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		e = find(t, id);
		if (e && e->sk >= 0) {
			sk = e->relay = e->sk;
			e->sk = -1;
			*lz4 = e->lz4;
		}
		if (sk >= 0 || pthread_cond_timedwait(&t->changed, &t->lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&t->lock);
	return sk;
}

int lazy_serve_pages(struct chan *c, const struct frame_buf *req, struct lazy_tab *t, ferr_t *err)
{
	Ferry__Wire__MigrateStep *m =
	    wire_unpack(&ferry__wire__migrate_step__descriptor, req->data, req->h.len, err);
	struct relay_opts ro = {.stream = MIG_STREAM_PAGES, .idle_ms = 120000};
	struct relay_stats rs;
	char id[65];
	int sk, r;

	if (!m || !m->migration_id || !wire_set_id_ok(m->migration_id)) {
		wire_free(m);
		ferr_set(err, FX_INTEGRITY, "page relay request without a valid migration id");
		session_send_error(c, err);
		return -1;
	}
	snprintf(id, sizeof(id), "%s", m->migration_id);
	wire_free(m);
	sk = take(t, id, 30, &ro.lz4);
	if (sk < 0) {
		ferr_set(err, FX_NOTFOUND, "no post-copy migration %s waits for its pages here",
			 id);
		session_send_error(c, err);
		return -1;
	}
	r = relay_run(c, sk, &ro, &rs, err);
	pthread_mutex_lock(&t->lock);
	struct lazy_ent *e = find(t, id);
	if (e)
		e->relay = -1;
	pthread_mutex_unlock(&t->lock);
	close(sk);
	pr_info("migration %s: %llu lazy page bytes in %.2f s", id,
		(unsigned long long)rs.raw_tx + rs.raw_rx, rs.seconds);
	/* the daemon exits once it has every page (or lost the source) */
	lazy_drop(t, id, r < 0);
	return r;
}
