/* Pre-copy's pure parts (migrate/precopy.c): the round-stopping rule, the
 * rounds' directory names and parent links, the order the destination
 * accepts rounds in; and the destination refusing rounds out of order, a
 * final dump before any round and other frames before it starts anything
 * (migrate/dst_precopy.c). The rounds themselves need CRIU with soft-dirty:
 * tests/integration/migrate_precopy.sh. */
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/chan_sock.h"
#include "transport/frame.h"
#include "lib/fsutil.h"
#include "migrate/handover.h"
#include "lib/json.h"
#include "cmd/migrate_report.h"
#include "migrate/precopy.h"
#include "migrate/dst_precopy.h"
#include "unit.h"
#include "transport/wire.h"

#define MIB (1ULL << 20)

static void test_policy(void)
{
	struct precopy_policy p;

	precopy_policy_init(&p, 0, 0);
	CHECK(p.max_rounds == PRECOPY_ROUNDS_DEFAULT);
	CHECK(p.shrink_pct == PRECOPY_SHRINK_DEFAULT);
	CHECK(p.small_bytes == PRECOPY_SMALL_BYTES);
	precopy_policy_init(&p, 100, 50);
	CHECK(p.max_rounds == PRECOPY_ROUNDS_MAX);
	CHECK(p.shrink_pct == 50);
	precopy_policy_init(&p, 3, 0);
	CHECK(p.max_rounds == 3);
}

static void test_next(void)
{
	struct precopy_policy p;
	uint64_t b[PRECOPY_ROUNDS_MAX];

	precopy_policy_init(&p, 5, 80);
	CHECK(precopy_next(&p, b, 0) == PRECOPY_CONTINUE);
	/* the first round carries the bulk: go on unless it was tiny */
	b[0] = 256 * MIB;
	CHECK(precopy_next(&p, b, 1) == PRECOPY_CONTINUE);
	b[0] = MIB;
	CHECK(precopy_next(&p, b, 1) == PRECOPY_STOP_SMALL);
	b[0] = MIB + 1;
	CHECK(precopy_next(&p, b, 1) == PRECOPY_CONTINUE);
	/* shrinking: on; exactly at the limit: on; above: stop; growing: stop */
	b[0] = 100 * MIB;
	b[1] = 50 * MIB;
	CHECK(precopy_next(&p, b, 2) == PRECOPY_CONTINUE);
	b[1] = 80 * MIB;
	CHECK(precopy_next(&p, b, 2) == PRECOPY_CONTINUE);
	b[1] = 80 * MIB + 1;
	CHECK(precopy_next(&p, b, 2) == PRECOPY_STOP_NOT_SHRINKING);
	b[1] = 200 * MIB;
	CHECK(precopy_next(&p, b, 2) == PRECOPY_STOP_NOT_SHRINKING);
	/* a small round ends it whatever the ratio */
	b[1] = MIB / 2;
	CHECK(precopy_next(&p, b, 2) == PRECOPY_STOP_SMALL);
	/* a tenant that keeps dirtying a fixed set: round 2 == round 3 */
	b[0] = 1024 * MIB;
	b[1] = 8 * MIB;
	b[2] = 8 * MIB;
	CHECK(precopy_next(&p, b, 2) == PRECOPY_CONTINUE);
	CHECK(precopy_next(&p, b, 3) == PRECOPY_STOP_NOT_SHRINKING);
	/* the cap wins even while it shrinks */
	for (unsigned i = 0; i < 5; i++)
		b[i] = (1024 * MIB) >> i;
	CHECK(precopy_next(&p, b, 4) == PRECOPY_CONTINUE);
	CHECK(precopy_next(&p, b, 5) == PRECOPY_STOP_MAX_ROUNDS);
	precopy_policy_init(&p, 1, 80);
	b[0] = 1024 * MIB;
	CHECK(precopy_next(&p, b, 1) == PRECOPY_STOP_MAX_ROUNDS);
	/* huge sizes do not overflow the ratio */
	precopy_policy_init(&p, 5, 100);
	b[0] = 1ULL << 56;
	b[1] = 1ULL << 56;
	CHECK(precopy_next(&p, b, 2) == PRECOPY_CONTINUE);
	CHECK(!strcmp(precopy_stop_str(PRECOPY_STOP_NOT_SHRINKING), "not-shrinking"));
	CHECK(!strcmp(precopy_stop_str(PRECOPY_STOP_MAX_ROUNDS), "max-rounds"));
	CHECK(!strcmp(precopy_stop_str(PRECOPY_STOP_SMALL), "dirty-set-small"));
}

