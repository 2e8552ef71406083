/* Destination: migrations between MIG_RESTORED and the source's decision.
 * A small table shared by the agent's connection threads: the thread that
 * holds a restored tenant registers its migration here; a MIGRATE_RESOLVE
 * arriving on another connection records the source's decision and kicks the
 * holder's (possibly stalled) socket. Recent outcomes are remembered so that
 * a source retrying after a lost MIG_DONE learns what happened. */
#define LOG_PREFIX "handover"
#include "migrate/dst_indoubt.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_PENDING  32
#define MAX_OUTCOMES 64

struct pending {
	bool used;
	char id[65];
	int fd;	      /* the holder's socket, shut down when a decision arrives */
	int decision; /* -1 none yet, 0 abort, 1 commit */
};

/* Everything below is protected by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static struct pending pending[MAX_PENDING];
static struct {
	char id[65];
	int outcome; /* enum indoubt_outcome */
} outcomes[MAX_OUTCOMES];
static unsigned n_outcomes;

static struct pending *find(const char *id)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (pending[i].used && !strcmp(pending[i].id, id))
			return &pending[i];
	return NULL;
}

int indoubt_register(const char *id, int fd)
{
	int ret = -1;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_PENDING && ret < 0; i++) {
		if (!pending[i].used) {
			pending[i].used = true;
			snprintf(pending[i].id, sizeof(pending[i].id), "%s", id);
			pending[i].fd = fd;
			pending[i].decision = -1;
			ret = 0;
		}
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

int indoubt_wait(const char *id, int seconds)
{
	struct timespec ts;
	struct pending *p;
	int d = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&lock);
	p = find(id);
	if (p) {
		p->fd = -1; /* the session is gone: nothing to kick any more */
		while (p->decision < 0 && pthread_cond_timedwait(&changed, &lock, &ts) == 0)
			;
		d = p->decision;
	}
	pthread_mutex_unlock(&lock);
	return d;
}

int indoubt_peek(const char *id)
{
	struct pending *p;
	int d = -1;

	pthread_mutex_lock(&lock);
	p = find(id);
	if (p)
		d = p->decision;
	pthread_mutex_unlock(&lock);
	return d;
}

void indoubt_finish(const char *id, enum indoubt_outcome outcome)
{
	struct pending *p;

	pthread_mutex_lock(&lock);
	p = find(id);
	if (p)
		p->used = false;
	unsigned i = n_outcomes++ % MAX_OUTCOMES;
	snprintf(outcomes[i].id, sizeof(outcomes[i].id), "%s", id);
	outcomes[i].outcome = outcome;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
}

enum indoubt_outcome indoubt_decide(const char *id, bool commit, int wait_s)
{
	struct timespec ts;
	enum indoubt_outcome out = INDOUBT_UNKNOWN;
	struct pending *p;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_s;
	pthread_mutex_lock(&lock);
	p = find(id);
	if (p) {
		p->decision = commit ? 1 : 0;
		if (p->fd >= 0)
			shutdown(p->fd, SHUT_RDWR);
		pthread_cond_broadcast(&changed);
	}
	/* wait until the holder reports how it ended */
	for (;;) {
		for (unsigned k = 0; k < MAX_OUTCOMES && k < n_outcomes; k++) {
			unsigned i = (n_outcomes - 1 - k) % MAX_OUTCOMES;
			if (!strcmp(outcomes[i].id, id)) {
				out = outcomes[i].outcome;
				goto done;
			}
		}
		if (!find(id))
			break;
		if (pthread_cond_timedwait(&changed, &lock, &ts) != 0)
			break;
	}
done:
	pthread_mutex_unlock(&lock);
	return out;
}
