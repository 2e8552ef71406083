/* Incoming image sets on the receiver's disk. */
#define LOG_PREFIX "store"
#include "snapshot/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/util.h"
#include "proto/wire.pb-c.h"

#define PROGRESS_NAME ".ferry-progress"
#define OFFERED_NAME  ".ferry-manifest"

struct store_set {
	char state[PATH_MAX];
	char peer[STORE_PEER_MAX + 1]; /* whose set: its scope */
	char dir[PATH_MAX];	       /* STATE/incoming/<peer>/<id> */
	const manifest_t *m;
	const uint8_t *mbuf;
	size_t mlen;
	uint64_t *offset; /* durable offset per file */
	bool *complete;
	/* the file being written */
	int fd;
	uint32_t cur;
	uint64_t cur_off; /* bytes written (not necessarily synced); zero chunks are holes */
};

struct store_hash {
	struct sha256_ctx *sha;
	const Ferry__ImageFile *f;
};

bool store_peer_ok(const char *peer)
{
	size_t n = strlen(peer);

	if (n == 0 || n > STORE_PEER_MAX || peer[0] == '.')
		return false;
	return strspn(peer, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
	       n;
}

static int check_peer(const char *peer, ferr_t *err)
{
	if (!store_peer_ok(peer))
		return ferr_set(err, FX_USAGE,
				"the peer's certificate name '%.64s' cannot name its set store "
				"(letters, digits, '.', '_', ':', '-'; up to %d)",
				peer, STORE_PEER_MAX);
	return 0;
}

int store_set_path(const char *state, const char *peer, const char *set_id, char *buf, size_t len,
		   ferr_t *err)
{
	if (check_peer(peer, err) < 0)
		return -1;
	return xsnprintf(buf, len, err, "%s/sets/%s/%s", state, peer, set_id);
}

/* The manifest a complete set was stored with equals mbuf: 1; another: 0;
 * no such set: -1. */
static int stored_manifest_is(const char *dir, const uint8_t *mbuf, size_t mlen)
{
	char path[PATH_MAX], *old = NULL;
	size_t olen = 0;
	struct stat st;
	ferr_t e = {0};
	int ret;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return -1;
	if (xsnprintf_path(path, sizeof(path), dir, MANIFEST_NAME) < 0 ||
	    fs_read_all(path, &old, &olen, MANIFEST_MAX + MANIFEST_HDR_LEN, &e) < 0)
		return 0;
	ret = olen == mlen && !memcmp(old, mbuf, mlen);
	free(old);
	return ret;
}

int store_have_set(const char *state, const char *peer, const char *set_id, const uint8_t *mbuf,
		   size_t mlen, ferr_t *err)
{
	char p[PATH_MAX];
	int r;

	if (store_set_path(state, peer, set_id, p, sizeof(p), err) < 0)
		return -1;
	r = stored_manifest_is(p, mbuf, mlen);
	if (r == 0)
		return ferr_set(err, FX_CONFLICT,
				"set %s from %s is already here with another manifest; "
				"a set id names one set",
				set_id, peer);
	return r == 1;
}

static int save_progress(struct store_set *s, ferr_t *err)
{
	Ferry__Wire__Progress p = FERRY__WIRE__PROGRESS__INIT;
	Ferry__Wire__FilePos *pos = calloc(s->m->n_files, sizeof(*pos));
	Ferry__Wire__FilePos **pp = calloc(s->m->n_files, sizeof(*pp));
	char path[PATH_MAX];
	uint8_t *buf = NULL;
	size_t len;
	int ret = -1;

	if (!pos || !pp) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	p.set_id = s->m->set_id;
	for (size_t i = 0; i < s->m->n_files; i++) {
		ferry__wire__file_pos__init(&pos[i]);
		pos[i].index = (uint32_t)i;
		pos[i].offset = s->offset[i];
		pos[i].has_complete = 1;
		pos[i].complete = s->complete[i];
		pp[i] = &pos[i];
	}
	p.n_files = s->m->n_files;
	p.files = pp;
	len = ferry__wire__progress__get_packed_size(&p);
	buf = malloc(len ? len : 1);
	if (!buf) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto out;
	}
	ferry__wire__progress__pack(&p, buf);
	if (xsnprintf_path(path, sizeof(path), s->dir, PROGRESS_NAME) < 0) {
		ferr_set(err, FX_FAIL, "path too long: %s", s->dir);
		goto out;
	}
	ret = fs_write_atomic(path, buf, len, 0600, err);
out:
	free(buf);
	free(pos);
	free(pp);
	return ret;
}

