/* A program with no libc, built by tests/test_exec_escape.py as a PIE whose
 * PT_INTERP the test chooses (-Wl,--dynamic-linker=PATH).  It needs no
 * relocation, so it runs the same whether the kernel starts it directly (as
 * a static program: no interpreter) or an ld.so starts it.  It says which
 * from its auxiliary vector: AT_BASE is where the kernel mapped an
 * interpreter, 0 when it mapped none.
 *
 * Prints "base=0" (exit 0) when no interpreter was mapped; "ESCAPED" (exit
 * 66) when one was, i.e. when the host kernel loaded an interpreter the
 * Sentry never checked. */
#define AT_BASE 7
#define SYS_write 1
#define SYS_exit_group 231

static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

__attribute__((used, noreturn)) static void start_c(long *sp)
{
	long argc = sp[0];
	long *p = sp + 1 + argc + 1;        /* envp */
	while (*p) p++;
	unsigned long base = 0;
	for (p++; p[0]; p += 2)             /* auxv */
		if (p[0] == AT_BASE) base = p[1];
	if (base == 0) {
		static const char ok[] = "base=0\n";
		sys3(SYS_write, 1, (long)ok, sizeof ok - 1);
		sys3(SYS_exit_group, 0, 0, 0);
	}
	static const char bad[] = "ESCAPED: an interpreter is mapped\n";
	sys3(SYS_write, 1, (long)bad, sizeof bad - 1);
	sys3(SYS_exit_group, 66, 0, 0);
	__builtin_unreachable();
}

__asm__(".globl _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall start_c\n\thlt\n");
