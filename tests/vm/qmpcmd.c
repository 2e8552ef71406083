/* qmpcmd: one QMP command for the VM tests and benchmark, through ferry's
 * QMP client (tenant/qmp.h). Prints the "return" value as JSON.
 * usage: qmpcmd QMP_SOCKET COMMAND [ARGUMENTS_JSON] */
#include <stdio.h>
#include <stdlib.h>

#include "tenant/qmp.h"

int main(int argc, char **argv)
{
	struct qmp *q;
	json_t *args = NULL, *ret = NULL;
	json_error_t je;
	ferr_t err = {0};

	if (argc < 3) {
		fprintf(stderr, "usage: qmpcmd QMP_SOCKET COMMAND [ARGUMENTS_JSON]\n");
		return 2;
	}
	if (argc > 3 && !(args = json_loads(argv[3], 0, &je))) {
		fprintf(stderr, "qmpcmd: arguments: %s\n", je.text);
		return 2;
	}
	if (qmp_open(argv[1], 5000, &q, &err) < 0 ||
	    qmp_exec(q, argv[2], args, -1, 60000, &ret, &err) < 0) {
		fprintf(stderr, "qmpcmd: %s\n", err.msg);
		return 1;
	}
	char *s = json_dumps(ret, JSON_COMPACT | JSON_ENCODE_ANY);
	printf("%s\n", s ? s : "null");
	free(s);
	json_decref(ret);
	qmp_close(q);
	return 0;
}