/* Reuse earlier progress when the same manifest was offered before (true).
 * Each partial file is cut back to its durable offset. */
static bool load_progress(struct store_set *s)
{
	char path[PATH_MAX], *old = NULL, *raw = NULL;
	size_t olen = 0, rlen = 0;
	Ferry__Wire__Progress *p = NULL;
	bool reused = false;
	ferr_t e = {0};

	if (xsnprintf_path(path, sizeof(path), s->dir, OFFERED_NAME) < 0 ||
	    fs_read_all(path, &old, &olen, MANIFEST_MAX + MANIFEST_HDR_LEN, &e) < 0 ||
	    olen != s->mlen || memcmp(old, s->mbuf, olen))
		goto out;
	if (xsnprintf_path(path, sizeof(path), s->dir, PROGRESS_NAME) < 0 ||
	    fs_read_all(path, &raw, &rlen, 64 << 20, &e) < 0)
		goto out;
	p = ferry__wire__progress__unpack(NULL, rlen, (uint8_t *)raw);
	if (!p || strcmp(p->set_id, s->m->set_id))
		goto out;
	reused = true;
	for (size_t k = 0; k < p->n_files; k++) {
		const Ferry__Wire__FilePos *f = p->files[k];
		char fp[PATH_MAX];
		struct stat st;

		if (f->index >= s->m->n_files || f->offset > s->m->files[f->index]->size)
			continue;
		if (xsnprintf_path(fp, sizeof(fp), s->dir, s->m->files[f->index]->name) < 0 ||
		    lstat(fp, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < f->offset)
			continue;
		s->offset[f->index] = f->offset;
		s->complete[f->index] =
		    f->has_complete && f->complete && f->offset == s->m->files[f->index]->size;
		if (!s->complete[f->index] && truncate(fp, (off_t)f->offset) < 0)
			s->offset[f->index] = 0;
	}
out:
	if (p)
		ferry__wire__progress__free_unpacked(p, NULL);
	free(old);
	free(raw);
	return reused;
}

/* The peer's directory in incoming/ goes when its last set does (drop_peer_dir);
 * so a concurrent transfer of the same peer may see it vanish: retry. */
static int make_set_dir(const char *dir, ferr_t *err)
{
	for (int i = 0;; i++) {
		ferr_t e = {0};
		if (fs_mkdir_p(dir, 0700, &e) == 0)
			return 0;
		if (i == 3) {
			*err = e;
			return -1;
		}
	}
}

static void drop_peer_dir(const char *dir)
{
	char parent[PATH_MAX];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		rmdir(parent); /* fails while another set of the peer is there */
	}
}

/* A new incoming set of peer (dir does not exist yet) must not make it hold
 * more than STORE_INCOMING_MAX unfinished sets. */
