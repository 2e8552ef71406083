/* Destination side of the file-system transfer (dst_fs.h). */
#define LOG_PREFIX "handover"
#include "migrate/dst_fs.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "migrate/fs_wire.h"
#include "migrate/handover.h"
#include "tenant/image.h"
#include "tenant/rootfs.h"
#include "tenant/treepack.h"

/* Images this agent is receiving or using in migrations now: migrations that
 * run side by side (`ferry evacuate --parallel`) of tenants on one image
 * send it once. The first says "not here" and receives it; the others wait
 * for its outcome before they answer MIG_FS_HAVE. An image one of them
 * adopted is removed again only when none of them used it for a tenant
 * (the last to end decides). */
struct inflight {
	char id[IMAGE_ID_LEN + 1];
	int users;
	bool receiving; /* a migration is receiving it: the others wait */
	bool adopted;	/* it came with one of these migrations */
	bool kept;	/* one of them moved a tenant onto it */
};

#define INFLIGHT_MAX 64
static struct inflight inflight[INFLIGHT_MAX];
static pthread_mutex_t inflight_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inflight_cond = PTHREAD_COND_INITIALIZER;

struct mfs_dst {
	char state_dir[PATH_MAX]; /* realpath: libarchive refuses links on its way */
	char work[PATH_MAX];	  /* STATE/migrations/ID.fs (an agent start removes it) */
	char upper[PATH_MAX];
	char staged[PATH_MAX]; /* work/upper until the end */
	char image[IMAGE_ID_LEN + 1];
	bool adopted;	      /* the image came with this migration */
	struct inflight *inf; /* this migration's use of the image (above) */
	bool receiving;	      /* this migration receives the image */
	bool copy;	      /* --copy-rootfs: upper is the tenant's DIR itself */
	bool placed;	      /* copy: DIR was made by this migration */
	/* the frozen delta is applied in a thread while the images arrive */
	pthread_t th;
	bool applying;
	int apply_rc;
	ferr_t apply_err;
	char delta[PATH_MAX]; /* where it was received */
	uint64_t t_apply;
};

bool mfs_dst_wanted(const Ferry__Wire__MigrateBegin *b)
{
	return b->has_carry_fs && b->carry_fs;
}

static bool copying(const Ferry__Wire__MigrateBegin *b)
{
	return b->has_copy_rootfs && b->copy_rootfs;
}

