/* ferry send: not implemented yet. */
#include <stdio.h>

#include "cmd.h"

int cmd_send(int argc, char **argv, const struct global_opts *g)
{
	(void)argc;
	(void)argv;
	(void)g;
	fprintf(stderr, "ferry send: not implemented yet\n");
	return FX_FAIL;
}
