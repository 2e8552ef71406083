/* Pre-copy migration: the pure parts (docs/migrate.md, "Pre-copy").
 *
 * The tenant keeps running while CRIU pre-dumps its memory in rounds (each
 * round sends only the pages dirtied since the previous one, found through
 * the kernel's soft-dirty bits); then a final dump with the tenant frozen
 * sends what is still dirty and refers to the rounds for the rest.
 *
 * Here: when to stop iterating, and how the rounds' image directories are
 * named and linked (CRIU's "parent" symlink, relative to the directory it is
 * in). Both hosts use the same names:
 *   destination  STATE/migrations/ID/round-1 .. round-N, final images in ID/
 *                round-K/parent -> ../round-(K-1), ID/parent -> round-N
 *   source       STATE/migrations/pre-ID/round-1 .. round-N (CRIU's
 *                inventory of each round: pid-reuse detection needs it),
 *                final images in out-ID/, out-ID/parent -> ../pre-ID/round-N
 */
#ifndef FERRY_PRECOPY_H
#define FERRY_PRECOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PRECOPY_ROUNDS_MAX     16	  /* hard cap of --precopy-rounds */
#define PRECOPY_ROUNDS_DEFAULT 5	  /* pre-dump rounds at most */
#define PRECOPY_SHRINK_DEFAULT 80	  /* percent, see precopy_next() */
#define PRECOPY_SMALL_BYTES    (1U << 20) /* a dirty set this small ends the rounds */

struct precopy_policy {
	unsigned max_rounds;  /* pre-dump rounds at most, 1..PRECOPY_ROUNDS_MAX */
	unsigned shrink_pct;  /* go on only while a round sent at most this % of the previous */
	uint64_t small_bytes; /* a round sent this little: the final dump is short anyway */
};

/* The policy from the command line's values; 0 means the default. */
void precopy_policy_init(struct precopy_policy *p, unsigned max_rounds, unsigned shrink_pct);

enum precopy_stop {
	PRECOPY_CONTINUE = 0,
	PRECOPY_STOP_MAX_ROUNDS,   /* max_rounds done */
	PRECOPY_STOP_SMALL,	   /* the last round sent <= small_bytes */
	PRECOPY_STOP_NOT_SHRINKING /* the last round sent > shrink_pct % of the one before */
};

/* After round n (1-based) whose page bytes are bytes[0..n-1]: another round,
 * or the final dump and why. The first round always happens (it carries the
 * bulk of the memory); from the second on, a round that did not shrink the
 * dirty set enough means the tenant dirties memory about as fast as we send
 * it: more rounds would not shorten the final dump. */
enum precopy_stop precopy_next(const struct precopy_policy *p, const uint64_t *bytes, unsigned n);
const char *precopy_stop_str(enum precopy_stop s);

/* "round-N" into buf (N >= 1). -1 when it does not fit. */
int precopy_round_name(unsigned n, char *buf, size_t len);

/* The parent link of a directory whose previous round is prev: "" when prev
 * is 0 (no parent), else "FROM/round-PREV" ("round-PREV" when from is "" or
 * NULL). FROM is where the rounds are, seen from the directory: ".." between
 * rounds, "" for the destination's final images, "../pre-ID" for the
 * source's. -1 when it does not fit. */
int precopy_parent(const char *from, unsigned prev, char *buf, size_t len);

/* Destination: is round (final or not) the one to expect after `done`
 * rounds? Rounds come in order 1, 2, ... up to PRECOPY_ROUNDS_MAX; the final
 * dump follows at least one round and names the next number. Names on the
 * destination come from this number only, never from a peer's string. */
bool precopy_round_ok(unsigned done, unsigned round, bool final);

#endif
