/* Listener, connection threads, the request table and its dispatch, per-set
 * locks, the agent's state (serve.h). */
#include "agent/serve.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/bind.h"
#include "agent/policy.h"
#include "agent/report.h"
#include "lib/fsutil.h"
#include "lib/reap.h"
#include "lib/util.h"
#include "snapshot/store.h"
#include "transport/chan_sock.h"
#include "transport/chan_tls.h"
#include "transport/request.h"
#include "transport/session.h"
#include "transport/wire.h"
#include "transport/xfer.h"
#include "migrate/dst.h"
#include "migrate/handover.h"

static volatile sig_atomic_t stop_flag, hup_flag;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup_flag = 1;
	else
		stop_flag = 1;
}

/* A connection is first unauthenticated (C_PREAUTH: TLS handshake, HELLO and
 * the request frame, all under one absolute deadline), then serves a request
 * (C_WORK). */
enum conn_state { C_FREE, C_PREAUTH, C_WORK };

/* Capacity: --max-conns requests at a time; RESERVED_CONNS more only for the
 * requests of migrations in flight (resolve, query, pages), so recovery gets
 * through a busy agent; at most --max-conns unauthenticated connections;
 * once half of them are taken, at most PREAUTH_PER_ADDR(max) per source
 * address (a host's own bursts pass below that); the oldest dropped for a
 * newcomer when they are all taken. */
#define RESERVED_CONNS	      4
#define PREAUTH_PER_ADDR(max) ((max) / 2 > 1 ? (max) / 2 : 2)
#define HANDSHAKE_MS	      10000
#define EVICT_AFTER_MS	      100
/* migrations whose peer is remembered; a finished one at least this long */
#define BIND_CAP    4096
#define BIND_KEEP_S 3600

struct conn {
	struct server *srv;
	struct chan *raw; /* until the thread owns it */
	int fd;		  /* the socket, to kick a stalled connection */
	bool used;
	enum conn_state state;
	bool kicked;			  /* shut down: past its deadline or evicted */
	uint64_t deadline_ns;		  /* C_PREAUTH: when it is dropped (now_ns clock) */
	char addr[64];			  /* the source address, without the port */
	char set_id[STORE_PEER_MAX + 80]; /* "<peer>/<set id>" this connection
					   * holds the lock of, or "" */
};

/* A request the agent serves: a layer's handler with that layer's state. */
struct req_entry {
	const struct req_handler *h;
	void *state;
};

/* The agent's state. Set up before the first connection and unchanged until
 * the last one ended: o, tls, reqs, xfer, mig (whose tables lock themselves,
 * migrate/dst.h) and rep (one lock inside, agent/report.h). Everything from
 * lock on is protected by lock. */
struct server {
	const struct serve_opts *o;
	struct tls_ctx *tls;
	struct reporter rep;
	struct req_entry *reqs; /* the request table */
	size_t n_reqs;
	struct xfer_serve_cfg xfer;   /* transport/'s state: OFFER */
	struct mig_state *mig;	      /* migrate/'s state: the migration requests */
	struct bind_tab *binds;	      /* migration id -> the peer that began it */
	struct timespec config_mtime; /* of the configuration loaded */
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct conn *conns;
	int n_conns; /* slots: unauthenticated, working, reserved, kicked */
	int active;
	int handshake_ms;      /* absolute limit for TLS, HELLO and the request frame */
	int preauth;	       /* connections in C_PREAUTH */
	int working;	       /* connections in C_WORK */
	struct policy *policy; /* who may make which request; NULL: anyone */
};

/* ---- per-set locks: one connection per set; a newer one takes over ---- */

