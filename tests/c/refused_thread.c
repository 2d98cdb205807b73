/* A thread the Sentry refuses (over --pids-limit) is made to exit(0) from
 * its first stop.  Here a filter of the process's own denies exit(2), so
 * that thread comes back from the call into code of its own, on its new
 * stack: it tries to open a host path the sandbox does not show, and says
 * what it got.  The Sentry must not let it run on.
 * Usage: refused_thread HOSTPATH */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 16
static const char *target;
static char stacks[THREADS][65536] __attribute__((aligned(16)));

static long raw3(long nr, long a, long b, long c)
{
	long ret;
	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

static void say(const char *s)
{
	const char *e = s;
	while (*e) e++;
	raw3(SYS_write, 1, (long)s, e - s);
}

/* On a new thread's stack: res is 0 for a thread clone made, negative for
 * one the Sentry refused whose exit(0) failed. */
__attribute__((used)) static void thread_main(long res)
{
	if (res < 0) {
		long fd = raw3(SYS_openat, AT_FDCWD, (long)target, O_RDONLY);
		say(fd >= 0 ? "ESCAPED: a refused thread opened the host path\n"
			    : "a refused thread ran on\n");
		raw3(SYS_exit_group, 42, 0, 0);
	}
	for (;;)
		raw3(SYS_pause, 0, 0, 0);
}

static long raw_clone(unsigned long flags, char *top)
{
	long ret;
	asm volatile("syscall\n\t"
		     "cmp %[top], %%rsp\n\t"
		     "jne 1f\n\t"
		     "mov %%rax, %%rdi\n\t"
		     "call thread_main\n\t"
		     "hlt\n"
		     "1:"
		     : "=a"(ret)
		     : "a"(SYS_clone), "D"(flags), "S"(top), "d"(0), [top] "r"(top)
		     : "rcx", "r11", "r8", "r10", "memory");
	return ret;
}

int main(int argc, char **argv)
{
	target = argv[1];
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof f / sizeof f[0], f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("seccomp");
		return 1;
	}
	unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
	int made = 0;
	long r = 0;
	for (int i = 0; i < THREADS; i++) {
		r = raw_clone(flags, stacks[i] + sizeof stacks[i]);
		if (r < 0)
			break;
		made++;
	}
	printf("made %d threads, then %ld\n", made, r);
	fflush(stdout);
	raw3(SYS_exit_group, 0, 0, 0);
	return 0;
}
