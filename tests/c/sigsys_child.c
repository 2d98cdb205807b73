/* A child killed by the seccomp filter (an i386 `int 0x80`, an x32 syscall
 * number) must look to its parent as a SIGSYS death on Linux: the SIGCHLD
 * it gets, kill(pid, 0) on the zombie, the wait status.
 *
 * usage: sigsys_child MODE [own-filter]
 *   MODE: int80 | x32 | threads (int 0x80 from one of several threads)
 *   own-filter: the child installs a filter of its own that kills a foreign
 *   arch or an x32 number (natively, where no Sentry's filter is there).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AUDIT_ARCH_X86_64
#define AUDIT_ARCH_X86_64 0xc000003e
#endif

static volatile sig_atomic_t got;
static siginfo_t info;

static void on_chld(int sig, siginfo_t *si, void *ctx)
{
	(void)sig; (void)ctx;
	info = *si;
	got = 1;
}

static void own_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof f / sizeof f[0], f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
		perror("seccomp");
		_exit(99);
	}
}

static void int80(void)
{
	long r = 20;                 /* i386 getpid */
	__asm__ volatile("int $0x80" : "+a"(r) :: "memory");
}

static void x32(void)
{
	syscall(0x40000000 | 39);    /* x32 getpid */
}

static void *killer(void *arg)
{
	(void)arg;
	usleep(20000);
	int80();
	return NULL;
}

static void *spin(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "int80";
	if (!strcmp(mode, "int80-now"))
		int80();
	int filter = argc > 2 && !strcmp(argv[2], "own-filter");
	struct sigaction sa = { 0 };
	sigset_t block, old;
	struct rlimit nocore = { 0, 0 };

	setvbuf(stdout, NULL, _IONBF, 0);
	setrlimit(RLIMIT_CORE, &nocore);      /* natively: no core, whatever the host's limit */
	sa.sa_sigaction = on_chld;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);

	pid_t pid = fork();
	if (pid == 0) {
		if (filter)
			own_filter();
		if (!strcmp(mode, "threads")) {
			pthread_t t;
			pthread_create(&t, NULL, spin, NULL);
			pthread_create(&t, NULL, spin, NULL);
			usleep(20000);
			int80();
		} else if (!strcmp(mode, "thread")) {
			pthread_t t;
			pthread_create(&t, NULL, killer, NULL);
			pthread_create(&t, NULL, spin, NULL);
			spin(NULL);
		} else if (!strcmp(mode, "exec")) {
			execl("/proc/self/exe", argv[0], "int80-now", (char *)NULL);
			_exit(98);
		} else if (!strcmp(mode, "x32")) {
			x32();
		} else {
			int80();
		}
		printf("child survived\n");
		_exit(0);
	}
	while (!got)
		sigsuspend(&old);
	printf("SIGCHLD: signo=%s code=%s pid_is_child=%d status=%s\n",
	       sigabbrev_np(info.si_signo),
	       info.si_code == CLD_KILLED ? "CLD_KILLED" : info.si_code == CLD_DUMPED ? "CLD_DUMPED" : "other",
	       info.si_pid == pid, sigabbrev_np(info.si_status));
	/* an unreaped zombie: its pid still names it */
	for (int i = 0; i < 3; i++) {
		int r = kill(pid, 0);
		printf("kill(zombie, 0) = %d%s%s\n", r, r ? " " : "", r ? strerrorname_np(errno) : "");
	}
	printf("kill(zombie, SIGKILL) = %d\n", kill(pid, SIGKILL));
	siginfo_t wi = { 0 };
	int r = waitid(P_PID, pid, &wi, WEXITED | WNOWAIT);
	printf("waitid WNOWAIT = %d code=%s status=%s pid_is_child=%d\n", r,
	       wi.si_code == CLD_KILLED ? "CLD_KILLED" : wi.si_code == CLD_DUMPED ? "CLD_DUMPED" : "other",
	       sigabbrev_np(wi.si_status), wi.si_pid == pid);
	int st;
	pid_t w = waitpid(pid, &st, 0);
	printf("waitpid = child:%d WIFSIGNALED=%d WTERMSIG=%s WCOREDUMP=%d\n", w == pid,
	       WIFSIGNALED(st), sigabbrev_np(WTERMSIG(st)), WCOREDUMP(st) ? 1 : 0);
	r = kill(pid, 0);
	printf("kill(reaped, 0) = %d %s\n", r, r ? strerrorname_np(errno) : "");
	return 0;
}
