/* CRIU's page-server protocol, the receiving end (psread.h). */
#include "criu/psread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "criu/imgframe.h"
#include "proto/snapshot.pb-c.h"

#define PS_IOV_ADD	   1
#define PS_IOV_HOLE	   2
#define PS_IOV_OPEN	   3
#define PS_IOV_OPEN2	   4
#define PS_IOV_PARENT	   5
#define PS_IOV_ADD_F	   6
#define PS_IOV_CLOSE	   0x1023
#define PS_IOV_FORCE_CLOSE 0x1024
#define PS_CMD_MASK	   0xffffU
#define PS_TYPE_MASK	   0xffU
#define HDR_OLD		   24U /* CRIU <= 4.1: u32 nr_pages */
#define HDR_NEW		   32U /* CRIU >= 4.2: u64 nr_pages after padding */
#define PAGEMAP_MAGIC	   0x56084025U
#define NR_PAGES_MAX	   (1ULL << 40)

struct hdr {
	uint32_t cmd, flags;
	uint64_t nr_pages, vaddr, dst_id;
};

/* 1: all n bytes; 0: the stream ended before the first; < 0: error */
static int recv_full(int sk, void *buf, size_t n, ferr_t *err)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(sk, (uint8_t *)buf + got, n - got, MSG_WAITALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ferr_sys(err, FX_FAIL, "reading CRIU's page stream");
		if (r == 0) {
			if (!got)
				return 0;
			return ferr_set(err, FX_FAIL, "CRIU's page stream ended within a command");
		}
		got += (size_t)r;
	}
	return 1;
}

static int send_full(int sk, const void *buf, size_t n, ferr_t *err)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = send(sk, (const uint8_t *)buf + done, n - done, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return ferr_sys(err, FX_FAIL, "answering CRIU's page stream");
		done += (size_t)w;
	}
	return 0;
}

static uint32_t u32_at(const uint8_t *b)
{
	uint32_t v;

	memcpy(&v, b, 4);
	return v;
}

static uint64_t u64_at(const uint8_t *b)
{
	uint64_t v;

	memcpy(&v, b, 8);
	return v;
}

/* The next header (the first decides its size): 1, 0 at the end, < 0. */
static int read_hdr(int sk, unsigned *hdr_len, struct hdr *h, ferr_t *err)
{
	uint8_t b[HDR_NEW];
	int r = recv_full(sk, b, *hdr_len ? *hdr_len : HDR_OLD, err);

	if (r <= 0)
		return r;
	h->cmd = u32_at(b) & PS_CMD_MASK;
	h->flags = u32_at(b) >> 16;
	if (!*hdr_len) {
		bool opens =
		    h->cmd == PS_IOV_OPEN || h->cmd == PS_IOV_OPEN2 || h->cmd == PS_IOV_PARENT;
		/* a 24-byte OPEN has its dst_id (never 0) where a 32-byte one
		 * has its vaddr (0); a first CLOSE reads the same either way */
		*hdr_len = opens && u64_at(b + 16) == 0 ? HDR_NEW : HDR_OLD;
		if (*hdr_len == HDR_NEW && recv_full(sk, b + HDR_OLD, HDR_NEW - HDR_OLD, err) <= 0)
			return ferr_set(err, FX_FAIL, "CRIU's page stream ended within a command");
	}
	if (*hdr_len == HDR_NEW) {
		h->nr_pages = u64_at(b + 8);
		h->vaddr = u64_at(b + 16);
		h->dst_id = u64_at(b + 24);
	} else {
		h->nr_pages = u32_at(b + 4);
		h->vaddr = u64_at(b + 8);
		h->dst_id = u64_at(b + 16);
	}
	return 1;
}

/* CRIU's image types, and the numbers older CRIUs used for them. */
static int decode_type(uint64_t dst_id, enum psr_type *t)
{
	switch (dst_id & PS_TYPE_MASK) {
	case 1:
	case 10:
	case 11:
	case 16:
	case 17:
		*t = PSR_PID;
		return 0;
	case 2:
	case 27:
	case 28:
	case 29:
	case 32:
	case 33:
	case 34:
		*t = PSR_SHMEM;
		return 0;
	default:
		return -1;
	}
}

static int take_pages(int sk, const struct psr_sink *s, const struct hdr *h, ferr_t *err)
{
	uint64_t left = h->nr_pages * PSR_PAGE, va = h->vaddr;

	while (left) {
		uint8_t *buf;
		size_t len;
		int r;
		if (s->room(s->arg, va, left, &buf, &len, err) < 0)
			return -1;
		if (!len || len % PSR_PAGE)
			return ferr_set(err, FX_FAIL,
					"page stream: the sink gave %zu bytes of room", len);
		if (len > left)
			len = (size_t)left;
		if ((r = recv_full(sk, buf, len, err)) <= 0)
			return r < 0
				   ? -1
				   : ferr_set(err, FX_FAIL,
					      "CRIU's page stream ended within the pages at %#llx",
					      (unsigned long long)va);
		if (s->pages(s->arg, va, len, err) < 0)
			return -1;
		va += len;
		left -= len;
	}
	return 0;
}

static int add(int sk, const struct psr_sink *s, const struct hdr *h, uint64_t *cur,
	       struct psr_stats *st, ferr_t *err)
{
	uint32_t flags = h->cmd == PS_IOV_ADD_F ? h->flags
			 : h->cmd == PS_IOV_ADD ? PSR_PE_PRESENT
						: PSR_PE_PARENT;
	enum psr_type t;