static void test_names(void)
{
	char b[64], tiny[6];

	CHECK(precopy_round_name(1, b, sizeof(b)) == 0 && !strcmp(b, "round-1"));
	CHECK(fs_name_is_safe(b, strlen(b)));
	CHECK(precopy_round_name(PRECOPY_ROUNDS_MAX, b, sizeof(b)) == 0 && !strcmp(b, "round-16"));
	CHECK(precopy_round_name(0, b, sizeof(b)) < 0);
	CHECK(precopy_round_name(12, tiny, sizeof(tiny)) < 0);
	/* between rounds: the sibling directory */
	CHECK(precopy_parent("..", 0, b, sizeof(b)) == 0 && b[0] == '\0');
	CHECK(precopy_parent("..", 2, b, sizeof(b)) == 0 && !strcmp(b, "../round-2"));
	/* destination's final images: the rounds are their subdirectories */
	CHECK(precopy_parent("", 3, b, sizeof(b)) == 0 && !strcmp(b, "round-3"));
	CHECK(precopy_parent(NULL, 3, b, sizeof(b)) == 0 && !strcmp(b, "round-3"));
	CHECK(fs_relpath_is_safe(b, strlen(b)));
	/* source's final images: the rounds live beside them */
	CHECK(precopy_parent("../pre-0a1b", 4, b, sizeof(b)) == 0 &&
	      !strcmp(b, "../pre-0a1b/round-4"));
	CHECK(precopy_parent("..", 2, tiny, sizeof(tiny)) < 0);
}

static void test_round_order(void)
{
	CHECK(precopy_round_ok(0, 1, false));
	CHECK(precopy_round_ok(1, 2, false));
	CHECK(!precopy_round_ok(0, 0, false));
	CHECK(!precopy_round_ok(0, 2, false)); /* a gap */
	CHECK(!precopy_round_ok(2, 2, false)); /* a replay */
	CHECK(!precopy_round_ok(3, 1, false));
	CHECK(!precopy_round_ok(0, 1, true)); /* final before any round */
	CHECK(precopy_round_ok(1, 2, true));
	CHECK(precopy_round_ok(PRECOPY_ROUNDS_MAX - 1, PRECOPY_ROUNDS_MAX, false));
	CHECK(!precopy_round_ok(PRECOPY_ROUNDS_MAX, PRECOPY_ROUNDS_MAX + 1, false));
	CHECK(precopy_round_ok(PRECOPY_ROUNDS_MAX, PRECOPY_ROUNDS_MAX + 1, true));
	CHECK(!precopy_round_ok(UINT_MAX, 0, true)); /* wraps */
}

static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* The source's frames are already in the socket when the destination reads:
 * it answers ACCEPT, then must refuse without creating anything. */
