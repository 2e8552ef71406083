/* CRIU's log level and log tails (log.h). */
#include "criu/log.h"

#include <stdio.h>
#include <string.h>

int criu_log_level(int requested)
{
	return requested >= 1 && requested <= 4 ? requested : CRIU_LOG_DEFAULT;
}

const char *criu_log_tail(const char *log_path, char *out, size_t len)
{
	char lines[4][256], buf[512];
	int nerr = 0, nall = 0;
	char last[4][256];
	FILE *f;

	out[0] = '\0';
	if (!log_path || !*log_path || !(f = fopen(log_path, "r")))
		return out;
	while (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(last[nall % 4], sizeof(last[0]), "%s", buf);
		nall++;
		/* harmless without CAP_SYS_RESOURCE, it would hide the real error */
		if (strstr(buf, "Error") && !strstr(buf, "RLIMIT_NOFILE")) {
			snprintf(lines[nerr % 4], sizeof(lines[0]), "%s", buf);
			nerr++;
		}
	}
	fclose(f);
	char(*src)[256] = nerr ? lines : last;
	int n = nerr ? nerr : nall, first = n > 3 ? n - 3 : 0;
	size_t used = 0;
	for (int i = first; i < n && used < len; i++) {
		int w = snprintf(out + used, len - used, "%s%s", used ? " | " : "", src[i % 4]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	return out;
}
