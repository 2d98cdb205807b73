/* clone3(2) (issue 13): the threads glibc makes with it, a fork with a
 * pidfd and both settid addresses, an exit signal of its own, vfork,
 * CLONE_CLEAR_SIGHAND, the registers the caller and the child get back, a
 * new PID and UTS namespace (run as root, natively the host's), and the
 * errors in the kernel's order.  The same transcript natively and inside. */
#include "transcript.h"
#include <linux/sched.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/utsname.h>

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

static long c3(struct clone_args *a, size_t n) { return syscall(SYS_clone3, a, n); }

static volatile int usr2;
static void on_usr2(int s) { (void)s; usr2++; }
static void on_usr1(int s) { (void)s; }

static void *thread_main(void *arg) { return (void *)((long)arg + (syscall(SYS_gettid) != getpid())); }

/* a raw clone3 with the registers watched: rdi and rsi as the caller
 * left them, in the parent after the call and in the child */
static long watched(struct clone_args *a, size_t n, int *kept)
{
	register long rax asm("rax") = SYS_clone3;
	register long rdi asm("rdi") = (long)a;
	register long rsi asm("rsi") = (long)n;
	asm volatile("syscall" : "+r"(rax), "+r"(rdi), "+r"(rsi) : : "rcx", "r11", "memory");
	*kept = rdi == (long)a && rsi == (long)n;
	return rax;
}

/* a vfork child on a stack of its own exits at once, from the syscall
 * instruction it came out of: it has no frame to return to */
static long vfork_exit(struct clone_args *a)
{
	register long rax asm("rax") = SYS_clone3;
	register long rdi asm("rdi") = (long)a;
	register long rsi asm("rsi") = sizeof *a;
	asm volatile("syscall\n\t"
		     "test %%rax, %%rax\n\t"
		     "jnz 1f\n\t"
		     "mov $60, %%eax\n\t"
		     "mov $6, %%edi\n\t"
		     "syscall\n"
		     "1:"
		     : "+r"(rax), "+r"(rdi), "+r"(rsi) : : "rcx", "r11", "memory");
	return rax;
}

/* a clone(2) thread (no stack of its own: it exits at once from the
 * syscall instruction it came out of); its exit status is nobody's */
