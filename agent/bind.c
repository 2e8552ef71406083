/* The table binding migration ids to the peer that began them (bind.h). */
#include "agent/bind.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "proto/wire.pb-c.h"
#include "transport/wire.h"
#include "migrate/handover.h"

struct binding {
	char id[65];
	char peer[256];
	bool used;
	bool live;	   /* its BEGIN connection still runs */
	uint64_t ended_ns; /* when it stopped */
};

struct bind_tab {
	pthread_mutex_t lock;
	struct binding *b;
	unsigned cap;
	uint64_t keep_ns;
};

struct bind_tab *bind_tab_new(unsigned cap, unsigned keep_s, ferr_t *err)
{
	struct bind_tab *t = calloc(1, sizeof(*t));

	if (!t || !(t->b = calloc(cap, sizeof(*t->b)))) {
		free(t);
		ferr_set(err, FX_FAIL, "out of memory");
		return NULL;
	}
	t->cap = cap;
	t->keep_ns = (uint64_t)keep_s * 1000000000ULL;
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void bind_tab_free(struct bind_tab *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->b);
	free(t);
}

/* The migration id a migration-scoped request names, into id; 0 when the
 * request is not one, -1 when it cannot be read. */
static int request_id(const struct frame_buf *req, char *id, size_t size, ferr_t *err)
{
	const ProtobufCMessageDescriptor *d;
	const char *mid = NULL;
	void *msg;

	switch (req->h.type) {
	case MIG_REQ_BEGIN:
		d = &ferry__wire__migrate_begin__descriptor;
		break;
	case MIG_REQ_RESOLVE:
		d = &ferry__wire__migrate_resolve__descriptor;
		break;
	case MIG_REQ_PAGES:
		d = &ferry__wire__migrate_step__descriptor;
		break;
	default:
		return 0;
	}
	if (!(msg = wire_unpack(d, req->data, req->h.len, err)))
		return -1;
	if (req->h.type == MIG_REQ_BEGIN)
		mid = ((Ferry__Wire__MigrateBegin *)msg)->migration_id;
	else if (req->h.type == MIG_REQ_RESOLVE)
		mid = ((Ferry__Wire__MigrateResolve *)msg)->migration_id;
	else
		mid = ((Ferry__Wire__MigrateStep *)msg)->migration_id;
	if (!mid || !wire_set_id_ok(mid)) {
		wire_free(msg);
		return ferr_set(err, FX_INTEGRITY, "bad migration id");
	}
	snprintf(id, size, "%s", mid);
	wire_free(msg);
	return 1;
}

static struct binding *find(struct bind_tab *t, const char *id)
{
	for (unsigned i = 0; i < t->cap; i++)
		if (t->b[i].used && !strcmp(t->b[i].id, id))
			return &t->b[i];
	return NULL;
}

/* A free entry, or the oldest finished one kept longer than keep_ns. */
static struct binding *room(struct bind_tab *t)
{
	struct binding *old = NULL;
	uint64_t now = now_ns();

	for (unsigned i = 0; i < t->cap; i++) {
		struct binding *b = &t->b[i];
		if (!b->used)
			return b;
		if (!b->live && now - b->ended_ns > t->keep_ns &&
		    (!old || b->ended_ns < old->ended_ns))
			old = b;
	}
	return old;
}

static int bind_begin(struct bind_tab *t, const char *id, const char *peer, ferr_t *err)
{
	struct binding *b = find(t, id);

	if (b && strcmp(b->peer, peer))
		return ferr_set(err, FX_CONFLICT, "migration %s belongs to another peer", id);
	if (!b && !(b = room(t)))
		return ferr_set(err, FX_CONFLICT,
				"the agent is busy: too many migrations in progress");
	snprintf(b->id, sizeof(b->id), "%s", id);
	snprintf(b->peer, sizeof(b->peer), "%s", peer);
	b->used = true;
	b->live = true;
	return 0;
}

int bind_check(struct bind_tab *t, const struct frame_buf *req, const char *peer_name, char *id,
	       size_t id_size, bool *bound, ferr_t *err)
{
	struct binding *b;
	int r = request_id(req, id, id_size, err), ret = 0;

	*bound = false;
	if (r <= 0)
		return r;
	pthread_mutex_lock(&t->lock);
	if (req->h.type == MIG_REQ_BEGIN) {
		ret = bind_begin(t, id, peer_name, err);
		*bound = ret == 0;
	} else if ((b = find(t, id)) && strcmp(b->peer, peer_name)) {
		ret = ferr_set(err, FX_CONFLICT,
			       "migration %s was begun by another peer: only it may %s it", id,
			       req->h.type == MIG_REQ_RESOLVE ? "resolve" : "take the pages of");
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void bind_end(struct bind_tab *t, const char *id)
{
	struct binding *b;

	pthread_mutex_lock(&t->lock);
	if ((b = find(t, id))) {
		b->live = false;
		b->ended_ns = now_ns();
	}
	pthread_mutex_unlock(&t->lock);
}
