/*
 * wl_file [--name FILE (wl_file.data)]
 *
 * Creates WL_DIR/FILE with 64 KiB of known content, keeps one read-write fd
 * at offset 12345 and a second fd opened O_APPEND that adds a 16-byte record
 * every 100 ms. Verify: the first fd's offset is still 12345, the O_APPEND
 * flag survived, base content and records are intact, the file size is what
 * we wrote, and further writes land where they should (at 12345 for the
 * positioned fd, at the end for the appending one).
 */
#include "zdtm.h"

#include <getopt.h>

#define BASE_SIZE 65536
#define OFFSET	  12345
#define RECORD	  16

struct wfile {
	char path[4096];
	int fd_pos;	  /* O_RDWR, left at OFFSET */
	int fd_app;	  /* O_WRONLY | O_APPEND */
	unsigned records; /* appended so far */
};

static char base_byte(size_t off)
{
	return (char)('A' + (zdtm_mix64(off) % 26));
}

static void record(unsigned n, char out[RECORD + 1])
{
	snprintf(out, RECORD + 1, "rec %010u\n", n);
}

static int open_retry(const char *path, int flags)
{
	int fd;

	do
		fd = open(path, flags, 0644);
	while (fd < 0 && errno == EINTR);
	return fd;
}

static void setup(struct wfile *f)
{
	char buf[BASE_SIZE];

	for (size_t i = 0; i < BASE_SIZE; i++)
		buf[i] = base_byte(i);
	f->fd_pos = open_retry(f->path, O_RDWR | O_CREAT | O_TRUNC);
	if (f->fd_pos < 0 || zdtm_write_full(f->fd_pos, buf, BASE_SIZE) < 0 ||
	    lseek(f->fd_pos, OFFSET, SEEK_SET) != OFFSET) {
		fprintf(stderr, "wl_file: cannot set up %s: %s\n", f->path, strerror(errno));
		exit(2);
	}
	f->fd_app = open_retry(f->path, O_WRONLY | O_APPEND);
	if (f->fd_app < 0) {
		fprintf(stderr, "wl_file: cannot open %s O_APPEND: %s\n", f->path, strerror(errno));
		exit(2);
	}
}

static void append_record(struct wfile *f)
{
	char rec[RECORD + 1];

	record(f->records, rec);
	if (zdtm_write_full(f->fd_app, rec, RECORD) < 0) {
		zdtm_note_failure("append to %s: %s", f->path, strerror(errno));
		return;
	}
	f->records++;
}

static void check_content(const struct wfile *f, off_t size)
{
	char buf[BASE_SIZE], rec[RECORD + 1];
	ssize_t n;

	n = pread(f->fd_pos, buf, BASE_SIZE, 0);
	if (n != BASE_SIZE)
		zdtm_fail("%s: short read of the base content (%zd bytes)", f->path, n);
	for (size_t i = 0; i < BASE_SIZE; i++)
		if (buf[i] != base_byte(i))
			zdtm_fail("%s: base content differs at byte %zu", f->path, i);
	if (size != BASE_SIZE + (off_t)f->records * RECORD)
		zdtm_fail("%s: size %lld, expected %lld (%u records appended)", f->path,
			  (long long)size, (long long)BASE_SIZE + (long long)f->records * RECORD,
			  f->records);
	for (unsigned r = 0; r < f->records; r++) {
		record(r, rec);
		n = pread(f->fd_pos, buf, RECORD, BASE_SIZE + (off_t)r * RECORD);
		if (n != RECORD || memcmp(buf, rec, RECORD) != 0)
			zdtm_fail("%s: appended record %u differs", f->path, r);
	}
}

static void check_writes(struct wfile *f)
{
	static const char probe[] = "ferry";
	char buf[sizeof(probe)];
	off_t end, pos;

	/* The positioned fd writes at OFFSET and moves on. */
	if (zdtm_write_full(f->fd_pos, probe, 5) < 0)
		zdtm_fail("%s: write at offset %d: %s", f->path, OFFSET, strerror(errno));
	if ((pos = lseek(f->fd_pos, 0, SEEK_CUR)) != OFFSET + 5)
		zdtm_fail("%s: offset %lld after a 5-byte write, expected %d", f->path,
			  (long long)pos, OFFSET + 5);
	if (pread(f->fd_pos, buf, 5, OFFSET) != 5 || memcmp(buf, probe, 5) != 0)
		zdtm_fail("%s: the write at offset %d did not land there", f->path, OFFSET);

	/* The appending fd writes at the end, wherever its offset was. */
	end = lseek(f->fd_pos, 0, SEEK_END);
	lseek(f->fd_app, 0, SEEK_SET);
	append_record(f);
	zdtm_fail_if_noted();
	if ((pos = lseek(f->fd_app, 0, SEEK_CUR)) != end + RECORD)
		zdtm_fail("%s: O_APPEND write ended at %lld, expected %lld", f->path,
			  (long long)pos, (long long)end + RECORD);
}

static void verify(struct wfile *f)
{
	struct stat st;
	off_t pos;
	int fl;

	zdtm_fail_if_noted();
	if ((pos = lseek(f->fd_pos, 0, SEEK_CUR)) != OFFSET)
		zdtm_fail("%s: fd offset is %lld, expected %d", f->path, (long long)pos, OFFSET);
	fl = fcntl(f->fd_app, F_GETFL);
	if (fl < 0 || !(fl & O_APPEND) || (fl & O_ACCMODE) != O_WRONLY)
		zdtm_fail("%s: second fd lost O_APPEND/O_WRONLY (flags 0x%x)", f->path, fl);
	if (fstat(f->fd_pos, &st) < 0)
		zdtm_fail("%s: fstat: %s", f->path, strerror(errno));
	check_content(f, st.st_size);
	check_writes(f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, 0, 'n'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	const char *name = "wl_file.data";
	struct wfile f = {0};
	int o;

	while ((o = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		if (o != 'n') {
			fprintf(stderr, "usage: %s [--name FILE (in WL_DIR)]\n", argv[0]);
			return 2;
		}
		name = optarg;
	}
	zdtm_init();
	zdtm_path(f.path, sizeof(f.path), name);
	setup(&f);
	zdtm_ready();
	while (!zdtm_sleep_ms(100)) {
		zdtm_reap(0, NULL);
		append_record(&f);
	}
	verify(&f);
	zdtm_pass();
}