	if (h->nr_pages > NR_PAGES_MAX || h->vaddr % PSR_PAGE)
		return ferr_set(err, FX_FAIL, "page stream: a bad entry (%#llx, %llu pages)",
				(unsigned long long)h->vaddr, (unsigned long long)h->nr_pages);
	if (h->dst_id != *cur) { /* CRIU's "IO w/o open" of old senders */
		if (decode_type(h->dst_id, &t) < 0 || s->open(s->arg, t, h->dst_id >> 8, err) < 0)
			return decode_type(h->dst_id, &t) < 0
				   ? ferr_set(err, FX_FAIL, "page stream: unknown image type")
				   : -1;
		*cur = h->dst_id;
		st->images++;
	}
	if (s->entry(s->arg, h->vaddr, h->nr_pages, flags, err) < 0)
		return -1;
	st->entries++;
	if (!(flags & PSR_PE_PRESENT))
		return 0;
	st->pages += h->nr_pages;
	return take_pages(sk, s, h, err);
}

static int open_img(int sk, const struct psr_sink *s, const struct hdr *h, uint64_t *cur,
		    struct psr_stats *st, ferr_t *err)
{
	enum psr_type t;
	char no_parent = 0;

	if (decode_type(h->dst_id, &t) < 0)
		return ferr_set(err, FX_FAIL, "page stream: unknown image type %llu",
				(unsigned long long)(h->dst_id & PS_TYPE_MASK));
	if (s->open(s->arg, t, h->dst_id >> 8, err) < 0)
		return -1;
	*cur = h->dst_id;
	st->images++;
	return h->cmd == PS_IOV_OPEN2 ? send_full(sk, &no_parent, 1, err) : 0;
}

int psr_serve(int sk, const struct psr_sink *s, struct psr_stats *st, ferr_t *err)
{
	uint64_t cur = 0;
	int32_t zero = 0;
	struct hdr h = {0};
	int r;

	memset(st, 0, sizeof(*st));
	for (;;) {
		if ((r = read_hdr(sk, &st->hdr_len, &h, err)) <= 0)
			return r < 0 ? -1
				     : ferr_set(err, FX_FAIL,
						"CRIU's page stream ended before its close");
		switch (h.cmd) {
		case PS_IOV_OPEN:
		case PS_IOV_OPEN2:
			r = open_img(sk, s, &h, &cur, st, err);
			break;
		case PS_IOV_PARENT: /* no parent images here */
			r = send_full(sk, &zero, sizeof(zero), err);
			break;
		case PS_IOV_ADD:
		case PS_IOV_ADD_F:
		case PS_IOV_HOLE:
			r = add(sk, s, &h, &cur, st, err);
			break;
		case PS_IOV_CLOSE:
		case PS_IOV_FORCE_CLOSE:
			return send_full(sk, &zero, sizeof(zero), err);
		default:
			return ferr_set(err, FX_FAIL, "page stream: unexpected command %#x", h.cmd);
		}
		if (r < 0)
			return -1;
	}
}

/* A new file (a stage directory's: no fsync, the store syncs what it keeps) */
static int write_file(const char *path, const uint8_t *buf, size_t len, ferr_t *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	size_t done = 0;

	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "create %s", path);
	while (done < len) {
		ssize_t w = write(fd, buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			close(fd);
			return ferr_sys(err, FX_FAIL, "write %s", path);
		}
		done += (size_t)w;
	}
	if (close(fd) < 0)
		return ferr_sys(err, FX_FAIL, "write %s", path);
	return 0;
}

static int put_msg(uint8_t **buf, size_t *len, size_t *cap, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint32_t n32 = (uint32_t)n;

	if (*len + 4 + n > *cap) {
		size_t nc = (*cap + 4 + n) * 2;
		uint8_t *nb = realloc(*buf, nc);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, &n32, 4);
	protobuf_c_message_pack(m, *buf + *len + 4);
	*len += 4 + n;
	return 0;
}

int psr_pagemap_write(const char *path, uint32_t pages_id, const struct psr_entry *e, size_t n,
		      ferr_t *err)
{
	FerrySnap__PagemapHead head = FERRY_SNAP__PAGEMAP_HEAD__INIT;
	size_t len = 8, cap = 64 + n * 32;
	uint8_t *buf = malloc(cap);
	uint32_t magic[2] = {CRIU_IMG_COMMON_MAGIC, PAGEMAP_MAGIC};
	int rc = 0;

	if (!buf)
		return ferr_set(err, FX_FAIL, "out of memory");
	memcpy(buf, magic, 8);
	head.has_pages_id = 1;
	head.pages_id = pages_id;
	if (put_msg(&buf, &len, &cap, &head.base) < 0)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		FerrySnap__PagemapEntry pe = FERRY_SNAP__PAGEMAP_ENTRY__INIT;
		pe.has_vaddr = pe.has_nr_pages = pe.has_flags = pe.has_pages = 1;
		pe.vaddr = e[i].vaddr;
		/* CRIU 4.1 reads field 2; 4.2 reads field 5 when present */
		pe.nr_pages = e[i].nr_pages <= UINT32_MAX ? (uint32_t)e[i].nr_pages : 0;
		pe.pages = e[i].nr_pages;
		pe.flags = e[i].flags;
		rc = put_msg(&buf, &len, &cap, &pe.base);
	}
	if (rc < 0)
		rc = ferr_set(err, FX_FAIL, "out of memory");
	else
		rc = write_file(path, buf, len, err);
	free(buf);
	return rc;
}