static struct conn *holder(struct server *s, const char *set_id)
{
	for (int i = 0; i < s->n_conns; i++)
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

/* ---- the request table ---- */

/* Add a layer's handlers (ending with fn NULL), each with the layer's state. */
static int add_requests(struct server *s, const struct req_handler *hs, void *state, ferr_t *err)
{
	for (; hs->fn; hs++) {
		for (size_t i = 0; i < s->n_reqs; i++)
			if (s->reqs[i].h->type == hs->type)
				return ferr_set(err, FX_FAIL, "requests %s and %s share type %u",
						s->reqs[i].h->name, hs->name, hs->type);
		struct req_entry *v = realloc(s->reqs, (s->n_reqs + 1) * sizeof(*v));
		if (!v)
			return ferr_set(err, FX_FAIL, "out of memory");
		s->reqs = v;
		s->reqs[s->n_reqs++] = (struct req_entry){hs, state};
	}
	return 0;
}

/* Every layer's requests: transport/ (OFFER), migrate/ (the migration). */
static int build_requests(struct server *s, ferr_t *err)
{
	s->xfer.threads = s->o->threads;
	if (add_requests(s, xfer_requests, &s->xfer, err) < 0 ||
	    add_requests(s, mig_requests, s->mig, err) < 0)
		return -1;
	return 0;
}

static const struct req_entry *find_request(const struct server *s, uint8_t type)
{
	for (size_t i = 0; i < s->n_reqs; i++)
		if (s->reqs[i].h->type == type)
			return &s->reqs[i];
	return NULL;
}

/* A failure the handler did not report itself (req NULL: before a request). */
static void report_failure(struct server *s, const struct req_entry *req, const char *peer,
			   const char *cname, const ferr_t *err)
{
	struct event e;

	ev_init(&e, req ? "request" : "connection");
	ev_bool(&e, "ok", false);
	if (req)
		ev_str(&e, "request", req->h->name);
	ev_str(&e, "peer", peer);
	ev_str(&e, "peer_name", cname);
	ev_int(&e, "code", err->code);
	ev_str(&e, "error", err->msg);
	report_event(&e, &s->rep);
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

/* ---- capacity ---- */

/* Requests of a migration already in flight: they may use the reserve. */
static bool in_flight_request(uint8_t type)
{
	return type == MIG_REQ_RESOLVE || type == MIG_REQ_PAGES || type == MIG_REQ_QUERY;
}

static void set_state(struct server *s, struct conn *cn, enum conn_state st)
{
	s->preauth -= cn->state == C_PREAUTH;
	s->working -= cn->state == C_WORK;
	cn->state = st;
	s->preauth += st == C_PREAUTH;
	s->working += st == C_WORK;
}

/* The request is known: the connection leaves the unauthenticated pool and
 * takes a working slot, or is refused when the agent is at capacity. */
static int admit(struct conn *cn, uint8_t type, ferr_t *err)
{
	struct server *s = cn->srv;
	int cap = s->o->max_conns + (in_flight_request(type) ? RESERVED_CONNS : 0);
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (cn->kicked)
		ret = ferr_set(err, FX_PEER, "connection dropped: no request within %d ms",
			       s->handshake_ms);
	else if (s->working >= cap)
		ret = ferr_set(err, FX_CONFLICT,
			       "the agent is busy: %d requests in progress (--max-conns %d); "
			       "try again later",
			       s->working, s->o->max_conns);
	else
		set_state(s, cn, C_WORK);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* The agent configuration allows peer this request (agent/policy.h). */
static int authorize(struct server *s, const struct req_entry *req, const char *peer, ferr_t *err)
{
	bool ok;

	pthread_mutex_lock(&s->lock);
	ok = policy_allows(s->policy, req->h->name, peer);
	pthread_mutex_unlock(&s->lock);
	if (!ok)
		return ferr_set(err, FX_USAGE,
				"peer %s may not make request %s here (agent configuration %s)",
				peer, req->h->name, s->o->config);
	return 0;
}

/* The watchdog: drop unauthenticated connections past their deadline. */
static void kick_late(struct server *s)
{
	uint64_t now = now_ns();

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n_conns; i++) {
		struct conn *cn = &s->conns[i];
		if (cn->used && cn->state == C_PREAUTH && !cn->kicked && now > cn->deadline_ns) {
			cn->kicked = true;
			shutdown(cn->fd, SHUT_RDWR);
		}
	}
	pthread_mutex_unlock(&s->lock);
}

/* The oldest live unauthenticated connection; *live, *same (from addr) get
 * how many there are. */
static struct conn *preauth_scan(struct server *s, const char *addr, int *live, int *same)
{
	struct conn *oldest = NULL;

	*live = *same = 0;
	for (int i = 0; i < s->n_conns; i++) {
		struct conn *cn = &s->conns[i];
		if (!cn->used || cn->state != C_PREAUTH || cn->kicked)
			continue;
		(*live)++;
		*same += addr && !strcmp(cn->addr, addr);
		if (!oldest || cn->deadline_ns < oldest->deadline_ns)
			oldest = cn;
	}
	return oldest;
}

/* An unauthenticated connection this old may be dropped for a newcomer (a
 * legitimate handshake takes milliseconds). */
static bool evictable(const struct server *s, const struct conn *cn)
{
	return cn && now_ns() + (uint64_t)s->handshake_ms * 1000000ULL >
			 cn->deadline_ns + (uint64_t)EVICT_AFTER_MS * 1000000ULL;
}

/* Whether to accept now: a free unauthenticated slot, or one to evict; else
 * newcomers wait in the listen backlog (a burst of a host's own handshakes). */
static bool can_accept(struct server *s)
{
	int live, same;
	struct conn *oldest;
	bool ok;

	pthread_mutex_lock(&s->lock);
	oldest = preauth_scan(s, NULL, &live, &same);
	ok = live < s->o->max_conns || evictable(s, oldest);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* A new connection from addr may take an unauthenticated slot: not when
 * half of them are taken and its address has its share already; when all
 * are taken, the oldest one goes. */
static bool preauth_room(struct server *s, const char *addr)
{
	int live, same;
	struct conn *oldest = preauth_scan(s, addr, &live, &same);

	if (2 * live >= s->o->max_conns && same >= PREAUTH_PER_ADDR(s->o->max_conns))
		return false;
	if (live >= s->o->max_conns) {
		if (!evictable(s, oldest))
			return false;
		oldest->kicked = true;
		shutdown(oldest->fd, SHUT_RDWR);
	}
	return true;
}

/* The request that follows HELLO selects what this connection does; *ran
 * gets the request that ran, if any. */
static int dispatch(struct conn *cn, struct chan *c, const struct req_ctx *ctx,
		    const struct req_entry **ran, ferr_t *err)
{
	struct frame_buf fb = {0};
	const struct req_entry *req;
	char mid[65] = "";
	bool bound = false;
	int ret;

	if (frame_recv(c, &fb, err) < 0) {
		if (err->code == FX_INTEGRITY)
			session_send_error(c, err);
		frame_buf_free(&fb);
		return -1;
	}
	req = find_request(cn->srv, fb.h.type);
	if (req &&
	    (authorize(cn->srv, req, ctx->peer_name, err) < 0 || admit(cn, fb.h.type, err) < 0 ||
	     bind_check(cn->srv->binds, &fb, ctx->peer_name, mid, sizeof(mid), &bound, err) < 0)) {
		session_send_error(c, err);
		ret = -1;
	} else if (req) {
		*ran = req;
		ret = req->h->fn(c, &fb, ctx, req->state, err);
		if (bound)
			bind_end(cn->srv->binds, mid);
	} else {
		ret = ferr_set(err, FX_USAGE, "unsupported request %s (type %u)",
			       wire_type_name(fb.h.type), fb.h.type);
		session_send_error(c, err);
	}
	frame_buf_free(&fb);
	return ret;
}

static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	struct server *s = cn->srv;
	const struct req_entry *ran = NULL;
	struct session_info si;
	ferr_t err = {0};
	char peer[128], cname[256] = "";
	struct req_ctx ctx = {.state_dir = s->o->state_dir,
			      .host_name = s->o->name,
			      .tls_dir = s->o->tls_dir,
			      .timeout_ms = s->o->timeout_ms,
			      .peer = peer,
			      .peer_name = cname,
			      .lock = set_lock,
			      .unlock = set_unlock,
			      .lock_arg = cn,
			      .events = &s->rep.sink};
	struct chan *c;
	int rc = -1;

	snprintf(peer, sizeof(peer), "%s", chan_peer(cn->raw));
	c = chan_tls_server(cn->raw, s->tls, s->o->timeout_ms, &err);
	if (c) {
		snprintf(cname, sizeof(cname), "%s", chan_tls_peer_cn(c));
		if (session_hello_server(c, s->o->name, &si, &err) == 0)
			rc = dispatch(cn, c, &ctx, &ran, &err);
		if (rc < 0 && !chan_error(c))
			linger(c->fd);
		else
			chan_shutdown(c);
	}
	if (rc < 0 && !(ran && ran->h->reports_outcome))
		report_failure(s, ran, peer, cname, &err);
	pthread_mutex_lock(&s->lock);
	chan_close(c);
	set_state(s, cn, C_FREE);
	cn->used = false;
	cn->fd = -1;
	s->active--;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* The source address of a peer "ADDR:PORT" or "[ADDR]:PORT". */
static void peer_addr(const char *peer, char *out, size_t size)
{
	const char *colon = strrchr(peer, ':');
	size_t n = colon ? (size_t)(colon - peer) : strlen(peer);

	snprintf(out, size, "%.*s", (int)n, peer);
}

/* A free slot for a new connection, or NULL when it must be turned away. */
static struct conn *take_slot(struct server *s, const char *addr)
{
	if (!preauth_room(s, addr))
		return NULL;
	for (int i = 0; i < s->n_conns; i++)
		if (!s->conns[i].used)
			return &s->conns[i];
	return NULL;
}

static void accept_one(struct server *s, int lfd)
{
	ferr_t err = {0};
	struct chan *raw = chan_accept(lfd, &err);
	struct conn *cn = NULL;
	char addr[64];
	pthread_attr_t at;
	pthread_t tid;

	if (!raw)
		return;
	peer_addr(chan_peer(raw), addr, sizeof(addr));
	pthread_mutex_lock(&s->lock);
	cn = take_slot(s, addr);
	if (!cn) {
		pthread_mutex_unlock(&s->lock);
		chan_close(raw);
		return;
	}
	cn->used = true;
	cn->raw = raw;
	cn->fd = raw->fd;
	cn->kicked = false;
	cn->deadline_ns = now_ns() + (uint64_t)s->handshake_ms * 1000000ULL;
	snprintf(cn->addr, sizeof(cn->addr), "%s", addr);
	set_state(s, cn, C_PREAUTH);
	cn->set_id[0] = '\0';
	s->active++;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 1 << 20);
	if (pthread_create(&tid, &at, conn_main, cn) != 0) {
		chan_close(raw);
		set_state(s, cn, C_FREE);
		cn->used = false;
		s->active--;
	}
	pthread_attr_destroy(&at);
	pthread_mutex_unlock(&s->lock);
}

static void report_reload(struct server *s, const char *what, const char *path, int rules,
			  const ferr_t *err)
{
	struct event e;

	ev_init(&e, "reloaded");
	ev_bool(&e, "ok", err == NULL);
	ev_str(&e, "what", what);
	ev_str(&e, "path", path);
	if (err) {
		ev_int(&e, "code", err->code);
		ev_str(&e, "error", err->msg);
	} else if (rules >= 0) {
		ev_int(&e, "rules", rules);
	}
	report_event(&e, &s->rep);
}

/* (Re)load the configuration file when it changed or force; on an error the
 * one in force stays (at start: the agent does not start). */
static int load_config(struct server *s, bool force, ferr_t *err)
{
	const char *names[32];
	struct policy *p, *old;
	struct stat st;
	size_t n = 0;

	if (!s->o->config)
		return 0;
	if (stat(s->o->config, &st) < 0)
		memset(&st, 0, sizeof(st)); /* gone: reported once */
	if (!force && st.st_mtim.tv_sec == s->config_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == s->config_mtime.tv_nsec)
		return 0;
	for (size_t i = 0; i < s->n_reqs && n < 32; i++)
		names[n++] = s->reqs[i].h->name;
	s->config_mtime = st.st_mtim; /* a failure is reported once per change */
	if (!(p = policy_load(s->o->config, names, n, err)))
		return -1;
	pthread_mutex_lock(&s->lock);
	old = s->policy;
	s->policy = p;
	pthread_mutex_unlock(&s->lock);
	mig_state_set_intake(s->mig, policy_intake(p));
	policy_free(old);
	return 1;
}

/* The configuration file and the CRL changed (or SIGHUP): reload them. */
static void reload(struct server *s)
{
	bool force = hup_flag;
	ferr_t err = {0};
	int r;

	hup_flag = 0;
	r = load_config(s, force, &err);
	if (r != 0)
		report_reload(s, "config", s->o->config, (int)policy_rules(s->policy),
			      r < 0 ? &err : NULL);
	memset(&err, 0, sizeof(err));
	r = tls_ctx_reload(s->tls, &err);
	if (r != 0)
		report_reload(s, "crl", s->o->tls_dir, -1, r < 0 ? &err : NULL);
	memset(&err, 0, sizeof(err));
	r = tls_ctx_reload_identity(s->tls, &err);
	if (r != 0)
		report_reload(s, "certificate", s->o->tls_dir, -1, r < 0 ? &err : NULL);
}

static void serve_loop(struct server *s, int lfd)
{
	while (!stop_flag) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};

		reap_poll();
		reload(s);
		kick_late(s);
		if (!can_accept(s)) {
			poll(NULL, 0, 50);
			continue;
		}
		if (stop_flag || poll(&p, 1, 200) <= 0)
			continue;
		accept_one(s, lfd);
	}
	/* stop: wake every connection and wait for the threads */
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n_conns; i++)
		if (s->conns[i].used)
			shutdown(s->conns[i].fd, SHUT_RDWR);
	while (s->active > 0)
		pthread_cond_wait(&s->changed, &s->lock);
	pthread_mutex_unlock(&s->lock);
}
/* Before listening: tidy the state directory, build the agent's state. */
static int server_setup(struct server *s, ferr_t *err)
{
	const struct serve_opts *o = s->o;
	char dir[4096];
	int n;

	if (xsnprintf(dir, sizeof(dir), err, "%s/incoming", o->state_dir) < 0 ||
	    fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	n = store_clean_stale(o->state_dir, (int64_t)o->keep_incoming_h * 3600, err);
	if (n < 0)
		return -1;
	if (n > 0) {
		struct event e;
		ev_init(&e, "cleaned");
		ev_int(&e, "incoming_sets", n);
		ev_int(&e, "older_than_h", o->keep_incoming_h);
		report_event(&e, &s->rep);
	}
	s->binds = bind_tab_new(BIND_CAP, BIND_KEEP_S, err);
	if (!s->binds)
		return -1;
	s->mig = mig_state_new((unsigned)o->max_conns, err);
	if (!s->mig || mig_state_start(s->mig, o->state_dir, err) < 0 || build_requests(s, err) < 0)
		return -1;
	s->tls = tls_ctx_new(o->tls_dir, o->name, true, err);
	if (!s->tls || load_config(s, true, err) < 0)
		return -1;
	/* unauthenticated + working + reserved, and room for kicked connections
	 * that have not ended yet */
	s->n_conns = 3 * o->max_conns + RESERVED_CONNS;
	s->handshake_ms = o->timeout_ms < HANDSHAKE_MS ? o->timeout_ms : HANDSHAKE_MS;
	s->conns = calloc((size_t)s->n_conns, sizeof(*s->conns));
	if (!s->conns)
		return ferr_set(err, FX_FAIL, "out of memory");
	for (int i = 0; i < s->n_conns; i++) {
		s->conns[i].srv = s;
		s->conns[i].fd = -1;
	}
	return 0;
}

/* After the last connection ended (or when setup failed half way). */
static void server_free(struct server *s)
{
	free(s->conns);
	tls_ctx_free(s->tls);
	free(s->reqs);
	mig_state_free(s->mig);
	bind_tab_free(s->binds);
	policy_free(s->policy);
}

static void report_status(struct server *s, const char *name)
{
	struct event e;

	ev_init(&e, name);
	if (!strcmp(name, "listening")) {
		ev_str(&e, "host", s->o->host);
		ev_uint(&e, "port", s->o->port);
		ev_str(&e, "name", s->o->name);
		ev_str(&e, "state_dir", s->o->state_dir);
	}
	report_event(&e, &s->rep);
}

int serve_run(const struct serve_opts *o, ferr_t *err)
{
	struct server s = {.o = o};
	struct sigaction sa = {.sa_handler = on_signal};
	int lfd = -1;

	reporter_init(&s.rep, o->json);
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.changed, NULL);
	if (server_setup(&s, err) < 0 || (lfd = chan_tcp_listen(o->host, o->port, 64, err)) < 0 ||
	    hq_record_agent(o->state_dir, o->host, o->port, err) < 0) {
		if (lfd >= 0)
			close(lfd);
		server_free(&s);
		pthread_mutex_destroy(&s.lock);
		pthread_cond_destroy(&s.changed);
		reporter_fini(&s.rep);
		return -1;
	}
	stop_flag = 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	report_status(&s, "listening");
	serve_loop(&s, lfd);
	hq_forget_agent(o->state_dir);
	close(lfd);
	report_status(&s, "stopped");
	server_free(&s);
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.changed);
	reporter_fini(&s.rep);
	return 0;
}
