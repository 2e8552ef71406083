/* CRIU log timestamps (criu_timeline.h). */
#include "criu/timeline.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "(SS.UUUUUU) text": the time, and *text past the stamp. */
static bool stamp(const char *line, double *t, const char **text)
{
	char *end;

	if (line[0] != '(')
		return false;
	*t = strtod(line + 1, &end);
	if (end == line + 1 || *end != ')')
		return false;
	*text = end + 1;
	while (**text == ' ')
		(*text)++;
	return true;
}

int criu_log_frozen_to_postdump(const char *log, double *ms, ferr_t *err)
{
	FILE *f = fopen(log, "r");
	char *line = NULL;
	size_t cap = 0;
	double prev = -1, frozen = -1, t;
	bool in_postdump = false;
	const char *text;
	int ret = -1;

	if (!f)
		return ferr_sys(err, FX_NOTFOUND, "CRIU log %s", log);
	while (getline(&line, &cap, f) > 0) {
		if (!stamp(line, &t, &text))
			continue;
		if (frozen < 0 && !strncmp(text, "Seized task", 11))
			frozen = prev >= 0 ? prev : t;
		if (in_postdump && text[0] != '\t') { /* "\t[script]" names the script */
			*ms = (t - frozen) * 1e3;
			ret = 0;
			break;
		}
		if (frozen >= 0 && !strncmp(text, "Running post-dump scripts", 25))
			in_postdump = true;
		prev = t;
	}
	free(line);
	fclose(f);
	if (ret < 0)
		ferr_set(err, FX_FAIL, "no freeze or post-dump in CRIU log %s", log);
	return ret;
}
