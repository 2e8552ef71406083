/* The timerfd fix-up of CRIU's files image (criu/imgfix.c). Entries are
 * encoded here by hand, field by field in CRIU's order, so that the test
 * also checks ferry's partial schema (proto/criu_files.proto) against the
 * layout CRIU writes: what is not changed must come back byte for byte. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/criu_files.pb-c.h"
#include "lib/fsutil.h"
#include "criu/imgfix.h"
#include "pbwire.h"
#include "unit.h"

#define MS 1000000ULL

struct tfd {
	uint32_t flags;
	uint64_t ticks, vsec, vnsec, isec, insec;
};

/* A timerfd file entry as CRIU writes it (every field, in number order). */
static void timerfd_entry(struct pb *e, uint32_t id, const struct tfd *t)
{
	struct pb fown = {0}, tfd = {0};

	for (unsigned f = 1; f <= 5; f++) /* uid, euid, signum, pid_type, pid */
		pb_u64(&fown, f, f == 4 ? 2 : 0);
	pb_u64(&tfd, 1, id);
	pb_u64(&tfd, 2, 02004002); /* O_RDWR | O_NONBLOCK | O_CLOEXEC */
	pb_bytes(&tfd, 3, fown.b, fown.n);
	pb_u64(&tfd, 4, 1); /* CLOCK_MONOTONIC */
	pb_u64(&tfd, 5, t->ticks);
	pb_u64(&tfd, 6, t->flags);
	pb_u64(&tfd, 7, t->vsec);
	pb_u64(&tfd, 8, t->vnsec);
	pb_u64(&tfd, 9, t->isec);
	pb_u64(&tfd, 10, t->insec);
	e->n = 0;
	pb_u64(e, 1, CRIU_FD_TYPE_TIMERFD);
	pb_u64(e, 2, id);
	pb_bytes(e, 12, tfd.b, tfd.n);
}

/* A regular file entry: fields ferry's schema does not know. */
static void reg_entry(struct pb *e, uint32_t id, const char *name)
{
	struct pb reg = {0};

	pb_u64(&reg, 1, id);
	pb_u64(&reg, 2, 0100000);
	pb_u64(&reg, 3, 0);
	pb_bytes(&reg, 5, name, strlen(name));
	e->n = 0;
	pb_u64(e, 1, 1);
	pb_u64(e, 2, id);
	pb_bytes(e, 3, reg.b, reg.n);
}

static void header(struct pb *img)
{
	img->n = 0;
	put_u32(img, CRIU_IMG_COMMON_MAGIC);
	put_u32(img, CRIU_FILES_MAGIC);
}

static const struct tfd expired_unread = {.ticks = 1, .insec = 100 * MS};
static const struct tfd armed = {.vnsec = 42 * MS, .insec = 100 * MS};
static const struct tfd disarmed = {.isec = 2}; /* interval kept, not armed */
static const struct tfd abs_expired = {.flags = 1, .ticks = 1, .insec = 100 * MS};
static const struct tfd oneshot_fired = {.ticks = 1};

/* Every entry ferry decodes and re-encodes unchanged comes back identical. */
static void test_roundtrip_entries(void)
{
	const struct tfd *all[] = {&expired_unread, &armed, &disarmed, &abs_expired,
				   &oneshot_fired};
	struct pb e;
	uint8_t out[4096];

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		timerfd_entry(&e, (uint32_t)i + 3, all[i]);
		FerryCriu__FileEntry *fe = ferry_criu__file_entry__unpack(NULL, e.n, e.b);
		CHECK(fe != NULL);
		if (!fe)
			continue;
		CHECK(fe->tfd && fe->tfd->ticks == all[i]->ticks);
		CHECK(ferry_criu__file_entry__get_packed_size(fe) == e.n);
		CHECK(ferry_criu__file_entry__pack(fe, out) == e.n && !memcmp(out, e.b, e.n));
		ferry_criu__file_entry__free_unpacked(fe, NULL);
	}
	reg_entry(&e, 1, "/bin/wl_timer");
	FerryCriu__FileEntry *fe = ferry_criu__file_entry__unpack(NULL, e.n, e.b);
	CHECK(fe && fe->type == 1 && !fe->tfd);
	if (fe) {
		CHECK(ferry_criu__file_entry__pack(fe, out) == e.n && !memcmp(out, e.b, e.n));
		ferry_criu__file_entry__free_unpacked(fe, NULL);
	}
}

/* An image with nothing to fix is left alone. */
static void test_nothing_to_fix(void)
{
	struct pb img, e;
	struct imgfix_stats st = {0};
	uint8_t *out = (uint8_t *)"x";
	size_t out_len = 1;
	ferr_t err = {0};

	header(&img);
	CHECK(imgfix_files_image(img.b, img.n, &out, &out_len, &st, &err) == 0);
	CHECK(out == NULL && out_len == 0);
	reg_entry(&e, 1, "/dev/null");
	add_entry(&img, &e);
	timerfd_entry(&e, 2, &armed);
	add_entry(&img, &e);
	timerfd_entry(&e, 3, &disarmed);
	add_entry(&img, &e);
	timerfd_entry(&e, 4, &abs_expired);
	add_entry(&img, &e);
	timerfd_entry(&e, 5, &oneshot_fired);
	add_entry(&img, &e);
	CHECK(imgfix_files_image(img.b, img.n, &out, &out_len, &st, &err) == 0);
	CHECK(out == NULL && st.timerfds_rearmed == 0);
}