static int receive_after(uint8_t type, unsigned round, bool final, ferr_t *e)
{
	Ferry__Wire__MigrateRound m = FERRY__WIRE__MIGRATE_ROUND__INIT;
	char tmpl[] = "/tmp/ferry-precopy-XXXXXX", *dir = mkdtemp(tmpl);
	struct ckpt_env env = {.tool = "/nonexistent/criu"};
	struct precopy_dst_opts o = {
	    .ckpt = &ckpt_criu, .env = &env, .migration_id = "t", .timeout_ms = 2000};
	struct frame_buf fb = {0};
	struct chan *src, *dst;
	int sv[2], r;

	CHECK(dir != NULL);
	o.dir = dir;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	src = chan_fd_new(sv[0], "src", e);
	dst = chan_fd_new(sv[1], "dst", e);
	CHECK(src && dst);
	m.round = round;
	m.has_final = final;
	m.final = final;
	if (type == MIG_ROUND)
		frame_send_pb(src, MIG_ROUND, &m.base);
	else
		frame_send(src, type, 0, 0, NULL, 0);
	chan_flush(src);
	r = precopy_receive(dst, &o, e);
	CHECK(frame_recv(src, &fb, NULL) == 0 && fb.h.type == MIG_ACCEPT);
	CHECK(dir_entries(dir) == 0);
	frame_buf_free(&fb);
	chan_close(src);
	chan_close(dst);
	fs_rm_rf(dir, NULL);
	return r;
}

static void test_receive_refuses(void)
{
	ferr_t e = {0};

	CHECK(receive_after(MIG_ROUND, 2, false, &e) < 0 && e.code == FX_INTEGRITY);
	CHECK(strstr(e.msg, "out of order") != NULL);
	ferr_clear(&e);
	CHECK(receive_after(MIG_ROUND, 1, true, &e) < 0 && e.code == FX_INTEGRITY);
	ferr_clear(&e);
	CHECK(receive_after(MIG_ROUND, 0, false, &e) < 0 && e.code == FX_INTEGRITY);
	ferr_clear(&e);
	CHECK(receive_after(MIG_ABORT, 0, false, &e) < 0 && e.code == FX_PEER);
	ferr_clear(&e);
	CHECK(receive_after(MIG_RESTORE, 0, false, &e) < 0);
}

/* The --json report of a pre-copy migration: every round, the final dump,
 * why the rounds stopped (cmd/migrate_report.c). */
static void test_report_json(void)
{
	struct migrate_result r = {0};
	ferr_t e = {0};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct jw w;

	snprintf(r.tenant, sizeof(r.tenant), "t");
	r.mode = MIG_PRE_COPY;
	r.moved = true;
	r.n_rounds = 2;
	r.rounds[0] = (struct mig_round){
	    .ms = 900, .frozen_ms = 40, .pages = 65536, .raw = 268435456, .payload = 100000000};
	r.rounds[1] = (struct mig_round){
	    .ms = 30, .frozen_ms = 2, .pages = 2048, .raw = 8388608, .payload = 4000000};
	r.final_round = (struct mig_round){.ms = 50, .raw = 7340032, .payload = 3000000};
	snprintf(r.precopy_stop, sizeof(r.precopy_stop), "not-shrinking");
	CHECK(f != NULL);
	jw_init(&w, f);
	migrate_report_json(&w, NULL, &r, 0, &e);
	jw_finish(&w);
	fclose(f);
	CHECK(buf && strstr(buf, "\"precopy\""));
	CHECK(buf && strstr(buf, "\"stop_reason\":\"not-shrinking\""));
	CHECK(buf && strstr(buf, "\"round\":2"));
	CHECK(buf && strstr(buf, "\"raw_bytes\":268435456"));
	CHECK(buf && strstr(buf, "\"pages\":2048"));
	CHECK(buf && strstr(buf, "\"final\":{"));
	free(buf);
	/* other modes: no precopy object */
	buf = NULL;
	f = open_memstream(&buf, &len);
	r.mode = MIG_STOP_COPY;
	jw_init(&w, f);
	migrate_report_json(&w, NULL, &r, 0, &e);
	jw_finish(&w);
	fclose(f);
	CHECK(buf && !strstr(buf, "precopy"));
	free(buf);
}

int main(void)
{
	RUN(test_policy);
	RUN(test_next);
	RUN(test_names);
	RUN(test_round_order);
	RUN(test_receive_refuses);
	RUN(test_report_json);
	UNIT_DONE();
}