int mfs_dst_check_shared(const Ferry__Wire__MigrateBegin *b, const char *host, ferr_t *err)
{
	char id[33];
	ferr_t e = {0};

	if (!b->rootfs_id || mfs_dst_wanted(b) || !b->rootfs)
		return 0; /* an older source: the kind checks the path */
	struct stat st;
	if (stat(b->rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
		return ferr_set(err, FX_CONFLICT,
				"root file system %s of tenant %s is missing on %s: migrate with "
				"--copy-rootfs to copy the tree",
				b->rootfs, b->tenant, host);
	if (rootfs_identity(b->rootfs, false, id, &e) == 0 && !strcmp(id, b->rootfs_id))
		return 0;
	return ferr_set(err, FX_CONFLICT,
			"%s on %s is not the tenant's root file system (%s): it shares no "
			"storage with the source; migrate with --copy-rootfs to copy the tree",
			b->rootfs, host, e.code ? e.msg : "another identity in .ferry/rootfs-id");
}

int mfs_dst_precheck_rec(const char *state_dir, const Ferry__Wire__MigrateBegin *b,
			 struct tenant_rec *rec, ferr_t *err)
{
	if (copying(b)) {
		struct stat st;
		if (!b->rootfs || b->rootfs[0] != '/' || strstr(b->rootfs, "/../") ||
		    !strcmp(b->rootfs, "/"))
			return ferr_set(err, FX_INTEGRITY, "the source sent a bad rootfs path");
		if (lstat(b->rootfs, &st) == 0)
			return ferr_set(err, FX_CONFLICT,
					"%s exists here: --copy-rootfs copies into a new directory "
					"(remove it first, or migrate without --copy-rootfs if it "
					"is the same tree on shared storage)",
					b->rootfs);
	} else if (!b->image_id || !image_id_valid(b->image_id))
		return ferr_set(err, FX_INTEGRITY, "the source sent a bad image id");
	/* the overlay is made at the restore, from the image (here, or sent)
	 * and the layer: the kind checks only that the store's host is there */
	if (!realpath(state_dir, rec->rootfs))
		return ferr_sys(err, FX_FAIL, "state directory %s", state_dir);
	return 0;
}

/* How long a migration waits for another's copy of its image before it
 * receives the image itself: well within a source's step timeout (60 s by
 * default), which its wait for MIG_FS_HAVE is subject to. */
#define CLAIM_WAIT_S 30

/* The image for this migration: present here (*has), or this migration
 * receives it; waits (up to CLAIM_WAIT_S) while another one receives it. */
static int image_claim(struct mfs_dst *f, bool *has, ferr_t *err)
{
	struct inflight *e = NULL, *fr = NULL;
	struct timespec dl;
	bool late = false;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += CLAIM_WAIT_S;
	pthread_mutex_lock(&inflight_lock);
	for (;;) {
		e = fr = NULL;
		for (int i = 0; i < INFLIGHT_MAX; i++) {
			if (inflight[i].users && !strcmp(inflight[i].id, f->image))
				e = &inflight[i];
			else if (!inflight[i].users && !fr)
				fr = &inflight[i];
		}
		if (!e || !e->receiving || late)
			break;
		pr_info("image %.12s: another migration is receiving it, waiting", f->image);
		if (pthread_cond_timedwait(&inflight_cond, &inflight_lock, &dl) == ETIMEDOUT) {
			pr_warn("image %.12s: another migration still receives it after %d s: "
				"this one receives it too",
				f->image, CLAIM_WAIT_S);
			late = true;
		}
	}
	if (!e && (e = fr)) {
		memset(e, 0, sizeof(*e));
		snprintf(e->id, sizeof(e->id), "%s", f->image);
	}
	if (e) {
		e->users++;
		*has = image_present(f->state_dir, f->image);
		f->receiving = !*has;
		e->receiving |= f->receiving;
	}
	pthread_mutex_unlock(&inflight_lock);
	f->inf = e;
	return e ? 0 : ferr_set(err, FX_CONFLICT, "too many migrations at once here");
}

/* This migration received the image (adopted: it was not in the store) or
 * failed to: the waiting ones go on. */
static void image_received(struct mfs_dst *f)
{
	if (!f->receiving)
		return;
	pthread_mutex_lock(&inflight_lock);
	f->inf->receiving = f->receiving = false;
	f->inf->adopted |= f->adopted;
	pthread_cond_broadcast(&inflight_cond);
	pthread_mutex_unlock(&inflight_lock);
}

/* The migration ended: the last user of an image that came with one of
 * them removes it unless a tenant moved onto it. */
static void image_release(struct mfs_dst *f, bool ok)
{
	struct inflight *e = f->inf;
	bool rm;

	if (!e)
		return;
	image_received(f);
	pthread_mutex_lock(&inflight_lock);
	e->kept |= ok;
	rm = --e->users == 0 && e->adopted && !e->kept;
	if (rm) /* nobody waits on this entry: image_remove refuses if a tenant uses it */
		image_remove(f->state_dir, f->image, NULL);
	pthread_mutex_unlock(&inflight_lock);
}

static int send_have(struct chan *c, bool has, ferr_t *err)
{
	Ferry__Wire__MigrateStep st = FERRY__WIRE__MIGRATE_STEP__INIT;

	st.has_has_image = true;
	st.has_image = has;
	if (mig_send_step(c, MIG_FS_HAVE, &st) < 0)
		return chan_take_error(c, err);
	return 0;
}

static int adopt(struct mfs_dst *f, const char *dir, ferr_t *err)
{
	char file[PATH_MAX], tmp[PATH_MAX];
	struct treepack_stats ts;
	struct image_info in;
	bool existed;

	if (xsnprintf(file, sizeof(file), err, "%s/" FS_IMAGE_FILE, dir) < 0 ||
	    xsnprintf(tmp, sizeof(tmp), err, "%s/image", f->work) < 0 || mkdir(tmp, 0755) < 0)
		return ferr_sys(err, FX_FAIL, "image of the migration");
	if (treepack_extract_file(file, tmp, &ts, err) < 0 ||
	    image_adopt(f->state_dir, tmp, "migration", &ts, &in, &existed, err) < 0)
		return ferr_wrap(err, "image of the migration");
	f->adopted = !existed;
	if (strcmp(in.id, f->image)) {
		if (f->adopted)
			image_remove(f->state_dir, in.id, NULL);
		f->adopted = false;
		return ferr_set(err, FX_INTEGRITY, "the image sent has content id %.12s, not %.12s",
				in.id, f->image);
	}
	return 0;
}

/* The layer is built in the migration's directory (an agent killed now
 * leaves nothing a restart does not remove) and moves in place at the end. */
static int stage_layer(struct mfs_dst *f, const char *dir, ferr_t *err)
{
	char file[PATH_MAX];

	if (xsnprintf(file, sizeof(file), err, "%s/" FS_LAYER_FILE, dir) < 0 ||
	    xsnprintf(f->staged, sizeof(f->staged), err, "%s/upper", f->work) < 0 ||
	    mkdir(f->staged, 0755) < 0)
		return ferr_sys(err, FX_FAIL, "create %s", f->staged);
	return treepack_extract_file(file, f->staged, NULL, err);
}

/* --copy-rootfs: the tree becomes DIR (which did not exist). */
static int place_copy(struct mfs_dst *f, ferr_t *err)
{
	char parent[PATH_MAX];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", f->upper);
	if ((slash = strrchr(parent, '/')) && slash != parent) {
		*slash = '\0';
		if (fs_mkdir_p(parent, 0755, err) < 0)
			return -1;
	}
	if (rename(f->staged, f->upper) == 0) {
		f->placed = true;
		return 0;
	}
	if (errno != EXDEV)
		return ferr_sys(err, errno == EEXIST || errno == ENOTEMPTY ? FX_CONFLICT : FX_FAIL,
				"move the copied tree to %s", f->upper);
	if (mkdir(f->upper, 0755) < 0)
		return ferr_sys(err, FX_CONFLICT, "create %s", f->upper);
	f->placed = true;
	return treepack_copy_dir(f->staged, f->upper, NULL, err);
}

static int place_layer(struct mfs_dst *f, ferr_t *err)
{
	char tdir[PATH_MAX], work[PATH_MAX];

	if (f->copy)
		return place_copy(f, err);
	if (xsnprintf(tdir, sizeof(tdir), err, "%.*s", (int)(strlen(f->upper) - 6), f->upper) < 0 ||
	    xsnprintf(work, sizeof(work), err, "%s/work", tdir) < 0)
		return -1;
	/* nothing of an earlier tenant of that name (it has no record here) */
	if (fs_rm_rf(f->upper, err) < 0 || fs_rm_rf(work, err) < 0 ||
	    fs_mkdir_p(tdir, 0700, err) < 0)
		return -1;
	if (rename(f->staged, f->upper) < 0)
		return ferr_sys(err, FX_FAIL, "move the layer to %s", f->upper);
	return 0;
}

/* FERRY_FAULT (testing hooks, docs/rootfs.md): fs-link-cut drops the
 * session, fs-crash kills this agent, after 1 MiB of the first transfer. */
static void on_chunk(uint64_t raw, void *arg)
{
	struct chan *c = arg;
	const char *f = getenv("FERRY_FAULT");

	if (!f || raw < (1U << 20))
		return;
	if (!strcmp(f, "fs-link-cut")) {
		pr_warn("FERRY_FAULT=fs-link-cut: dropping the session");
		shutdown(c->fd, SHUT_RDWR);
	} else if (!strcmp(f, "fs-crash")) {
		pr_warn("FERRY_FAULT=fs-crash: killing this agent");
		kill(getpid(), SIGKILL);
	}
}

static int recv_step(struct mfs_dst *f, struct chan *c, int n, char *dir, ferr_t *err)
{
	uint64_t raw;

	if (xsnprintf(dir, PATH_MAX, err, "%s/%d", f->work, n) < 0)
		return -1;
	if (mkdir(dir, 0700) < 0)
		return ferr_sys(err, FX_FAIL, "create %s", dir);
	return fs_wire_recv_cb(c, dir, n == 1 ? on_chunk : NULL, c, &raw, err);
}

int mfs_dst_begin(struct chan *c, const char *state_dir, const Ferry__Wire__MigrateBegin *b,
		  struct mfs_dst **out, ferr_t *err)
{
	struct mfs_dst *f;
	char dir[PATH_MAX], upper[PATH_MAX];

	*out = NULL;
	if (!mfs_dst_wanted(b))
		return 0;
	if (!(f = *out = calloc(1, sizeof(*f))))
		return ferr_set(err, FX_FAIL, "out of memory");
	f->copy = copying(b);
	snprintf(f->image, sizeof(f->image), "%s", b->image_id ? b->image_id : "");
	if (!realpath(state_dir, f->state_dir))
		return ferr_sys(err, FX_FAIL, "state directory %s", state_dir);
	if (xsnprintf(f->work, sizeof(f->work), err, "%s/migrations/%s.fs", f->state_dir,
		      b->migration_id) < 0 ||
	    (f->copy ? xsnprintf(upper, sizeof(upper), err, "%s", b->rootfs)
		     : rootfs_upper(f->state_dir, b->tenant, upper, sizeof(upper), err)) < 0 ||
	    xsnprintf(f->upper, sizeof(f->upper), err, "%s", upper) < 0 ||
	    fs_mkdir_p(f->work, 0700, err) < 0)
		return -1;
	bool has = true;
	if (!f->copy && image_claim(f, &has, err) < 0)
		return -1;
	if (send_have(c, has, err) < 0 || recv_step(f, c, 1, dir, err) < 0)
		return ferr_wrap(err, "file system of tenant %s", b->tenant);
	if (!has && adopt(f, dir, err) < 0)
		return -1;
	image_received(f);
	if (!f->copy && !image_present(f->state_dir, f->image))
		return ferr_set(err, FX_INTEGRITY, "the source did not send image %.12s", f->image);
	if (stage_layer(f, dir, err) < 0)
		return ferr_wrap(err, "layer of tenant %s", b->tenant);
	fs_rm_rf(dir, NULL);
	pr_info("tenant %s: file system staged (%s%.12s %s)", b->tenant,
		f->copy ? "a copy of its root" : "image ", f->image,
		f->copy ? ""
		: has	? "was here"
			: "received");
	return 0;
}

static int apply_deleted(struct mfs_dst *f, const char *dir, ferr_t *err)
{
	char p[PATH_MAX], *buf;
	size_t len;

	if (xsnprintf(p, sizeof(p), err, "%s/" FS_DELETED_FILE, dir) < 0 ||
	    fs_read_all(p, &buf, &len, 64u << 20, err) < 0)
		return -1;
	int r = 0;
	for (size_t i = 0; i < len && r == 0;) {
		const char *rel = buf + i;
		size_t n = strnlen(rel, len - i);
		if (n == len - i) {
			r = ferr_set(err, FX_INTEGRITY, "unterminated deleted path");
			break;
		}
		r = treepack_remove(f->staged, rel, err);
		i += n + 1;
	}
	free(buf);
	return r;
}

static void *apply_main(void *arg)
{
	struct mfs_dst *f = arg;
	char file[PATH_MAX];
	ferr_t *err = &f->apply_err;

	if (apply_deleted(f, f->delta, err) < 0 ||
	    xsnprintf(file, sizeof(file), err, "%s/" FS_LAYER_FILE, f->delta) < 0 ||
	    treepack_extract_file(file, f->staged, NULL, err) < 0 || place_layer(f, err) < 0)
		f->apply_rc = ferr_wrap(err, "the frozen file-system changes");
	else
		fs_rm_rf(f->delta, NULL);
	return NULL;
}

int mfs_dst_final(struct mfs_dst *f, struct chan *c, ferr_t *err)
{
	uint64_t t0 = now_ns();

	if (!f)
		return 0;
	if (recv_step(f, c, 2, f->delta, err) < 0)
		return ferr_wrap(err, "the frozen file-system changes");
	pr_info("file-system delta received in %.1f ms", ms_since(t0));
	f->t_apply = now_ns();
	f->applying = pthread_create(&f->th, NULL, apply_main, f) == 0;
	if (f->applying)
		return 0;
	apply_main(f);
	if (f->apply_rc < 0) {
		*err = f->apply_err;
		return -1;
	}
	return 0;
}

int mfs_dst_ready(struct mfs_dst *f, ferr_t *err)
{
	if (!f || !f->applying)
		return 0;
	double wait0 = ms_since(f->t_apply);
	pthread_join(f->th, NULL);
	f->applying = false;
	pr_info("file-system delta applied in %.1f ms (waited %.1f ms for it)",
		ms_since(f->t_apply), ms_since(f->t_apply) - wait0);
	if (f->apply_rc < 0) {
		*err = f->apply_err;
		return -1;
	}
	return 0;
}

void mfs_dst_end(struct mfs_dst *f, bool ok)
{
	if (!f)
		return;
	if (f->applying)
		pthread_join(f->th, NULL);
	image_release(f, ok);
	if (!ok && f->placed)
		fs_rm_rf(f->upper, NULL);
	if (f->work[0])
		fs_rm_rf(f->work, NULL);
	free(f);
}
