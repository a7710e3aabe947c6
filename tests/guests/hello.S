/*
 * The smallest test guest: a 64-KiB real-mode "ROM" whose last 16 bytes
 * hold the reset vector, as a BIOS image does. Loaded so that it ends at
 * guest-physical 1 MiB (segment F000), it prints one line on the test
 * console port and leaves through the debug-exit port.
 *
 * Ports follow the emulator conventions the hypervisor mirrors: 0xE9 is
 * the console (Bochs/QEMU "debugcon"), 0xF4 the exit port (QEMU
 * isa-debug-exit); the value written is the exit status.
 */
#define TEST_CONSOLE_PORT 0xe9
#define TEST_EXIT_PORT 0xf4

	.code16
	.text
start:
	cli
	movw $message, %si
1:	movb %cs:(%si), %al
	testb %al, %al
	jz 2f
	outb %al, $TEST_CONSOLE_PORT
	incw %si
	jmp 1b
2:	xorb %al, %al
	outb %al, $TEST_EXIT_PORT
3:	hlt
	jmp 3b

message:
	.asciz "PASS hello: real mode from the reset vector\n"

	/* The CPU starts at F000:FFF0 (SDM Vol. 3A, 9.1.4). */
	.org 0xfff0
reset_vector:
	ljmp $0xf000, $start
	.org 0x10000
