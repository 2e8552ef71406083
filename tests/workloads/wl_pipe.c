/*
 * wl_pipe [--interval-ms MS (1)]
 *
 * Forks a child; parent and child play ping-pong over two pipes with
 * increasing sequence numbers. Verify: both alive, the exchange still
 * progresses, the child saw every number exactly once and exits 0.
 */
#include "zdtm.h"

#include <getopt.h>

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"interval-ms", required_argument, 0, 'i'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	struct zdtm_pp pp = {0};
	unsigned interval = 1;
	int p2c[2], c2p[2], o;

	while ((o = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
		if (o != 'i') {
			fprintf(stderr, "usage: %s [--interval-ms MS (1)]\n", argv[0]);
			return 2;
		}
		interval = (unsigned)zdtm_parse_long("--interval-ms", optarg, 0, 60000);
	}
	zdtm_init();
	if (pipe(p2c) < 0 || pipe(c2p) < 0) {
		perror("wl_pipe: pipe");
		return 2;
	}
	pp.child = fork();
	if (pp.child < 0) {
		perror("wl_pipe: fork");
		return 2;
	}
	if (pp.child == 0) {
		close(p2c[1]);
		close(c2p[0]);
		zdtm_pp_child(p2c[0], c2p[1]);
	}
	close(p2c[0]);
	close(c2p[1]);
	pp.wfd = p2c[1];
	pp.rfd = c2p[0];
	if (!zdtm_pp_step(&pp, -1)) {
		fprintf(stderr, "wl_pipe: first exchange failed: %s\n", zdtm_failure);
		return 2;
	}
	zdtm_ready();
	zdtm_pp_run(&pp, interval);
	zdtm_pp_verify(&pp);
	zdtm_pass();
}
