/* Fix-ups of CRIU's images after a dump, before a manifest describes them or
 * they are sent: states CRIU saves as it finds them but restores wrongly.
 *
 * Periodic timerfds that expired unread. The kernel re-arms a periodic
 * timerfd only when it is read (or timerfd_gettime() is called on it); until
 * then /proc/PID/fdinfo shows it_value 0 and ticks >= 1. A tenant is in that
 * state whenever it is frozen after such a timer expired and before it read
 * it, and for every timer that expires while the tenant is frozen for the
 * dump. CRIU (4.1.1, and its development branch at the time of writing:
 * checkpoint-restore/criu issue #3162) saves it as it stands; its restorer
 * calls timerfd_settime() with it_value 0, which disarms the timer, then sets
 * ticks: the restored tenant reads the pending expiration once and its timer
 * never fires again. The fix-up gives such an entry it_value = its interval
 * (docs/dump-restore.md, "Timer fix-up", says why and what the tenant sees).
 */
#ifndef FERRY_IMGFIX_H
#define FERRY_IMGFIX_H

#include <stddef.h>
#include <stdint.h>

#include "criu/imgframe.h"
#include "lib/err.h"

#define IMGFIX_FILES_IMAGE   "files.img"
#define CRIU_FILES_MAGIC     0x56303138U
#define CRIU_FD_TYPE_TIMERFD 17

struct imgfix_stats {
	unsigned timerfds_rearmed; /* expired-unread periodic timerfds re-armed */
};

/* Rewrite a files image held in memory. *out is NULL when nothing needed a
 * change (the image is fine as it is), else a malloc'd new image of *out_len
 * bytes in which only the fixed entries differ. st (may be NULL) counts what
 * was fixed. FX_INTEGRITY on a bad magic, a truncated or undecodable entry. */
int imgfix_files_image(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
		       struct imgfix_stats *st, ferr_t *err);

/* Fix the images CRIU wrote into dir (files.img; absent: nothing to do).
 * A file that needs no change is not touched; a changed one is replaced
 * atomically. */
int imgfix_dir(const char *dir, struct imgfix_stats *st, ferr_t *err);

#endif
