/* Listener, connection threads, request dispatch, per-set locks. */
#define LOG_PREFIX "serve"
#include "agent/serve.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/chan_sock.h"
#include "transport/chan_tls.h"
#include "lib/fsutil.h"
#include "migrate/handover.h"
#include "migrate/query.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/reap.h"
#include "transport/session.h"
#include "snapshot/store.h"
#include "lib/util.h"
#include "transport/wire.h"
#include "transport/xfer.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

struct conn {
	struct server *srv;
	struct chan *raw; /* until the thread owns it */
	int fd;		  /* the socket, to kick a stalled connection */
	bool used;
	bool handover;	 /* a migration request: it logs its own outcome */
	char set_id[65]; /* set this connection holds the lock of, or "" */
};

/* Everything below lock is protected by it. */
struct server {
	const struct serve_opts *o;
	struct tls_ctx *tls;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct conn *conns;
	int active;
	pthread_mutex_t out_lock; /* one log line at a time */
};

/* ---- per-set locks: one connection per set; a newer one takes over ---- */

static struct conn *holder(struct server *s, const char *set_id)
{
	for (int i = 0; i < s->o->max_conns; i++)
		if (s->conns[i].used && !strcmp(s->conns[i].set_id, set_id))
			return &s->conns[i];
	return NULL;
}

static int set_lock(void *arg, const char *set_id, struct chan *c, ferr_t *err)
{
	struct conn *me = arg, *h;
	struct server *s = me->srv;
	int waited = 0;

	(void)c;
	pthread_mutex_lock(&s->lock);
	while ((h = holder(s, set_id)) && h != me) {
		/* a resumed sender: the old connection is dead or dying */
		shutdown(h->fd, SHUT_RDWR);
		if (waited++ > 300) {
			pthread_mutex_unlock(&s->lock);
			return ferr_set(err, FX_CONFLICT, "set %s is busy with another transfer",
					set_id);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->changed, &s->lock, &ts);
	}
	snprintf(me->set_id, sizeof(me->set_id), "%s", set_id);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void set_unlock(void *arg, const char *set_id)
{
	struct conn *me = arg;
	struct server *s = me->srv;

	(void)set_id;
	pthread_mutex_lock(&s->lock);
	me->set_id[0] = '\0';
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
}

/* ---- one line per transfer ---- */

static void log_transfer(struct server *s, const char *peer, const char *cn,
			 const struct xfer_stats *st, int rc, const ferr_t *err)
{
	double mbps = st->seconds > 0 ? st->raw_bytes / st->seconds / 1e6 : 0;
	char b1[32];

	pthread_mutex_lock(&s->out_lock);
	if (s->o->json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
		jw_str(&w, "event", "transfer");
		jw_bool(&w, "ok", rc == 0);
		jw_str(&w, "set_id", st->set_id);
		jw_str(&w, "tenant", st->tenant);
		jw_str(&w, "peer", peer);
		jw_str(&w, "peer_name", cn);
		jw_uint(&w, "files", st->n_files);
		jw_uint(&w, "total_bytes", st->total_bytes);
		jw_uint(&w, "raw_bytes", st->raw_bytes);
		jw_uint(&w, "resumed_from", st->skipped_bytes);
		jw_uint(&w, "wire_bytes", st->wire_bytes);
		jw_double(&w, "seconds", st->seconds);
		jw_bool(&w, "already_present", st->have_set);
		if (rc) {
			jw_int(&w, "code", err->code);
			jw_str(&w, "error", err->msg);
		}
		jw_obj_end(&w);
		jw_finish(&w);
	} else if (rc == 0) {
		printf("ferry serve: %s set %s (tenant %s, %u files, %s) from %s [%s]: %.1f MB/s, "
		       "%.2f s%s\n",
		       st->have_set ? "already had" : "received", st->set_id, st->tenant,
		       st->n_files, fmt_bytes(st->total_bytes, b1, sizeof(b1)), cn, peer, mbps,
		       st->seconds, st->skipped_bytes ? " (resumed)" : "");
	} else {
		printf("ferry serve: transfer%s%s from %s [%s] failed: %s\n",
		       st->set_id[0] ? " of set " : "", st->set_id, cn[0] ? cn : "?", peer,
		       err->msg);
	}
	fflush(stdout);
	pthread_mutex_unlock(&s->out_lock);
}

/* After an error the peer may still be sending: read and drop its bytes for a
 * moment so the kernel does not reset the connection before it reads our
 * ERROR frame. */
static void linger(int fd)
{
	char buf[16384];
	uint64_t t0 = now_ns();

	shutdown(fd, SHUT_WR);
	while (ms_since(t0) < 3000) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
	}
}

