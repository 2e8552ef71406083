/* The freeze -> post-dump span read from a CRIU dump log (criu_timeline.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "criu/timeline.h"
#include "unit.h"

static char path[] = "/tmp/ferry-unit-timeline-XXXXXX";

static void write_log(const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Lines as CRIU 4.1.1 writes them (-v4), the script path line indented. */
static void test_span(void)
{
	double ms = -1;
	ferr_t err = {0};

	write_log("(00.000000) CRIU run id = x\n"
		  "(00.026866) Detected cgroup V1 freezer\n"
		  "(00.027340) Seized task 6, state 1\n"
		  "(00.027355) \tSeizing 6's 7 thread\n"
		  "pie: 1: a line without a stamp\n"
		  "(00.129296) Running post-dump scripts\n"
		  "(00.129305) \t[/x/ferry-criu-hook]\n"
		  "(00.133117) Error (criu/util.c:656): exited, status=1\n"
		  "(00.147801) Starting lazy pages server\n");
	CHECK(criu_log_frozen_to_postdump(path, &ms, &err) == 0);
	/* from the line before the seize to the first line after the script */
	CHECK(fabs(ms - (133.117 - 26.866)) < 0.001);
}

static void test_incomplete(void)
{
	double ms = -1;
	ferr_t err = {0};

	write_log("(00.027340) Seized task 6, state 1\n"
		  "(00.129296) Running post-dump scripts\n"
		  "(00.129305) \t[/x/ferry-criu-hook]\n");
	CHECK(criu_log_frozen_to_postdump(path, &ms, &err) < 0);
	write_log("(00.129296) Running post-dump scripts\n(00.133117) after\n");
	CHECK(criu_log_frozen_to_postdump(path, &ms, &err) < 0); /* no freeze seen */
	unlink(path);
	CHECK(criu_log_frozen_to_postdump(path, &ms, &err) < 0 && err.code == FX_NOTFOUND);
}

int main(void)
{
	int fd = mkstemp(path);

	if (fd < 0)
		return 1;
	close(fd);
	RUN(test_span);
	RUN(test_incomplete);
	unlink(path);
	UNIT_DONE();
}
