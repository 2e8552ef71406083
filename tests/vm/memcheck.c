/* memcheck: check the memory of the VM tests' guest (guest.S) through its
 * QMP socket. Stops the VM, saves its memory (pmemsave) into a file,
 * resumes it unless --stopped, then checks that every page from 1 MiB to
 * MEM_MIB holds P + 1 below some address and P above it (mod 256), P being
 * the guest's pass counter at 0x500. Prints "passes=P boundary=ADDR" and
 * exits 0, or says which page is wrong and exits 1.
 * usage: memcheck QMP_SOCKET MEM_MIB TMPFILE [--stopped] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tenant/qmp.h"

static int check(const unsigned char *m, size_t size)
{
	uint32_t p;
	size_t boundary = 0, a;

	memcpy(&p, m + 0x500, 4);
	unsigned char lo = (unsigned char)p, hi = (unsigned char)(p + 1);
	for (a = 1 << 20; a < size && m[a] == hi && lo != hi; a += 4096)
		;
	boundary = a;
	for (; a < size; a += 4096) {
		if (m[a] != lo) {
			printf("FAIL passes=%u page 0x%zx holds %u, expected %u (boundary 0x%zx)\n",
			       p, a, m[a], lo, boundary);
			return 1;
		}
	}
	printf("passes=%u boundary=0x%zx\n", p, boundary);
	return 0;
}

int main(int argc, char **argv)
{
	struct qmp *q;
	ferr_t err = {0};

	if (argc < 4) {
		fprintf(stderr, "usage: memcheck QMP_SOCKET MEM_MIB TMPFILE [--stopped]\n");
		return 2;
	}
	size_t size = (size_t)atoi(argv[2]) << 20;
	bool stay = argc > 4 && !strcmp(argv[4], "--stopped");
	unlink(argv[3]);
	if (qmp_open(argv[1], 5000, &q, &err) < 0 ||
	    qmp_exec(q, "stop", NULL, -1, 5000, NULL, &err) < 0 ||
	    qmp_exec(q, "pmemsave",
		     json_pack("{s:I, s:I, s:s}", "val", (json_int_t)0, "size", (json_int_t)size,
			       "filename", argv[3]),
		     -1, 30000, NULL, &err) < 0 ||
	    (!stay && qmp_exec(q, "cont", NULL, -1, 5000, NULL, &err) < 0)) {
		fprintf(stderr, "memcheck: %s\n", err.msg);
		return 2;
	}
	qmp_close(q);
	FILE *f = fopen(argv[3], "rb");
	unsigned char *m = malloc(size);
	if (!f || !m || fread(m, 1, size, f) != size) {
		fprintf(stderr, "memcheck: cannot read %s\n", argv[3]);
		return 2;
	}
	fclose(f);
	unlink(argv[3]);
	int r = check(m, size);
	free(m);
	return r;
}