/* The request that follows HELLO selects what this connection does. */
static int dispatch(struct conn *cn, struct chan *c, struct xfer_stats *st, ferr_t *err)
{
	struct server *s = cn->srv;
	struct frame_buf fb = {0};
	struct recv_opts ro = {
	    .state_dir = s->o->state_dir,
	    .threads = s->o->threads,
	    .lock = set_lock,
	    .unlock = set_unlock,
	    .lock_arg = cn,
	};
	int ret;

	if (frame_recv(c, &fb, err) < 0) {
		if (err->code == FX_INTEGRITY)
			session_send_error(c, err);
		frame_buf_free(&fb);
		return -1;
	}
	switch (fb.h.type) {
	case WIRE_OFFER:
		ret = xfer_recv(c, &fb, &ro, st, err);
		break;
	case MIG_REQ_BEGIN:
	case MIG_REQ_RESOLVE:
	case MIG_REQ_QUERY:
	case MIG_REQ_PAGES: {
		struct handover_opts ho = {.state_dir = s->o->state_dir,
					   .host_name = s->o->name,
					   .timeout_ms = s->o->timeout_ms,
					   .tls_dir = s->o->tls_dir};
		cn->handover = true;
		if (fb.h.type == MIG_REQ_BEGIN)
			ret = handover_serve(c, &fb, &ho, err);
		else if (fb.h.type == MIG_REQ_PAGES)
			ret = handover_pages(c, &fb, &ho, err);
		else if (fb.h.type == MIG_REQ_QUERY)
			ret = handover_query(c, &fb, &ho, err);
		else
			ret = handover_resolve(c, &fb, &ho, err);
		break;
	}
	default:
		ret = ferr_set(err, FX_USAGE, "unsupported request %s (type %u)",
			       wire_type_name(fb.h.type), fb.h.type);
		session_send_error(c, err);
		break;
	}
	frame_buf_free(&fb);
	return ret;
}

static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	struct server *s = cn->srv;
	struct xfer_stats st = {0};
	struct session_info si;
	ferr_t err = {0};
	char peer[128], cname[256] = "";
	struct chan *c;
	int rc = -1;

	snprintf(peer, sizeof(peer), "%s", chan_peer(cn->raw));
	c = chan_tls_server(cn->raw, s->tls, s->o->timeout_ms, &err);
	if (c) {
		snprintf(cname, sizeof(cname), "%s", chan_tls_peer_cn(c));
		if (session_hello_server(c, s->o->name, &si, &err) == 0)
			rc = dispatch(cn, c, &st, &err);
		if (rc < 0 && !chan_error(c))
			linger(c->fd);
		else
			chan_shutdown(c);
	}
	if (!cn->handover)
		log_transfer(s, peer, cname, &st, rc, &err);
	else if (rc < 0) {
		pthread_mutex_lock(&s->out_lock);
		printf("ferry serve: %s [%s]: %s\n", cname, peer, err.msg);
		fflush(stdout);
		pthread_mutex_unlock(&s->out_lock);
	}
	pthread_mutex_lock(&s->lock);
	chan_close(c);
	cn->used = false;
	cn->fd = -1;
	s->active--;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void accept_one(struct server *s, int lfd)
{
	ferr_t err = {0};
	struct chan *raw = chan_accept(lfd, &err);
	struct conn *cn = NULL;
	pthread_attr_t at;
	pthread_t tid;

	if (!raw)
		return;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->o->max_conns && !cn; i++)
		if (!s->conns[i].used)
			cn = &s->conns[i];
	cn->used = true;
	cn->handover = false;
	cn->raw = raw;
	cn->fd = raw->fd;
	cn->set_id[0] = '\0';
	s->active++;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 1 << 20);
	if (pthread_create(&tid, &at, conn_main, cn) != 0) {
		chan_close(raw);
		cn->used = false;
		s->active--;
	}
	pthread_attr_destroy(&at);
	pthread_mutex_unlock(&s->lock);
}

