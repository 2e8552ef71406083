/*
 * wl_fs [--delete PATH]: a tenant whose files must travel with it.
 *
 * Under WL_DIR/fs it makes a hard link (hl1, hl2), a symbolic link
 * (sl -> hl1), a sparse file (64 MiB, one block written at 32 MiB), a FIFO,
 * deletes a file it made (gone) and, with --delete, a file of its image (an
 * overlay whiteout). Every 50 ms, a tick N: appends "N\n" to a log it keeps
 * open (O_APPEND), rewrites a file it keeps open (rw: "gen N\n", the fd left
 * at its end), creates f.N and deletes f.(N-2). So whatever instant the
 * tenant is frozen at, its memory (N, the fds' offsets) and its files agree.
 *
 * Verify: the log holds exactly 1..N and its fd is at its end; rw holds
 * "gen N\n" and its fd is there; f.N and f.(N-1) exist, no other f.*; the
 * links, the sparse file (size, content, still sparse), the FIFO, and the
 * deletions are as made; ticks went on after the move (N grew).
 */
#include "zdtm.h"

#include <dirent.h>
#include <getopt.h>
#include <limits.h>

#define SPARSE_SIZE (64LL << 20)
#define SPARSE_AT   (32LL << 20)

struct fsw {
	char dir[PATH_MAX / 2];
	int log, rw;
	unsigned n, n_ready;
	const char *del;
};

static void pathf(const struct fsw *w, char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", w->dir, name);
}

static int open_retry(const char *path, int flags)
{
	int fd;

	do
		fd = open(path, flags, 0644);
	while (fd < 0 && errno == EINTR);
	return fd;
}

static int put_file(const struct fsw *w, const char *name, const char *text)
{
	char p[PATH_MAX];
	int fd, r;

	pathf(w, p, name);
	if ((fd = open_retry(p, O_WRONLY | O_CREAT | O_TRUNC)) < 0)
		return -1;
	r = zdtm_write_full(fd, text, strlen(text)) < 0 ? -1 : 0;
	close(fd);
	return r;
}

static void setup_links(struct fsw *w)
{
	char a[PATH_MAX], b[PATH_MAX];
	int fd;

	pathf(w, a, "hl1");
	pathf(w, b, "hl2");
	if (put_file(w, "hl1", "linked\n") < 0 || link(a, b) < 0)
		goto fail;
	pathf(w, b, "sl");
	if (symlink("hl1", b) < 0)
		goto fail;
	pathf(w, a, "sparse");
	fd = open_retry(a, O_RDWR | O_CREAT | O_TRUNC);
	if (fd < 0 || ftruncate(fd, SPARSE_SIZE) < 0 || pwrite(fd, "end", 3, SPARSE_AT) != 3)
		goto fail;
	close(fd);
	pathf(w, a, "fifo");
	if (mkfifo(a, 0600) < 0)
		goto fail;
	pathf(w, a, "gone");
	if (put_file(w, "gone", "bye\n") < 0 || unlink(a) < 0)
		goto fail;
	if (w->del && unlink(w->del) < 0)
		goto fail;
	return;
fail:
	fprintf(stderr, "wl_fs: set-up in %s: %s\n", w->dir, strerror(errno));
	exit(2);
}

static void setup(struct fsw *w)
{
	char p[PATH_MAX];

	snprintf(w->dir, sizeof(w->dir), "%s/fs", zdtm_dir());
	if (mkdir(w->dir, 0755) < 0) {
		fprintf(stderr, "wl_fs: mkdir %s: %s\n", w->dir, strerror(errno));
		exit(2);
	}
	setup_links(w);
	pathf(w, p, "log");
	w->log = open_retry(p, O_WRONLY | O_CREAT | O_APPEND);
	pathf(w, p, "rw");
	w->rw = open_retry(p, O_RDWR | O_CREAT);
	if (w->log < 0 || w->rw < 0) {
		fprintf(stderr, "wl_fs: open in %s: %s\n", w->dir, strerror(errno));
		exit(2);
	}
}

static void tick(struct fsw *w)
{
	char line[64], p[PATH_MAX], name[32];
	unsigned n = w->n + 1;
	int len = snprintf(line, sizeof(line), "%u\n", n);

	if (zdtm_write_full(w->log, line, (size_t)len) < 0)
		return zdtm_note_failure("append to the log: %s", strerror(errno));
	len = snprintf(line, sizeof(line), "gen %u\n", n);
	if (lseek(w->rw, 0, SEEK_SET) != 0 || ftruncate(w->rw, 0) < 0 ||
	    zdtm_write_full(w->rw, line, (size_t)len) < 0)
		return zdtm_note_failure("rewrite rw: %s", strerror(errno));
	snprintf(name, sizeof(name), "f.%u", n);
	if (put_file(w, name, line) < 0)
		return zdtm_note_failure("create %s: %s", name, strerror(errno));
	if (n > 2) {
		snprintf(name, sizeof(name), "f.%u", n - 2);
		pathf(w, p, name);
		if (unlink(p) < 0)
			return zdtm_note_failure("delete %s: %s", p, strerror(errno));
	}
	w->n = n;
}

