/* A reader of CRIU's page-server protocol: the receiving end of what
 * `criu dump --page-server --ps-socket FD` sends (CRIU's criu/page-xfer.c),
 * so that ferry takes a dump's memory from a socket instead of from
 * pages-*.img files on disk (snapshot/pagestream.h).
 *
 * The protocol, as CRIU 4 speaks it: every command is a fixed header
 *
 *   u32 cmd (low 16 bits the command, high 16 the pagemap flags of ADD_F)
 *   nr_pages (u32 up to CRIU 4.1; u64 after 4 bytes of padding from 4.2)
 *   u64 vaddr
 *   u64 dst_id (image id << 8 | image type: 1 a task's pagemap, 2 shmem)
 *
 * so 24 bytes up to CRIU 4.1 and 32 from 4.2 (told apart at the first
 * OPEN2: its vaddr is 0 where a 24-byte header has its nonzero dst_id).
 * OPEN2 starts an image and is answered with one byte (1: the receiver has
 * a parent image; always 0 here); PARENT asks the same and gets an int32;
 * ADD_F is one pagemap entry, followed by nr_pages * 4096 bytes of pages
 * when its flags have PE_PRESENT (ADD: present, HOLE: in the parent);
 * CLOSE (0x1023) or FORCE_CLOSE (0x1024) end the stream and are answered
 * with an int32 status 0. The stream is in native byte order (same host).
 *
 * Pure code over a socket; the sink decides where pages go. */
#ifndef FERRY_PSREAD_H
#define FERRY_PSREAD_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define PSR_PAGE 4096U

enum psr_type { PSR_PID = 1, PSR_SHMEM = 2 };

/* pagemap entry flags (CRIU's PE_*) */
#define PSR_PE_PARENT  1U
#define PSR_PE_LAZY    2U
#define PSR_PE_PRESENT 4U

struct psr_sink {
	/* a new pagemap image: pagemap-ID.img (PSR_PID) or pagemap-shmem-ID.img */
	int (*open)(void *arg, enum psr_type type, uint64_t id, ferr_t *err);
	/* one entry of the image opened last */
	int (*entry)(void *arg, uint64_t vaddr, uint64_t nr_pages, uint32_t flags, ferr_t *err);
	/* where the next pages of a present entry go, the first at vaddr: at
	 * most want bytes; *len > 0 and a multiple of PSR_PAGE */
	int (*room)(void *arg, uint64_t vaddr, uint64_t want, uint8_t **buf, size_t *len,
		    ferr_t *err);
	/* len bytes of pages, the first at vaddr, are in the room given last */
	int (*pages)(void *arg, uint64_t vaddr, size_t len, ferr_t *err);
	void *arg;
};

struct psr_stats {
	uint64_t images, entries, pages;
	unsigned hdr_len; /* 24 or 32: the sender's header */
};

/* Serve one dump's page stream on sk until its CLOSE (answered): 0. An
 * end of the stream before the close, a malformed command or a failing
 * sink: < 0 (the caller shuts sk down so that CRIU stops too). */
int psr_serve(int sk, const struct psr_sink *s, struct psr_stats *st, ferr_t *err);

/* One entry of a pagemap image. */
struct psr_entry {
	uint64_t vaddr, nr_pages;
	uint32_t flags;
};

/* Write a CRIU pagemap image (IMG_COMMON_MAGIC, PAGEMAP_MAGIC, the head
 * naming pages-PAGES_ID.img, the entries) readable by CRIU 4.1 and 4.2
 * (the run's length in both of their fields). */
int psr_pagemap_write(const char *path, uint32_t pages_id, const struct psr_entry *e, size_t n,
		      ferr_t *err);

#endif
