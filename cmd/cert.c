/* ferry cert: not implemented yet. */
#include <stdio.h>

#include "cmd.h"

int cmd_cert(int argc, char **argv, const struct global_opts *g)
{
	(void)argc;
	(void)argv;
	(void)g;
	fprintf(stderr, "ferry cert: not implemented yet\n");
	return FX_FAIL;
}
