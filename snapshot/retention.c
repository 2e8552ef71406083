/* restic's retention policy (retention.h). */
#include "snapshot/retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool retention_empty(const struct keep_policy *p)
{
	return !p->last && !p->hourly && !p->daily && !p->weekly && !p->monthly && !p->yearly &&
	       !p->within;
}

static int64_t bucket(int kind, int64_t t, size_t nr)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char w[16];

	localtime_r(&tt, &tm);
	switch (kind) {
	case KEEP_LAST:
		return (int64_t)nr;
	case KEEP_HOURLY:
		return (((int64_t)tm.tm_year * 100 + tm.tm_mon) * 100 + tm.tm_mday) * 100 +
		       tm.tm_hour;
	case KEEP_DAILY:
		return ((int64_t)tm.tm_year * 100 + tm.tm_mon) * 100 + tm.tm_mday;
	case KEEP_WEEKLY:
		strftime(w, sizeof(w), "%G%V", &tm);
		return strtoll(w, NULL, 10);
	case KEEP_MONTHLY:
		return (int64_t)tm.tm_year * 100 + tm.tm_mon;
	default:
		return tm.tm_year;
	}
}

struct order {
	size_t i;
	int64_t t;
};

static int newest_first(const void *a, const void *b)
{
	const struct order *x = a, *y = b;

	/* one second apart or less: the later in the list (oldest first) is newer */
	return x->t > y->t ? -1 : x->t < y->t ? 1 : (x->i < y->i) - (x->i > y->i);
}

static void apply_sorted(const struct keep_policy *p, struct keep_item *items,
			 const struct order *o, size_t n)
{
	struct {
		int kind, count;
		int64_t last;
	} b[] = {{KEEP_LAST, p->last, -1},	 {KEEP_HOURLY, p->hourly, -1},
		 {KEEP_DAILY, p->daily, -1},	 {KEEP_WEEKLY, p->weekly, -1},
		 {KEEP_MONTHLY, p->monthly, -1}, {KEEP_YEARLY, p->yearly, -1}};
	int64_t newest = o[0].t;

	for (size_t nr = 0; nr < n; nr++) {
		struct keep_item *it = &items[o[nr].i];
		it->keep = false;
		it->reasons = 0;
		for (size_t k = 0; k < sizeof(b) / sizeof(b[0]); k++) {
			if (!b[k].count)
				continue;
			int64_t v = bucket(b[k].kind, it->time, nr);
			if (v != b[k].last || nr == n - 1) {
				it->keep = true;
				it->reasons |= (unsigned)b[k].kind;
				b[k].last = v;
				if (b[k].count > 0)
					b[k].count--;
			}
		}
		if (p->within && it->time > newest - p->within) {
			it->keep = true;
			it->reasons |= KEEP_WITHIN;
		}
	}
}

int retention_apply(const struct keep_policy *p, struct keep_item *items, size_t n, ferr_t *err)
{
	struct order *o;

	if (!n)
		return 0;
	if (!(o = malloc(n * sizeof(*o))))
		return ferr_set(err, FX_FAIL, "out of memory");
	for (size_t i = 0; i < n; i++)
		o[i] = (struct order){i, items[i].time};
	qsort(o, n, sizeof(*o), newest_first);
	apply_sorted(p, items, o, n);
	free(o);
	return 0;
}

const char *retention_reasons(unsigned r, char *buf, size_t len)
{
	static const char *names[] = {"last",	 "hourly", "daily", "weekly",
				      "monthly", "yearly", "within"};
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; i < 7; i++)
		if (r & (1U << i))
			off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%s",
						off ? ", " : "", names[i]);
	return buf;
}

int parse_duration(const char *s, int64_t *out, ferr_t *err)
{
	int64_t total = 0;
	const char *p = s;

	if (!*p)
		goto bad;
	while (*p) {
		char *end;
		long long v = strtoll(p, &end, 10);
		int64_t unit;
		if (end == p || v < 0)
			goto bad;
		switch (*end) {
		case 's':
			unit = 1;
			break;
		case 'm':
			unit = 60;
			break;
		case 'h':
			unit = 3600;
			break;
		case 'd':
			unit = 86400;
			break;
		case 'w':
			unit = 7 * 86400;
			break;
		case 'y':
			unit = 365 * 86400;
			break;
		default:
			goto bad;
		}
		if (v > (INT64_MAX - total) / unit)
			goto bad;
		total += v * unit;
		p = end + 1;
	}
	if (!total)
		goto bad;
	*out = total;
	return 0;
bad:
	return ferr_set(err, FX_USAGE, "'%s' is not a duration (e.g. 30s, 10m, 6h, 1d, 2w)", s);
}