static void serve_loop(struct server *s, int lfd)
{
	while (!stop_flag) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};

		pthread_mutex_lock(&s->lock);
		while (s->active >= s->o->max_conns && !stop_flag) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec++;
			pthread_cond_timedwait(&s->changed, &s->lock, &ts);
		}
		pthread_mutex_unlock(&s->lock);
		reap_poll();
		if (stop_flag || poll(&p, 1, 200) <= 0)
			continue;
		accept_one(s, lfd);
	}
	/* stop: wake every connection and wait for the threads */
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->o->max_conns; i++)
		if (s->conns[i].used)
			shutdown(s->conns[i].fd, SHUT_RDWR);
	while (s->active > 0)
		pthread_cond_wait(&s->changed, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

int serve_run(const struct serve_opts *o, ferr_t *err)
{
	struct server s = {.o = o};
	struct sigaction sa = {.sa_handler = on_signal};
	char dir[4096];
	int lfd, n;

	if (xsnprintf(dir, sizeof(dir), err, "%s/incoming", o->state_dir) < 0 ||
	    fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	n = store_clean_stale(o->state_dir, (int64_t)o->keep_incoming_h * 3600, err);
	if (n < 0)
		return -1;
	if (n > 0)
		log_msg(LOG_WARN, LOG_PREFIX,
			"removed %d abandoned incoming set(s) older than %d h", n,
			o->keep_incoming_h);
	/* what killed commands and a killed agent left (migrate/reconcile.h) */
	reconcile_all(o->state_dir, true);
	if (handover_clean_stale(o->state_dir, err) < 0)
		return -1;
	s.tls = tls_ctx_new(o->tls_dir, o->name, true, err);
	if (!s.tls)
		return -1;
	lfd = chan_tcp_listen(o->host, o->port, 64, err);
	if (lfd < 0) {
		tls_ctx_free(s.tls);
		return -1;
	}
	s.conns = calloc((size_t)o->max_conns, sizeof(*s.conns));
	if (!s.conns) {
		close(lfd);
		tls_ctx_free(s.tls);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	for (int i = 0; i < o->max_conns; i++) {
		s.conns[i].srv = &s;
		s.conns[i].fd = -1;
	}
	pthread_mutex_init(&s.lock, NULL);
	pthread_mutex_init(&s.out_lock, NULL);
	pthread_cond_init(&s.changed, NULL);
	stop_flag = 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (hq_record_agent(o->state_dir, o->host, o->port, err) < 0) {
		close(lfd);
		free(s.conns);
		tls_ctx_free(s.tls);
		return -1;
	}
	fprintf(stderr, "ferry serve: listening on %s:%u as %s, state in %s\n", o->host, o->port,
		o->name, o->state_dir);
	serve_loop(&s, lfd);
	hq_forget_agent(o->state_dir);
	close(lfd);
	free(s.conns);
	tls_ctx_free(s.tls);
	pthread_mutex_destroy(&s.lock);
	pthread_mutex_destroy(&s.out_lock);
	pthread_cond_destroy(&s.changed);
	fprintf(stderr, "ferry serve: stopped\n");
	return 0;
}
