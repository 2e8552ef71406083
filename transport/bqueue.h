/* Bounded blocking queue of pointers between two pipeline threads. Its
 * capacity bounds the memory in flight. Either side may close it: pop then
 * drains what is left and returns NULL; push after close fails. */
#ifndef FERRY_BQUEUE_H
#define FERRY_BQUEUE_H

#include <stdbool.h>
#include <stddef.h>

struct bqueue; /* opaque */

struct bqueue *bq_new(size_t cap);
void bq_free(struct bqueue *q);
/* Blocks while full; false when the queue was closed. */
bool bq_push(struct bqueue *q, void *item);
/* Blocks while empty; NULL once closed and drained. */
void *bq_pop(struct bqueue *q);
/* Non-blocking pop: NULL when empty. */
void *bq_trypop(struct bqueue *q);
void bq_close(struct bqueue *q);

#endif
