/* Destination: migrations between MIG_RESTORED and the source's decision
 * (dst_indoubt.h). The connection thread that holds a restored tenant
 * registers its migration here; a MIGRATE_RESOLVE arriving on another
 * connection records the source's decision and kicks the holder's (possibly
 * stalled) socket. Recent outcomes are remembered so that a source retrying
 * after a lost MIG_DONE learns what happened.
 *
 * Locking: t->lock protects everything in the table (the pending list, each
 * entry's fields, the outcome ring); t->changed is signalled on every
 * decision and every finish. An entry is freed only by indoubt_finish, which
 * its holder calls; other threads never keep an entry pointer across a wait. */
#define LOG_PREFIX "handover"
#include "migrate/dst_indoubt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct pending {
	struct pending *next;
	char id[65];
	int fd;	      /* the holder's socket, shut down when a decision arrives */
	int decision; /* -1 none yet, 0 abort, 1 commit */
};

struct outcome {
	char id[65];
	int outcome; /* enum indoubt_outcome */
	struct indoubt_remap rm;
};

struct indoubt {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct pending *pending;  /* migrations in doubt */
	struct outcome *outcomes; /* ring of the last n_ring outcomes */
	unsigned n_ring, n_outcomes;
};

struct indoubt *indoubt_new(unsigned remember, ferr_t *err)
{
	struct indoubt *t = calloc(1, sizeof(*t));

	if (remember < 1)
		remember = 1;
	if (t)
		t->outcomes = calloc(remember, sizeof(*t->outcomes));
	if (!t || !t->outcomes) {
		free(t);
		ferr_set(err, FX_FAIL, "out of memory");
		return NULL;
	}
	t->n_ring = remember;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->changed, NULL);
	return t;
}

void indoubt_free(struct indoubt *t)
{
	if (!t)
		return;
	while (t->pending) {
		struct pending *p = t->pending;
		t->pending = p->next;
		free(p);
	}
	free(t->outcomes);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->changed);
	free(t);
}

static struct pending *find(struct indoubt *t, const char *id)
{
	for (struct pending *p = t->pending; p; p = p->next)
		if (!strcmp(p->id, id))
			return p;
	return NULL;
}

int indoubt_register(struct indoubt *t, const char *id, int fd)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	snprintf(p->id, sizeof(p->id), "%s", id);
	p->fd = fd;
	p->decision = -1;
	pthread_mutex_lock(&t->lock);
	p->next = t->pending;
	t->pending = p;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int indoubt_wait(struct indoubt *t, const char *id, int seconds)
{
	struct timespec ts;
	struct pending *p;
	int d = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&t->lock);
	p = find(t, id); /* ours: only our indoubt_finish frees it */
	if (p) {
		p->fd = -1; /* the session is gone: nothing to kick any more */
		while (p->decision < 0 && pthread_cond_timedwait(&t->changed, &t->lock, &ts) == 0)
			;
		d = p->decision;
	}
	pthread_mutex_unlock(&t->lock);
	return d;
}

int indoubt_peek(struct indoubt *t, const char *id)
{
	struct pending *p;
	int d = -1;

	pthread_mutex_lock(&t->lock);
	p = find(t, id);
	if (p)
		d = p->decision;
	pthread_mutex_unlock(&t->lock);
	return d;
}

void indoubt_finish(struct indoubt *t, const char *id, enum indoubt_outcome outcome,
		    const struct indoubt_remap *rm)
{
	pthread_mutex_lock(&t->lock);
	for (struct pending **pp = &t->pending; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->id, id)) {
			struct pending *p = *pp;
			*pp = p->next;
			free(p);
			break;
		}
	}
	struct outcome *o = &t->outcomes[t->n_outcomes++ % t->n_ring];
	snprintf(o->id, sizeof(o->id), "%s", id);
	o->outcome = outcome;
	o->rm = rm ? *rm : (struct indoubt_remap){0};
	pthread_cond_broadcast(&t->changed);
	pthread_mutex_unlock(&t->lock);
}

/* The remembered outcome of id (its re-map into *rm), or INDOUBT_UNKNOWN.
 * Under t->lock. */
static enum indoubt_outcome remembered(const struct indoubt *t, const char *id,
				       struct indoubt_remap *rm)
{
	for (unsigned k = 0; k < t->n_ring && k < t->n_outcomes; k++) {
		const struct outcome *o = &t->outcomes[(t->n_outcomes - 1 - k) % t->n_ring];
		if (!strcmp(o->id, id)) {
			*rm = o->rm;
			return (enum indoubt_outcome)o->outcome;
		}
	}
	return INDOUBT_UNKNOWN;
}

enum indoubt_outcome indoubt_decide(struct indoubt *t, const char *id, bool commit, int wait_s,
				    struct indoubt_remap *rm)
{
	struct indoubt_remap none;
	struct timespec ts;
	enum indoubt_outcome out = INDOUBT_UNKNOWN;
	struct pending *p;

	if (rm)
		*rm = (struct indoubt_remap){0};
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_s;
	pthread_mutex_lock(&t->lock);
	p = find(t, id);
	if (p) {
		p->decision = commit ? 1 : 0;
		if (p->fd >= 0)
			shutdown(p->fd, SHUT_RDWR);
		pthread_cond_broadcast(&t->changed);
	}
	/* wait until the holder reports how it ended */
	for (;;) {
		out = remembered(t, id, rm ? rm : &none);
		if (out != INDOUBT_UNKNOWN || !find(t, id))
			break;
		if (pthread_cond_timedwait(&t->changed, &t->lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&t->lock);
	return out;
}
