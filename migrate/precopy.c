/* Pre-copy: round-stopping rule and directory names (precopy.h). */
#include "migrate/precopy.h"

#include <stdio.h>

void precopy_policy_init(struct precopy_policy *p, unsigned max_rounds, unsigned shrink_pct)
{
	p->max_rounds = max_rounds ? max_rounds : PRECOPY_ROUNDS_DEFAULT;
	if (p->max_rounds > PRECOPY_ROUNDS_MAX)
		p->max_rounds = PRECOPY_ROUNDS_MAX;
	p->shrink_pct = shrink_pct ? shrink_pct : PRECOPY_SHRINK_DEFAULT;
	p->small_bytes = PRECOPY_SMALL_BYTES;
}

enum precopy_stop precopy_next(const struct precopy_policy *p, const uint64_t *bytes, unsigned n)
{
	if (n == 0)
		return PRECOPY_CONTINUE;
	if (n >= p->max_rounds)
		return PRECOPY_STOP_MAX_ROUNDS;
	if (bytes[n - 1] <= p->small_bytes)
		return PRECOPY_STOP_SMALL;
	/* bytes[n-1] / bytes[n-2] > shrink_pct / 100, without division */
	if (n >= 2 && bytes[n - 1] * 100 > bytes[n - 2] * (uint64_t)p->shrink_pct)
		return PRECOPY_STOP_NOT_SHRINKING;
	return PRECOPY_CONTINUE;
}

const char *precopy_stop_str(enum precopy_stop s)
{
	switch (s) {
	case PRECOPY_CONTINUE:
		return "continue";
	case PRECOPY_STOP_MAX_ROUNDS:
		return "max-rounds";
	case PRECOPY_STOP_SMALL:
		return "dirty-set-small";
	case PRECOPY_STOP_NOT_SHRINKING:
		return "not-shrinking";
	}
	return "?";
}

int precopy_round_name(unsigned n, char *buf, size_t len)
{
	int w = snprintf(buf, len, "round-%u", n);

	return n >= 1 && w > 0 && (size_t)w < len ? 0 : -1;
}

int precopy_parent(const char *from, unsigned prev, char *buf, size_t len)
{
	int w;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (prev == 0)
		return 0;
	if (from && *from)
		w = snprintf(buf, len, "%s/round-%u", from, prev);
	else
		w = snprintf(buf, len, "round-%u", prev);
	return w > 0 && (size_t)w < len ? 0 : -1;
}

bool precopy_round_ok(unsigned done, unsigned round, bool final)
{
	if (round != done + 1)
		return false;
	if (final)
		return done >= 1 && done <= PRECOPY_ROUNDS_MAX;
	return round <= PRECOPY_ROUNDS_MAX;
}