static int within_quota(const char *dir, const char *peer, ferr_t *err)
{
	char parent[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (access(dir, F_OK) == 0)
		return 0; /* a resumed set */
	snprintf(parent, sizeof(parent), "%s", dir);
	*strrchr(parent, '/') = '\0';
	if (!(d = opendir(parent)))
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	if (n >= STORE_INCOMING_MAX)
		return ferr_set(
		    err, FX_CONFLICT,
		    "%s has %d unfinished sets here (at most %d): finish or remove them "
		    "first",
		    peer, n, STORE_INCOMING_MAX);
	return 0;
}

int store_check_space(const struct store_set *s, ferr_t *err)
{
	uint64_t need = 0, have;
	struct statvfs vf;

	for (size_t i = 0; i < s->m->n_files; i++)
		need += s->m->files[i]->size - s->offset[i];
	if (statvfs(s->dir, &vf) < 0)
		return ferr_sys(err, FX_FAIL, "statvfs %s", s->dir);
	have = (uint64_t)vf.f_bavail * vf.f_frsize;
	if (need > have)
		return ferr_set(err, FX_NOSPACE,
				"set %s needs %llu more bytes, %llu are free on the receiver: "
				"No space left on device",
				s->m->set_id, (unsigned long long)need, (unsigned long long)have);
	return 0;
}

struct store_set *store_open(const char *state, const char *peer, const manifest_t *m,
			     const uint8_t *mbuf, size_t mlen, ferr_t *err)
{
	struct store_set *s = NULL;
	char path[PATH_MAX];

	if (check_peer(peer, err) < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->offset = calloc(m->n_files + 1, sizeof(*s->offset))) ||
	    !(s->complete = calloc(m->n_files + 1, sizeof(*s->complete)))) {
		ferr_set(err, FX_FAIL, "out of memory");
		goto fail;
	}
	s->fd = -1;
	s->m = m;
	s->mbuf = mbuf;
	s->mlen = mlen;
	snprintf(s->state, sizeof(s->state), "%s", state);
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	if (xsnprintf(s->dir, sizeof(s->dir), err, "%s/incoming/%s/%s", state, peer, m->set_id) <
		0 ||
	    within_quota(s->dir, peer, err) < 0 || make_set_dir(s->dir, err) < 0)
		goto fail;
	if (!load_progress(s) && /* nothing reusable: start from an empty directory */
	    (fs_rm_rf(s->dir, err) < 0 || fs_mkdir_p(s->dir, 0700, err) < 0))
		goto fail;
	if (xsnprintf_path(path, sizeof(path), s->dir, OFFERED_NAME) < 0 ||
	    fs_write_atomic(path, mbuf, mlen, 0600, err) < 0 || save_progress(s, err) < 0)
		goto fail;
	return s;
fail:
	if (s) {
		free(s->offset);
		free(s->complete);
	}
	free(s);
	return NULL;
}

uint64_t store_offset(const struct store_set *s, size_t i)
{
	return s->offset[i];
}

bool store_complete(const struct store_set *s, size_t i)
{
	return s->complete[i];
}

