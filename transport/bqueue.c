/* Bounded queue: a ring under one mutex (which protects every field). */
#include "transport/bqueue.h"

#include <pthread.h>
#include <stdlib.h>

struct bqueue {
	pthread_mutex_t lock;
	pthread_cond_t not_full, not_empty;
	void **ring;
	size_t cap, head, count;
	bool closed;
};

struct bqueue *bq_new(size_t cap)
{
	struct bqueue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->ring = calloc(cap, sizeof(void *));
	if (!q->ring) {
		free(q);
		return NULL;
	}
	q->cap = cap;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_full, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	return q;
}

void bq_free(struct bqueue *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_full);
	pthread_cond_destroy(&q->not_empty);
	free(q->ring);
	free(q);
}

bool bq_push(struct bqueue *q, void *item)
{
	bool ok;

	pthread_mutex_lock(&q->lock);
	while (q->count == q->cap && !q->closed)
		pthread_cond_wait(&q->not_full, &q->lock);
	ok = !q->closed;
	if (ok) {
		q->ring[(q->head + q->count) % q->cap] = item;
		q->count++;
		pthread_cond_signal(&q->not_empty);
	}
	pthread_mutex_unlock(&q->lock);
	return ok;
}

static void *take(struct bqueue *q)
{
	void *item = q->ring[q->head];

	q->head = (q->head + 1) % q->cap;
	q->count--;
	pthread_cond_signal(&q->not_full);
	return item;
}

void *bq_pop(struct bqueue *q)
{
	void *item = NULL;

	pthread_mutex_lock(&q->lock);
	while (q->count == 0 && !q->closed)
		pthread_cond_wait(&q->not_empty, &q->lock);
	if (q->count)
		item = take(q);
	pthread_mutex_unlock(&q->lock);
	return item;
}

void *bq_trypop(struct bqueue *q)
{
	void *item = NULL;

	pthread_mutex_lock(&q->lock);
	if (q->count)
		item = take(q);
	pthread_mutex_unlock(&q->lock);
	return item;
}

void bq_close(struct bqueue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->not_full);
	pthread_cond_broadcast(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
}
