/* Children nobody else waits for (reap.h). */
#include "lib/reap.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t *pids;
static size_t n_pids, cap_pids;

void reap_watch(pid_t pid)
{
	if (pid <= 0)
		return;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_pids; i++) {
		if (pids[i] == pid) {
			pthread_mutex_unlock(&lock);
			return;
		}
	}
	if (n_pids == cap_pids) {
		size_t cap = cap_pids ? cap_pids * 2 : 16;
		pid_t *p = realloc(pids, cap * sizeof(*p));

		if (!p) { /* a zombie is the worst outcome */
			pthread_mutex_unlock(&lock);
			return;
		}
		pids = p;
		cap_pids = cap;
	}
	pids[n_pids++] = pid;
	pthread_mutex_unlock(&lock);
}

int reap_poll(void)
{
	int n = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_pids;) {
		pid_t r = waitpid(pids[i], NULL, WNOHANG);

		/* reaped, or not (or no longer) our child: forget it */
		if (r == pids[i] || (r < 0 && errno == ECHILD)) {
			n += r == pids[i];
			pids[i] = pids[--n_pids];
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(&lock);
	return n;
}
