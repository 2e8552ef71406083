/* The agent's own state (migrate/dst_indoubt.h, migrate/dst_lazy.h) and the
 * events its handlers report (lib/event.h): tables owned by the caller, used
 * from several threads. No CRIU, no network. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/event.h"
#include "lib/fsutil.h"
#include "migrate/dst_indoubt.h"
#include "migrate/dst_lazy.h"
#include "unit.h"

struct decider {
	struct indoubt *t;
	const char *id;
	bool commit;
	enum indoubt_outcome out;
	struct indoubt_remap rm;
};

static void *decide_main(void *arg)
{
	struct decider *d = arg;

	d->out = indoubt_decide(d->t, d->id, d->commit, 10, &d->rm);
	return NULL;
}

/* The holder waits; a MIGRATE_RESOLVE on another thread decides; the holder
 * finishes; the resolver learns the outcome and the tenant's re-mapped ID
 * range with it. */
static void test_indoubt_decide(void)
{
	struct indoubt *t = indoubt_new(4, NULL);
	struct decider d = {t, "m1", true, INDOUBT_UNKNOWN, {0}};
	struct indoubt_remap rm = {100000, 300000, 65536}, got = {1, 1, 1};
	pthread_t th;
	int sv[2];

	CHECK(t != NULL);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(indoubt_register(t, "m1", sv[0]) == 0);
	CHECK(indoubt_peek(t, "m1") == -1);
	CHECK(pthread_create(&th, NULL, decide_main, &d) == 0);
	CHECK(indoubt_wait(t, "m1", 10) == 1);
	CHECK(indoubt_peek(t, "m1") == 1);
	indoubt_finish(t, "m1", INDOUBT_RUNNING, &rm);
	pthread_join(th, NULL);
	CHECK(d.out == INDOUBT_RUNNING);
	CHECK(d.rm.from == 100000 && d.rm.to == 300000 && d.rm.count == 65536);
	/* a retry after a lost MIG_DONE gets the same answer, at once */
	CHECK(indoubt_decide(t, "m1", true, 10, &got) == INDOUBT_RUNNING);
	CHECK(got.from == 100000 && got.to == 300000 && got.count == 65536);
	CHECK(indoubt_decide(t, "m1", true, 10, NULL) == INDOUBT_RUNNING);
	CHECK(indoubt_decide(t, "m2", true, 0, &got) == INDOUBT_UNKNOWN && got.to == 0);
	close(sv[0]);
	close(sv[1]);
	indoubt_free(t);
}

/* Any number of migrations in doubt; the last `remember` outcomes kept. */
static void test_indoubt_many(void)
{
	struct indoubt *t = indoubt_new(8, NULL);
	struct indoubt_remap got;
	char id[32];

	for (int i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		CHECK(indoubt_register(t, id, -1) == 0);
	}
	for (int i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		CHECK(indoubt_peek(t, id) == -1);
		indoubt_finish(t, id, i % 2 ? INDOUBT_RUNNING : INDOUBT_DISCARDED, NULL);
	}
	CHECK(indoubt_decide(t, "m99", true, 1, &got) == INDOUBT_RUNNING && got.to == 0);
	CHECK(indoubt_decide(t, "m98", true, 1, NULL) == INDOUBT_DISCARDED);
	CHECK(indoubt_decide(t, "m3", true, 1, NULL) == INDOUBT_UNKNOWN); /* forgotten */
	CHECK(indoubt_decide(t, "never", false, 1, NULL) == INDOUBT_UNKNOWN);
	/* the agent settled one at its start: remembered too */
	indoubt_finish(t, "old", INDOUBT_RUNNING, NULL);
	CHECK(indoubt_decide(t, "old", true, 1, NULL) == INDOUBT_RUNNING);
	indoubt_free(t);
}

/* Dropping a post-copy migration closes the socket nobody took and removes
 * its images; the table frees what is left. */
static void test_lazy_table(void)
{
	char dir[] = "/tmp/ferry-unit-lazy-XXXXXX", img[PATH_MAX];
	struct lazy_tab *t = lazy_tab_new(NULL);
	int a[2], b[2];
	char c;

	CHECK(t != NULL && mkdtemp(dir) != NULL);
	snprintf(img, sizeof(img), "%s/m1", dir);
	CHECK(mkdir(img, 0700) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0);
	CHECK(lazy_register(t, "m1", a[0], true, img) == 0);
	CHECK(lazy_register(t, "m2", b[0], false, "") == 0);
	lazy_set_daemon(t, "m1", -1);
	lazy_drop(t, "m1", false);
	CHECK(read(a[1], &c, 1) == 0); /* our end was closed */
	CHECK(access(img, F_OK) != 0);
	lazy_drop(t, "unknown", true); /* nothing happens */
	lazy_tab_free(t);	       /* closes m2's socket */
	CHECK(read(b[1], &c, 1) == 0);
	close(a[1]);
	close(b[1]);
	fs_rm_rf(dir, NULL);
}

static void collect(const struct event *e, void *arg)
{
	struct event *copy = arg;

	*copy = *e;
}

static void test_events(void)
{
	struct event e, got = {0};
	struct ev_sink sink = {collect, &got};
	char key[EV_MAX_FIELDS + 2][8];

	ev_init(&e, "migration");
	ev_bool(&e, "ok", true);
	ev_str(&e, "tenant", "web");
	ev_str(&e, "none", NULL);
	ev_int(&e, "pid", -3);
	ev_uint(&e, "bytes", 1ULL << 40);
	ev_double(&e, "ms", 1.5);
	ev_emit(&sink, &e);
	ev_emit(NULL, &e); /* dropped */
	CHECK(!strcmp(got.name, "migration") && got.n == 6);
	CHECK(ev_get_bool(&got, "ok") && !strcmp(ev_get_str(&got, "tenant"), "web"));
	CHECK(!strcmp(ev_get_str(&got, "none"), "") && !strcmp(ev_get_str(&got, "absent"), ""));
	CHECK(ev_get_int(&got, "pid") == -3 && ev_get_uint(&got, "bytes") == 1ULL << 40);
	CHECK(ev_get_double(&got, "ms") == 1.5 && ev_get_double(&got, "pid") == -3);
	CHECK(ev_get(&got, "absent") == NULL && !ev_get_bool(&got, "tenant"));
	ev_init(&e, "full");
	for (int i = 0; i < EV_MAX_FIELDS + 2; i++) {
		snprintf(key[i], sizeof(key[i]), "k%d", i);
		ev_int(&e, key[i], i);
	}
	CHECK(e.n == EV_MAX_FIELDS && ev_get(&e, key[EV_MAX_FIELDS]) == NULL);
}

int main(void)
{
	RUN(test_indoubt_decide);
	RUN(test_indoubt_many);
	RUN(test_lazy_table);
	RUN(test_events);
	UNIT_DONE();
}
