/* Tiny unit-test harness: CHECK records failures, RUN runs a test function,
 * UNIT_MAIN prints "N passed, N failed" for the file and sets the exit code. */
#ifndef FERRY_UNIT_H
#define FERRY_UNIT_H

#include <stdio.h>

static int unit_failed_checks, unit_pass, unit_fail;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			unit_failed_checks++;                                                      \
		}                                                                                  \
	} while (0)

#define RUN(fn)                                                                                    \
	do {                                                                                       \
		int before = unit_failed_checks;                                                   \
		fn();                                                                              \
		if (unit_failed_checks == before) {                                                \
			unit_pass++;                                                               \
			printf("ok   %s\n", #fn);                                                  \
		} else {                                                                           \
			unit_fail++;                                                               \
			printf("FAIL %s\n", #fn);                                                  \
		}                                                                                  \
	} while (0)

#define UNIT_DONE()                                                                                \
	do {                                                                                       \
		printf("%d passed, %d failed\n", unit_pass, unit_fail);                            \
		return unit_fail ? 1 : 0;                                                          \
	} while (0)

#endif
