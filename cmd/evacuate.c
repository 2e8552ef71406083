/* ferry evacuate: not implemented yet. */
#include <stdio.h>

#include "cmd.h"

int cmd_evacuate(int argc, char **argv, const struct global_opts *g)
{
	(void)argc;
	(void)argv;
	(void)g;
	fprintf(stderr, "ferry evacuate: not implemented yet\n");
	return FX_FAIL;
}