static void close_cur(struct store_set *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Hash the first off bytes already on disk (resume). */
static int hash_prefix(const struct store_set *s, struct store_hash *h, uint64_t off, ferr_t *err)
{
	static const size_t bs = 256 << 10;
	char path[PATH_MAX];
	uint64_t done = 0;
	uint8_t *buf;
	int fd;

	if (xsnprintf_path(path, sizeof(path), s->dir, h->f->name) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s/%s", s->dir, h->f->name);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "re-read partial %s", path);
	buf = malloc(bs);
	if (!buf) {
		close(fd);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	while (done < off) {
		size_t want = off - done < bs ? (size_t)(off - done) : bs;
		ssize_t n = pread(fd, buf, want, (off_t)done);
		if (n <= 0) {
			free(buf);
			close(fd);
			if (n == 0)
				errno = EIO;
			return ferr_sys(err, FX_FAIL, "re-read partial %s", path);
		}
		sha256_update(h->sha, buf, (size_t)n);
		done += (uint64_t)n;
	}
	free(buf);
	close(fd);
	return 0;
}

struct store_hash *store_hash_begin(const struct store_set *s, uint32_t i, uint64_t off,
				    ferr_t *err)
{
	struct store_hash *h;

	if (i >= s->m->n_files || off > s->m->files[i]->size) {
		ferr_set(err, FX_INTEGRITY, "protocol violation: FILE_BEGIN for file %u at %llu", i,
			 (unsigned long long)off);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h || !(h->sha = sha256_new())) {
		free(h);
		ferr_set(err, FX_FAIL, "out of memory");
		return NULL;
	}
	h->f = s->m->files[i];
	if (off && hash_prefix(s, h, off, err) < 0) {
		store_hash_free(h);
		return NULL;
	}
	return h;
}

void store_hash_update(struct store_hash *h, const void *data, size_t len)
{
	sha256_update(h->sha, data, len);
}

int store_hash_end(struct store_hash *h, ferr_t *err)
{
	uint8_t digest[SHA256_LEN];
	int ret = 0;

	sha256_final(h->sha, digest);
	h->sha = NULL;
	if (memcmp(digest, h->f->sha256.data, SHA256_LEN))
		ret = ferr_set(err, FX_INTEGRITY,
			       "file %s: received data does not match the manifest's SHA-256 "
			       "(corrupted in transit or at the source)",
			       h->f->name);
	store_hash_free(h);
	return ret;
}

void store_hash_free(struct store_hash *h)
{
	if (!h)
		return;
	if (h->sha)
		sha256_free(h->sha);
	free(h);
}

int store_file_begin(struct store_set *s, uint32_t i, uint64_t off, ferr_t *err)
{
	char path[PATH_MAX], parent[PATH_MAX], *slash;
	const Ferry__ImageFile *f;

	close_cur(s);
	if (i >= s->m->n_files || s->complete[i] || off != s->offset[i])
		return ferr_set(err, FX_INTEGRITY,
				"protocol violation: FILE_BEGIN for file %u at offset %llu, "
				"expected offset %llu",
				i, (unsigned long long)off,
				(unsigned long long)(i < s->m->n_files ? s->offset[i] : 0));
	f = s->m->files[i];
	if (xsnprintf_path(path, sizeof(path), s->dir, f->name) < 0)
		return ferr_set(err, FX_FAIL, "path too long: %s/%s", s->dir, f->name);
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	*slash = '\0';
	if (fs_mkdir_p(parent, 0700, err) < 0)
		return -1;
	s->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->fd < 0)
		return ferr_sys(err, FX_FAIL, "create %s", path);
	if (ftruncate(s->fd, (off_t)off) < 0) {
		close_cur(s);
		return ferr_sys(err, FX_FAIL, "truncate %s", path);
	}
	s->cur = i;
	s->cur_off = off;
	return 0;
}

int store_file_write(struct store_set *s, uint32_t i, uint64_t off, const void *data, size_t len,
		     bool zero, ferr_t *err)
{
	const uint8_t *p = data;

	if (s->fd < 0 || i != s->cur || off != s->cur_off || off + len > s->m->files[i]->size)
		return ferr_set(err, FX_INTEGRITY,
				"protocol violation: DATA for file %u at %llu+%zu does not follow "
				"what was received",
				i, (unsigned long long)off, len);
	if (zero) { /* leave a hole: the file is extended at the next sync */
		s->cur_off += len;
		return 0;
	}
	while (len) {
		ssize_t n = pwrite(s->fd, p, len, (off_t)s->cur_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ferr_sys(err, FX_FAIL, "write %s/%s", s->dir, s->m->files[i]->name);
		}
		p += n;
		len -= (size_t)n;
		s->cur_off += (uint64_t)n;
	}
	return 0;
}

int store_sync(struct store_set *s, uint32_t *i, uint64_t *off, ferr_t *err)
{
	if (s->fd < 0)
		return 1;			     /* nothing open: nothing new */
	if (ftruncate(s->fd, (off_t)s->cur_off) < 0) /* materialise trailing holes */
		return ferr_sys(err, FX_FAIL, "extend %s/%s", s->dir, s->m->files[s->cur]->name);
	if (fdatasync(s->fd) < 0)
		return ferr_sys(err, FX_FAIL, "sync %s/%s", s->dir, s->m->files[s->cur]->name);
	s->offset[s->cur] = s->cur_off;
	if (save_progress(s, err) < 0)
		return -1;
	*i = s->cur;
	*off = s->cur_off;
	return 0;
}

int store_file_end(struct store_set *s, uint32_t i, uint64_t size, ferr_t *err)
{
	const Ferry__ImageFile *f;
	uint32_t di;
	uint64_t doff;

	if (s->fd < 0 || i != s->cur)
		return ferr_set(err, FX_INTEGRITY, "protocol violation: FILE_END for file %u", i);
	f = s->m->files[i];
	if (size != f->size || s->cur_off != f->size)
		return ferr_set(err, FX_INTEGRITY,
				"file %s: received %llu bytes, the manifest says %llu", f->name,
				(unsigned long long)s->cur_off, (unsigned long long)f->size);
	if (f->has_mode && fchmod(s->fd, f->mode & 0777) < 0)
		return ferr_sys(err, FX_FAIL, "chmod %s/%s", s->dir, f->name);
	s->complete[i] = true;
	if (store_sync(s, &di, &doff, err) < 0)
		return -1;
	close_cur(s);
	return 0;
}

int store_commit(struct store_set *s, ferr_t *err)
{
	char path[PATH_MAX], sets[PATH_MAX], final[PATH_MAX];

	close_cur(s);
	for (size_t i = 0; i < s->m->n_files; i++)
		if (!s->complete[i])
			return ferr_set(err, FX_INTEGRITY,
					"commit before every file arrived (%s is incomplete)",
					s->m->files[i]->name);
	if (xsnprintf_path(path, sizeof(path), s->dir, MANIFEST_NAME) < 0 ||
	    fs_write_atomic(path, s->mbuf, s->mlen, 0644, err) < 0)
		return -1;
	xsnprintf_path(path, sizeof(path), s->dir, PROGRESS_NAME);
	unlink(path);
	xsnprintf_path(path, sizeof(path), s->dir, OFFERED_NAME);
	unlink(path);
	if (fs_fsync_dir(s->dir, err) < 0)
		return -1;
	if (xsnprintf(sets, sizeof(sets), err, "%s/sets/%s", s->state, s->peer) < 0 ||
	    fs_mkdir_p(sets, 0755, err) < 0 ||
	    store_set_path(s->state, s->peer, s->m->set_id, final, sizeof(final), err) < 0)
		return -1;
	if (rename(s->dir, final) < 0) {
		if ((errno == EEXIST || errno == ENOTEMPTY) &&
		    stored_manifest_is(final, s->mbuf, s->mlen) == 1) {
			/* another connection completed it first: ours is redundant */
			fs_rm_rf(s->dir, NULL);
			drop_peer_dir(s->dir);
			return 0;
		}
		if (errno == EEXIST || errno == ENOTEMPTY)
			return ferr_set(err, FX_CONFLICT,
					"set %s is already here with another manifest",
					s->m->set_id);
		return ferr_sys(err, FX_FAIL, "rename %s to %s", s->dir, final);
	}
	drop_peer_dir(s->dir);
	return fs_fsync_dir(sets, err);
}

void store_close(struct store_set *s, bool discard)
{
	if (!s)
		return;
	if (s->fd >= 0 && !discard) {
		uint32_t i;
		uint64_t off;
		store_sync(s, &i, &off, NULL); /* keep what arrived for a resume */
	}
	close_cur(s);
	if (discard) {
		fs_rm_rf(s->dir, NULL);
		drop_peer_dir(s->dir);
		fs_fsync_dir(s->state, NULL);
	}
	free(s->offset);
	free(s->complete);
	free(s);
}

/* A directory that is one incoming set (not a peer's directory of them). */
static bool is_set_dir(const char *dir)
{
	char p[PATH_MAX];

	return (xsnprintf_path(p, sizeof(p), dir, OFFERED_NAME) == 0 && access(p, F_OK) == 0) ||
	       (xsnprintf_path(p, sizeof(p), dir, PROGRESS_NAME) == 0 && access(p, F_OK) == 0);
}

/* Remove the entries of dir untouched for more than max_age seconds; one
 * level further down (depth 1) for a peer's directory of sets. */
static int clean_dir(const char *dir, int64_t max_age, int depth, ferr_t *err)
{
	char p[PATH_MAX];
	struct dirent *de;
	int n = 0, k;
	DIR *d = opendir(dir);

	if (!d)
		return errno == ENOENT ? 0 : ferr_sys(err, FX_FAIL, "open %s", dir);
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if (xsnprintf_path(p, sizeof(p), dir, de->d_name) < 0 || lstat(p, &st) < 0)
			continue;
		if (depth > 0 && S_ISDIR(st.st_mode) && !is_set_dir(p)) {
			if ((k = clean_dir(p, max_age, depth - 1, err)) < 0)
				break;
			n += k;
			/* a peer's directory, once empty and stale */
			if (wall_time() - st.st_mtime > max_age && rmdir(p) == 0)
				n++;
			continue;
		}
		if (wall_time() - st.st_mtime <= max_age)
			continue;
		if (fs_rm_rf(p, err) < 0)
			break;
		n++;
	}
	closedir(d);
	return de ? -1 : n;
}

int store_clean_stale(const char *state, int64_t max_age, ferr_t *err)
{
	char dir[PATH_MAX];

	if (xsnprintf(dir, sizeof(dir), err, "%s/incoming", state) < 0)
		return -1;
	return clean_dir(dir, max_age, 1, err);
}
