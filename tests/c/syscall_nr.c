/* The syscall number is an int: the kernel reads the low half of rax.
 * Prints what a few numbers give: with garbage in the high half (the call of
 * the low half), -1 (ENOSYS), past the table (ENOSYS).
 * Usage: syscall_nr FILE (a file to open by a number with high bits) */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static long raw(unsigned long nr, long a, long b, long c)
{
	long ret;
	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2) return 2;
	setvbuf(stdout, 0, _IONBF, 0);
	long fd = raw((0xA5A5UL << 32) | 257, AT_FDCWD, (long)argv[1], O_RDONLY);
	char b[32] = "";
	long n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
	if (n > 0) b[n] = 0;
	printf("openat with high bits: %s, read %ld: %s\n", fd >= 0 ? "opened" : "failed", n, b);
	printf("getpid with high bits is getpid: %d\n", raw((1UL << 32) | 39, 0, 0, 0) == getpid());
	/* (0x40000000 and up, bit 31 aside, are x32's: the filter kills those) */
	printf("-1: %ld, 0xffffffff: %ld, 999: %ld, 0x1_ffffffff: %ld\n", raw(-1L, 0, 0, 0),
	       raw(0xffffffffUL, 0, 0, 0), raw(999, 0, 0, 0), raw(0x1ffffffffUL, 0, 0, 0));
	return 0;
}
