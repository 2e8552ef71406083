/* The VM tests' guest: a boot sector (as QEMU's own migration tests use)
 * that enters 32-bit protected mode and forever adds 1 to the first byte of
 * every 4 KiB page from 1 MiB to MEM_END, counts its passes in the 32-bit
 * word at 0x500 and writes 'B' to the serial port every 16 passes.
 * Stopped at any moment, with P passes done, the pages below some address
 * hold P + 1 and the rest P (mod 256): memcheck.c checks that. Built by build-guest.sh: gcc -c, ld -Ttext 0x7c00, objcopy. */
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
outer:
	mov $(1 << 20), %eax
inner:
	incb (%eax)
	add $4096, %eax
	cmp $(MEM_END), %eax
	jb inner
	incl 0x500
	testl $15, 0x500
	jnz outer
	mov $0x3f8, %dx
	mov $'B', %al
	outb %al, %dx
	jmp outer

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
