/* The VM tests' guest: a boot sector (as QEMU's own migration tests use)
 * that enters 32-bit protected mode and forever adds 1 to the first byte of
 * every 4 KiB page from 1 MiB to MEM_END, counts its passes in the 32-bit
 * word at 0x500 and writes 'B' to the serial port every 16 passes.
 * Stopped at any moment, with P passes done, the pages below some address
 * hold P + 1 and the rest P (mod 256): memcheck.c checks that. Built by build-guest.sh: gcc -c, ld -Ttext 0x7c00, objcopy.
 * With DISK_SECTORS (N): every 16 passes, before its 'B', it also writes
 * the sector 1 + (P / 16) mod N of its IDE disk (ATA PIO, LBA28), every
 * 32-bit word of it P: diskcheck.py checks that the disk holds every
 * write up to the last one (none lost in a migration).
 * With RANDOM_FILL (the benchmark's guest): every pass also rewrites the
 * rest of each page (bytes 4..4095) with the next words of an xorshift32
 * sequence, so that what it dirties does not compress (real memory
 * compresses far less than one counter byte per page); byte 0 stays the
 * counter memcheck checks. */
#ifndef MEM_END
#define MEM_END (32 << 20)
#endif
	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdtl gdtdesc
	inb $0x92, %al		/* A20 on (fast gate) */
	orb $2, %al
	outb %al, $0x92
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $8, $pm

	.code32
pm:
	mov $16, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7c00, %esp
	movl $0, 0x500
	mov $(1 << 20), %eax	/* the firmware left data in some pages */
zero:
	movb $0, (%eax)
	add $4096, %eax
	cmp $(MEM_END), %eax
	jb zero
	mov $0x2545f491, %ebp	/* RANDOM_FILL: the xorshift32 state */
outer:
	mov $(1 << 20), %eax
inner:
	incb (%eax)
#ifdef RANDOM_FILL
	lea 4(%eax), %edi
	mov $1023, %ecx
3:	mov %ebp, %ebx
	shl $13, %ebx
	xor %ebx, %ebp
	mov %ebp, %ebx
	shr $17, %ebx
	xor %ebx, %ebp
	mov %ebp, %ebx
	shl $5, %ebx
	xor %ebx, %ebp
	mov %ebp, (%edi)
	add $4, %edi
	dec %ecx
	jnz 3b
#endif
	add $4096, %eax
	cmp $(MEM_END), %eax
	jb inner
	incl 0x500
	testl $15, 0x500
	jnz outer
#ifdef DISK_SECTORS
	call disk_write
#endif
	mov $0x3f8, %dx
	mov $'B', %al
	outb %al, %dx
	jmp outer

#ifdef DISK_SECTORS
/* Sector 1 + (P / 16) mod DISK_SECTORS := P in every word (buffer 0x600). */
disk_write:
	mov 0x500, %eax
	mov $0x600, %edi
	mov $128, %ecx
	cld
	rep stosl
	mov 0x500, %eax
	shr $4, %eax
	xor %edx, %edx
	mov $(DISK_SECTORS), %ecx
	div %ecx
	lea 1(%edx), %ebx	/* the LBA */
	call ata_wait
	mov $0x1f6, %dx
	mov %ebx, %eax
	shr $24, %eax
	and $0x0f, %al
	or $0xe0, %al
	outb %al, %dx
	mov $0x1f2, %dx
	mov $1, %al
	outb %al, %dx
	inc %dx			/* 0x1f3 */
	mov %bl, %al
	outb %al, %dx
	inc %dx			/* 0x1f4 */
	mov %bh, %al
	outb %al, %dx
	inc %dx			/* 0x1f5 */
	mov %ebx, %eax
	shr $16, %eax
	outb %al, %dx
	mov $0x1f7, %dx
	mov $0x30, %al		/* WRITE SECTORS */
	outb %al, %dx
1:	inb %dx, %al		/* DRQ, not BSY */
	and $0x88, %al
	cmp $0x08, %al
	jne 1b
	mov $0x1f0, %dx
	mov $0x600, %esi
	mov $256, %ecx
	rep outsw
ata_wait:
	mov $0x1f7, %dx
2:	inb %dx, %al
	test $0x80, %al
	jnz 2b
	ret
#endif

	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* code: base 0, 4 GiB, 32-bit */
	.quad 0x00cf92000000ffff	/* data */
gdtdesc:
	.word gdtdesc - gdt - 1
	.long gdt

	.org 510
	.byte 0x55, 0xaa