static void check_log(const struct fsw *w)
{
	char p[PATH_MAX], *buf, *s;
	struct stat st;
	unsigned want = 1;
	int fd;

	pathf(w, p, "log");
	if (fstat(w->log, &st) < 0 || lseek(w->log, 0, SEEK_CUR) != st.st_size)
		zdtm_fail("log: fd not at the file's end (size %lld)", (long long)st.st_size);
	buf = calloc(1, (size_t)st.st_size + 1);
	fd = open_retry(p, O_RDONLY);
	if (!buf || fd < 0 || zdtm_read_full(fd, buf, (size_t)st.st_size) != st.st_size)
		zdtm_fail("log: cannot read %s", p);
	for (s = buf; *s; want++) {
		char *end;
		unsigned long v = strtoul(s, &end, 10);
		if (*end != '\n' || v != want)
			zdtm_fail("log: line %u is '%.*s'", want, (int)(end - s), s);
		s = end + 1;
	}
	if (want - 1 != w->n)
		zdtm_fail("log: %u lines, the tenant made %u", want - 1, w->n);
	close(fd);
	free(buf);
}

static void check_rw(const struct fsw *w)
{
	char want[64], got[64] = {0};
	int len = snprintf(want, sizeof(want), "gen %u\n", w->n);

	if (lseek(w->rw, 0, SEEK_CUR) != len)
		zdtm_fail("rw: fd offset %lld, expected %d", (long long)lseek(w->rw, 0, SEEK_CUR),
			  len);
	if (pread(w->rw, got, sizeof(got) - 1, 0) != len || strcmp(got, want))
		zdtm_fail("rw: holds '%s', expected '%s'", got, want);
}

static void check_files(const struct fsw *w)
{
	DIR *d = opendir(w->dir);
	struct dirent *e;
	unsigned seen = 0;

	if (!d)
		zdtm_fail("opendir %s: %s", w->dir, strerror(errno));
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "f.", 2))
			continue;
		unsigned v = (unsigned)strtoul(e->d_name + 2, NULL, 10);
		if (v != w->n && v + 1 != w->n)
			zdtm_fail("%s: f.%u exists (tick %u deleted it)", w->dir, v, v + 2);
		seen++;
	}
	closedir(d);
	if (seen != (w->n > 1 ? 2u : w->n))
		zdtm_fail("%s: %u f.* files, expected 2 at tick %u", w->dir, seen, w->n);
}

static void check_links(const struct fsw *w)
{
	char a[PATH_MAX], b[PATH_MAX], buf[16] = {0};
	struct stat s1, s2;
	int fd;

	pathf(w, a, "hl1");
	pathf(w, b, "hl2");
	if (stat(a, &s1) < 0 || stat(b, &s2) < 0 || s1.st_ino != s2.st_ino || s1.st_nlink != 2)
		zdtm_fail("hl1/hl2 are not one file with 2 links");
	pathf(w, b, "sl");
	if (readlink(b, buf, sizeof(buf) - 1) != 3 || strcmp(buf, "hl1"))
		zdtm_fail("sl points at '%s', not hl1", buf);
	pathf(w, a, "sparse");
	fd = open_retry(a, O_RDONLY);
	if (fd < 0 || fstat(fd, &s1) < 0 || s1.st_size != SPARSE_SIZE)
		zdtm_fail("sparse: missing or wrong size");
	if (pread(fd, buf, 3, SPARSE_AT) != 3 || memcmp(buf, "end", 3) ||
	    pread(fd, buf, 3, SPARSE_AT - 4096) != 3 || memcmp(buf, "\0\0\0", 3))
		zdtm_fail("sparse: content differs");
	if (s1.st_blocks * 512 > (4 << 20))
		zdtm_fail("sparse: %lld bytes allocated (holes were filled)",
			  (long long)s1.st_blocks * 512);
	close(fd);
	pathf(w, a, "fifo");
	if (lstat(a, &s1) < 0 || !S_ISFIFO(s1.st_mode))
		zdtm_fail("fifo is not a FIFO");
	pathf(w, a, "gone");
	if (lstat(a, &s1) == 0)
		zdtm_fail("gone came back");
	if (w->del && lstat(w->del, &s1) == 0)
		zdtm_fail("%s (deleted from the image) came back", w->del);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"delete", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	struct fsw w = {0};
	int o;

	while ((o = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		if (o != 'd') {
			fprintf(stderr, "usage: %s [--delete PATH]\n", argv[0]);
			return 2;
		}
		w.del = optarg;
	}
	zdtm_init();
	setup(&w);
	tick(&w);
	w.n_ready = w.n;
	zdtm_ready();
	while (!zdtm_sleep_ms(50)) {
		zdtm_reap(0, NULL);
		tick(&w);
	}
	zdtm_fail_if_noted();
	if (w.n <= w.n_ready)
		zdtm_fail("no tick since ready (%u)", w.n);
	check_log(&w);
	check_rw(&w);
	check_files(&w);
	check_links(&w);
	zdtm_pass();
}
