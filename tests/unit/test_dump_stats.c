/* Pure parts of the dump / restore stages: CRIU's stats image, the CPU model
 * from /proc/cpuinfo, CRIU log tails, the image directory check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "criu/rpc.h"
#include "criu/stats.h"
#include "proto/criu_stats.pb-c.h"
#include "snapshot/dump.h"
#include "tenant/hostinfo.h"
#include "proto/manifest.h"
#include "unit.h"

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* An image as CRIU writes it: service magic, stats magic, length, entry. */
static size_t make_image(uint8_t *buf, bool dump)
{
	FerryCriu__Stats s = FERRY_CRIU__STATS__INIT;
	FerryCriu__DumpStats d = FERRY_CRIU__DUMP_STATS__INIT;
	FerryCriu__RestoreStats r = FERRY_CRIU__RESTORE_STATS__INIT;
	size_t n;

	if (dump) {
		d.has_freezing_time = d.has_frozen_time = true;
		d.has_memdump_time = d.has_memwrite_time = d.has_pages_written = true;
		d.freezing_time = 1500;
		d.frozen_time = 120000;
		d.memdump_time = 88000;
		d.memwrite_time = 43000;
		d.pages_written = 4096;
		s.dump = &d;
	} else {
		r.has_forking_time = r.has_restore_time = true;
		r.forking_time = 2000;
		r.restore_time = 70500;
		s.restore = &r;
	}
	put_le32(buf, CRIU_IMG_SERVICE_MAGIC);
	put_le32(buf + 4, CRIU_STATS_MAGIC);
	n = ferry_criu__stats__pack(&s, buf + 12);
	put_le32(buf + 8, (uint32_t)n);
	return n + 12;
}

static void test_stats_dump(void)
{
	uint8_t buf[256];
	struct criu_stats st;
	ferr_t err = {0};
	size_t n = make_image(buf, true);

	CHECK(criu_stats_parse(buf, n, &st, &err) == 0);
	CHECK(st.has_dump && !st.has_restore);
	CHECK(st.freeze_ms == 1.5);
	CHECK(st.frozen_ms == 120.0);
	CHECK(st.mem_dump_ms == 88.0);
	CHECK(st.mem_write_ms == 43.0);
	CHECK(st.pages_written == 4096);
}

static void test_stats_restore(void)
{
	uint8_t buf[256];
	struct criu_stats st;
	ferr_t err = {0};
	size_t n = make_image(buf, false);

	CHECK(criu_stats_parse(buf, n, &st, &err) == 0);
	CHECK(st.has_restore && !st.has_dump);
	CHECK(st.restore_ms == 70.5);
	CHECK(st.forking_ms == 2.0);
}

static void test_stats_bad(void)
{
	uint8_t buf[256];
	struct criu_stats st;
	ferr_t err = {0};
	size_t n = make_image(buf, true);

	CHECK(criu_stats_parse(buf, 8, &st, &err) < 0 && err.code == FX_INTEGRITY);
	CHECK(criu_stats_parse(buf, n - 3, &st, &err) < 0 && err.code == FX_INTEGRITY);
	buf[4] ^= 0xff; /* stats magic */
	CHECK(criu_stats_parse(buf, n, &st, &err) < 0 && strstr(err.msg, "magic"));
	buf[4] ^= 0xff;
	put_le32(buf + 8, 100000); /* entry length past the end */
	CHECK(criu_stats_parse(buf, n, &st, &err) < 0 && err.code == FX_INTEGRITY);
}

static void test_cpu_model(void)
{
	char out[64];

	hostinfo_parse_cpu_model("processor\t: 0\nvendor_id\t: AuthenticAMD\n"
				 "model name\t: AMD EPYC 7B13\nflags\t\t: fpu\n",
				 out, sizeof(out));
	CHECK(!strcmp(out, "AMD EPYC 7B13"));
	hostinfo_parse_cpu_model("processor\t: 0\nBogoMIPS\t: 50.00\n", out, sizeof(out));
	CHECK(out[0] == '\0');
	hostinfo_parse_cpu_model("model name: a very long name indeed", out, 8);
	CHECK(!strcmp(out, "a very "));
}

static void test_log_tail(void)
{
	char path[] = "/tmp/ferry-unit-logXXXXXX", out[512];
	int fd = mkstemp(path);
	const char *log = "(00.001) first line\n"
			  "(00.002) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE\n"
			  "(00.003) something\n"
			  "(00.004) Error (criu/a.c:1): the real problem\n"
			  "(00.005) Error (criu/cr-dump.c:2): Dumping FAILED.\n"
			  "(00.006) Unlocking\n";

	CHECK(fd >= 0);
	CHECK(write(fd, log, strlen(log)) == (ssize_t)strlen(log));
	close(fd);
	criu_log_tail(path, out, sizeof(out));
	CHECK(strstr(out, "the real problem") != NULL);
	CHECK(strstr(out, "Dumping FAILED") != NULL);
	CHECK(strstr(out, "RLIMIT") == NULL);
	unlink(path);
	criu_log_tail("/nonexistent/log", out, sizeof(out));
	CHECK(out[0] == '\0');
}

static void test_prepare_dir(void)
{
	char dir[] = "/tmp/ferry-unit-dirXXXXXX", sub[128], file[160];
	ferr_t err = {0};

	CHECK(mkdtemp(dir) != NULL);
	CHECK(dump_prepare_dir(dir, &err) == 0); /* empty */
	snprintf(sub, sizeof(sub), "%s/new/deeper", dir);
	CHECK(dump_prepare_dir(sub, &err) == 0); /* created */
	snprintf(file, sizeof(file), "%s/%s", sub, MANIFEST_NAME);
	FILE *f = fopen(file, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	CHECK(dump_prepare_dir(sub, &err) < 0 && err.code == FX_CONFLICT &&
	      strstr(err.msg, "already holds an image set"));
	unlink(file);
	snprintf(file, sizeof(file), "%s/other", sub);
	f = fopen(file, "w");
	if (f)
		fclose(f);
	CHECK(dump_prepare_dir(sub, &err) < 0 && err.code == FX_CONFLICT &&
	      strstr(err.msg, "not empty"));
	unlink(file);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	RUN(test_stats_dump);
	RUN(test_stats_restore);
	RUN(test_stats_bad);
	RUN(test_cpu_model);
	RUN(test_log_tail);
	RUN(test_prepare_dir);
	UNIT_DONE();
}