static long raw_clone_thread(void)
{
	register long rax asm("rax") = SYS_clone;
	register long rdi asm("rdi") = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD;
	register long rsi asm("rsi") = 0;
	register long rdx asm("rdx") = 0;
	register long r10 asm("r10") = 0;
	register long r8 asm("r8") = 0;
	asm volatile("syscall\n\t"
		     "test %%rax, %%rax\n\t"
		     "jnz 1f\n\t"
		     "mov $60, %%eax\n\t"
		     "xor %%edi, %%edi\n\t"
		     "syscall\n"
		     "1:"
		     : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10), "+r"(r8) : : "rcx", "r11", "memory");
	return rax;
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	int st;

	/* glibc's pthread_create tries clone3 first */
	pthread_t t[4];
	void *res;
	for (long i = 0; i < 4; i++) T(pthread_create(&t[i], NULL, thread_main, (void *)(10 * i)));
	for (int i = 0; i < 4; i++) {
		T(pthread_join(t[i], &res));
		printf("thread %d returned %ld\n", i, (long)res);
	}

	/* a fork with a pidfd and both tids */
	int pidfd = -1, ptid = 0, ctid = 0;
	struct clone_args a = { .flags = CLONE_PIDFD | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID,
		.pidfd = (uintptr_t)&pidfd, .parent_tid = (uintptr_t)&ptid, .child_tid = (uintptr_t)&ctid,
		.exit_signal = SIGCHLD };
	long pid = c3(&a, sizeof a);
	if (pid == 0) {
		signal(SIGUSR1, SIG_DFL);
		pause();
		_exit(ctid == getpid() ? 3 : 4);
	}
	printf("fork: pid > 0 %d, parent_tid is it %d, pidfd %d\n", pid > 0, ptid == pid, pidfd >= 0);
	T(syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0));
	T(waitpid(pid, &st, 0) == pid);
	status("child signalled through its pidfd", st);

	pid = c3(&a, sizeof a);
	if (pid == 0) _exit(ctid == getpid() ? 3 : 4);
	T(waitpid(pid, &st, 0) == pid);
	status("child that checked its own tid", st);

	/* an exit signal of its own */
	signal(SIGUSR2, on_usr2);
	struct clone_args b = { .exit_signal = SIGUSR2 };
	pid = c3(&b, sizeof b);
	if (pid == 0) _exit(5);
	T(waitpid(pid, &st, __WALL) == pid);
	status("SIGUSR2 child", st);
	printf("parent got SIGUSR2: %d\n", usr2);

	/* vfork on a stack of its own */
	static char stack[1 << 16];
	struct clone_args v = { .flags = CLONE_VFORK | CLONE_VM, .exit_signal = SIGCHLD,
		.stack = (uintptr_t)stack, .stack_size = sizeof stack };
	pid = vfork_exit(&v);
	T(waitpid(pid, &st, 0) == pid);
	status("vfork child", st);

	/* CLONE_CLEAR_SIGHAND: handlers back to default, ignored stays ignored */
	signal(SIGUSR1, on_usr1);
	signal(SIGPIPE, SIG_IGN);
	struct clone_args c = { .flags = CLONE_CLEAR_SIGHAND, .exit_signal = SIGCHLD };
	pid = c3(&c, sizeof c);
	if (pid == 0) {
		struct sigaction sa;
		sigaction(SIGUSR1, NULL, &sa);
		int dfl = sa.sa_handler == SIG_DFL;
		sigaction(SIGPIPE, NULL, &sa);
		_exit(dfl * 10 + (sa.sa_handler == SIG_IGN));
	}
	T(waitpid(pid, &st, 0) == pid);
	status("CLONE_CLEAR_SIGHAND child (11: default, ignored kept)", st);

	/* the registers, in a struct longer than the kernel's (a zero tail) */
	uint64_t longer[16] = { 0 };
	longer[4] = SIGCHLD;
	int kept;
	pid = watched((struct clone_args *)longer, sizeof longer, &kept);
	if (pid == 0) _exit(kept ? 7 : 8);
	printf("parent kept rdi and rsi: %d\n", kept);
	T(waitpid(pid, &st, 0) == pid);
	status("child kept rdi and rsi (7)", st);

	/* a new PID and UTS namespace: the child is their init */
	struct clone_args n = { .flags = CLONE_NEWPID | CLONE_NEWUTS, .exit_signal = SIGCHLD };
	pid = c3(&n, sizeof n);
	if (pid == 0) {
		sethostname("inner", 5);
		_exit(getpid() * 10 + getppid());
	}
	T(waitpid(pid, &st, 0) == pid);
	status("namespaces' init (10: pid 1, parent 0)", st);
	struct utsname u;
	uname(&u);
	printf("hostname unchanged here: %d\n", strcmp(u.nodename, "inner") != 0);

	/* after unshare(CLONE_NEWPID) a thread is EINVAL (it would be of the
	 * caller's namespace), a process is the new namespace's init */
	pid = fork();
	if (pid == 0) {
		long made = raw_clone_thread();
		printf("clone(2) thread before: %s\n", made > 0 ? "made" : "refused");
		T(unshare(CLONE_NEWPID));
		T(pthread_create(&t[0], NULL, thread_main, NULL));
		made = raw_clone_thread();
		printf("clone(2) thread after: %s (%s)\n", made > 0 ? "made" : "refused",
		       made < 0 ? strerror(-made) : "-");
		made = raw_clone_thread();
		printf("and again: %s\n", made > 0 ? "made" : "refused");
		struct clone_args p1 = { .exit_signal = SIGCHLD };
		long init = c3(&p1, sizeof p1);
		if (init == 0) _exit(getpid());
		T(waitpid(init, &st, 0) == init);
		status("its first child (pid 1)", st);
		_exit(0);
	}
	T(waitpid(pid, &st, 0) == pid);
	status("unsharer", st);

	/* the errors, in the kernel's order */
	struct clone_args e = { .exit_signal = SIGCHLD };
	T(c3(&e, 0));
	T(c3(&e, 63));
	T(c3(&e, 4097));
	uint64_t tail[16] = { 0 };
	tail[4] = SIGCHLD;
	tail[13] = 1;
	T(c3((struct clone_args *)tail, sizeof tail));
	T(c3((struct clone_args *)8, sizeof e));
	struct clone_args bad;
#define BAD(...) do { bad = (struct clone_args){ __VA_ARGS__ }; T(c3(&bad, sizeof bad)); } while (0)
	BAD(.exit_signal = 65);
	BAD(.exit_signal = 0x100 | SIGCHLD);
	BAD(.flags = 1ULL << 40, .exit_signal = SIGCHLD);
	BAD(.flags = 0x00400000 /* CLONE_DETACHED */, .exit_signal = SIGCHLD);
	BAD(.flags = SIGCHLD, .exit_signal = SIGCHLD);
	BAD(.flags = CLONE_CLEAR_SIGHAND | CLONE_SIGHAND | CLONE_VM, .exit_signal = SIGCHLD);
	BAD(.flags = CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, .exit_signal = SIGCHLD);
	BAD(.flags = CLONE_PARENT, .exit_signal = SIGCHLD);
	BAD(.stack_size = 4096, .exit_signal = SIGCHLD);
	BAD(.stack = (uintptr_t)stack, .exit_signal = SIGCHLD);
	BAD(.set_tid_size = 33, .exit_signal = SIGCHLD);
	BAD(.set_tid_size = 1, .exit_signal = SIGCHLD);
	BAD(.flags = CLONE_THREAD | CLONE_SIGHAND, .exit_signal = 0);
	BAD(.flags = CLONE_FS | CLONE_NEWNS, .exit_signal = SIGCHLD);
	BAD(.flags = CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWPID);
	return 0;
}