/* Only the expired-unread periodic timer changes: it_value = interval. */
static void test_rearm(void)
{
	struct pb img, e, want;
	struct imgfix_stats st = {0};
	uint8_t *out = NULL;
	size_t out_len = 0, fixed_off, fixed_len;
	ferr_t err = {0};
	struct tfd after = expired_unread;

	header(&img);
	reg_entry(&e, 1, "/.ferry/console.log");
	add_entry(&img, &e);
	timerfd_entry(&e, 2, &armed);
	add_entry(&img, &e);
	fixed_off = img.n;
	timerfd_entry(&e, 3, &expired_unread);
	add_entry(&img, &e);
	fixed_len = e.n + 4;
	timerfd_entry(&e, 4, &disarmed);
	add_entry(&img, &e);

	CHECK(imgfix_files_image(img.b, img.n, &out, &out_len, &st, &err) == 0);
	CHECK(out != NULL && st.timerfds_rearmed == 1);
	if (!out)
		return;
	/* expected: the same entry with it_value (0, 100 ms), encoded as CRIU would */
	after.vnsec = after.insec;
	timerfd_entry(&e, 3, &after);
	want.n = 0;
	put_u32(&want, (uint32_t)e.n);
	memcpy(want.b + want.n, e.b, e.n);
	want.n += e.n;
	CHECK(out_len == img.n - fixed_len + want.n);
	CHECK(!memcmp(out, img.b, fixed_off));
	CHECK(!memcmp(out + fixed_off, want.b, want.n));
	CHECK(!memcmp(out + fixed_off + want.n, img.b + fixed_off + fixed_len,
		      img.n - fixed_off - fixed_len));

	/* fixing the fixed image changes nothing */
	uint8_t *again = NULL;
	size_t again_len = 0;
	CHECK(imgfix_files_image(out, out_len, &again, &again_len, NULL, &err) == 0);
	CHECK(again == NULL);
	free(out);
}

static void test_malformed(void)
{
	struct pb img, e;
	uint8_t *out = NULL;
	size_t out_len = 0;
	ferr_t err = {0};

	header(&img);
	img.b[4] ^= 1; /* not the files magic */
	CHECK(imgfix_files_image(img.b, img.n, &out, &out_len, NULL, &err) < 0);
	CHECK(err.code == FX_INTEGRITY && strstr(err.msg, "magic"));
	CHECK(imgfix_files_image(img.b, 3, &out, &out_len, NULL, &err) < 0);

	header(&img);
	timerfd_entry(&e, 2, &expired_unread);
	add_entry(&img, &e);
	ferr_clear(&err);
	CHECK(imgfix_files_image(img.b, img.n - 1, &out, &out_len, NULL, &err) < 0);
	CHECK(err.code == FX_INTEGRITY && strstr(err.msg, "past the end"));
	ferr_clear(&err);
	CHECK(imgfix_files_image(img.b, img.n + 2, &out, &out_len, NULL, &err) < 0);
	CHECK(err.code == FX_INTEGRITY && strstr(err.msg, "truncated"));
	img.b[8 + 4] = 0xff; /* an entry that is not protobuf */
	img.b[8 + 5] = 0xff;
	ferr_clear(&err);
	CHECK(imgfix_files_image(img.b, img.n, &out, &out_len, NULL, &err) < 0);
	CHECK(err.code == FX_INTEGRITY && strstr(err.msg, "does not decode"));
	CHECK(out == NULL);
}

/* On disk: no image, an image left alone (same inode), an image replaced. */
static void test_dir(void)
{
	char dir[] = "/tmp/ferry-imgfix-XXXXXX", path[256];
	struct pb img, e;
	struct imgfix_stats st = {0};
	struct stat a, b;
	ferr_t err = {0};
	char *buf = NULL;
	size_t len = 0;

	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	snprintf(path, sizeof(path), "%s/files.img", dir);
	CHECK(imgfix_dir(dir, &st, &err) == 0);

	header(&img);
	timerfd_entry(&e, 2, &armed);
	add_entry(&img, &e);
	CHECK(fs_write_atomic(path, img.b, img.n, 0600, &err) == 0);
	CHECK(stat(path, &a) == 0);
	CHECK(imgfix_dir(dir, &st, &err) == 0 && st.timerfds_rearmed == 0);
	CHECK(stat(path, &b) == 0 && a.st_ino == b.st_ino);

	timerfd_entry(&e, 3, &expired_unread);
	add_entry(&img, &e);
	CHECK(fs_write_atomic(path, img.b, img.n, 0640, &err) == 0);
	CHECK(imgfix_dir(dir, &st, &err) == 0 && st.timerfds_rearmed == 1);
	CHECK(stat(path, &b) == 0 && (b.st_mode & 07777) == 0640);
	CHECK(fs_read_all(path, &buf, &len, 1 << 20, &err) == 0);
	CHECK(len > img.n && !memcmp(buf, img.b, 8));
	free(buf);

	CHECK(fs_write_atomic(path, "junk", 4, 0600, &err) == 0);
	ferr_clear(&err);
	CHECK(imgfix_dir(dir, &st, &err) < 0 && strstr(err.msg, path));
	fs_rm_rf(dir, NULL);
}

int main(void)
{
	RUN(test_roundtrip_entries);
	RUN(test_nothing_to_fix);
	RUN(test_rearm);
	RUN(test_malformed);
	RUN(test_dir);
	UNIT_DONE();
}
