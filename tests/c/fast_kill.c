/* The kill family answered in C (native/identity.c signal_call): kill of a
 * pid > 0, tkill, tgkill, with their errors, and the cases it leaves to
 * Python (a bad signal, a zombie, a sender of other uids).  Prints one line
 * per call and nothing that differs between runs or between a sandbox and
 * Linux (no pid).  Run it as root, not as the sandbox's init.
 *
 * Usage: fast_kill              the transcript
 *        fast_kill loop N       N rounds of kill, tkill and tgkill of a
 *                               child with signal 0; prints "calls: 3N"
 *        fast_kill race PID S   for S seconds, threads signal PID (a host
 *                               process's pid, no sandbox process's) and
 *                               the names of children that come and go
 *                               (rows kept for zombies and reaped tasks);
 *                               prints how often PID was signalled */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>

#include "transcript.h"

static volatile int usr1;
static void on_usr1(int sig) { (void)sig; usr1++; }

static long tkill_(long tid, long sig) { return syscall(SYS_tkill, tid, sig); }
static long tgkill_(long tgid, long tid, long sig) { return syscall(SYS_tgkill, tgid, tid, sig); }

static pid_t paused_child(void)
{
	pid_t c = fork();
	if (c == 0) {
		for (;;) pause();
	}
	return c;
}

/* the registers the guest gave come back as they went, as Linux keeps them */
static void regs_kept(long nr, long a, long b, long c)
{
	long ret, rdi, rsi, rdx;
	__asm__ volatile("syscall" : "=a"(ret), "=D"(rdi), "=S"(rsi), "=d"(rdx)
			 : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	printf("syscall %ld: = %ld, rdi %s, rsi %s, rdx %s\n", nr, ret, rdi == a ? "kept" : "CHANGED",
	       rsi == b ? "kept" : "CHANGED", rdx == c ? "kept" : "CHANGED");
}

static volatile pid_t thread_tid;
static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = gettid();
	while (!usr1) usleep(1000);
	return NULL;
}

static void transcript(void)
{
	signal(SIGUSR1, on_usr1);
	pid_t c = paused_child();
	int st;
	T(kill(c, 0));
	T(kill(c, 65));                                     /* EINVAL */
	T(kill(c, -1));                                     /* EINVAL */
	T(syscall(SYS_kill, 0x100000000L | c, 0x100000000L));   /* ints: kill(c, 0) */
	T(kill(0x7ffffff0, 0));                             /* ESRCH */
	T(tkill_(c, 0));
	T(tkill_(0, 0));                                    /* EINVAL */
	T(tkill_(-5, 0));                                   /* EINVAL */
	T(tgkill_(c, c, 0));
	T(tgkill_(getpid(), gettid(), 0));
	T(tgkill_(getpid(), c, 0));                         /* ESRCH: not a thread of it */
	T(tgkill_(c, getpid(), 0));                         /* ESRCH */
	T(tgkill_(0, c, 0));                                /* EINVAL */
	T(tgkill_(c, 0, 0));                                /* EINVAL */
	T(tgkill_(c, c, 70));                               /* EINVAL */
	regs_kept(SYS_kill, c, 0, 0);
	regs_kept(SYS_tkill, c, 0, 0);
	regs_kept(SYS_tgkill, c, c, 0);
	regs_kept(SYS_tgkill, getpid(), gettid(), 0);
	T(kill(getpid(), SIGUSR1));
	printf("usr1 %d\n", usr1);
	pthread_t th;
	usr1 = 0;
	pthread_create(&th, NULL, thread_main, NULL);
	while (!thread_tid) usleep(1000);
	T(tgkill_(getpid(), thread_tid, SIGUSR1));
	pthread_join(th, NULL);
	printf("usr1 %d\n", usr1);
	T(kill(c, SIGTERM));
	T(waitpid(c, &st, 0) == c);
	status("child", st);
	T(kill(c, 0));                                      /* ESRCH: reaped */

	/* a zombie is there until reaped */
	pid_t z = fork();
	if (z == 0) _exit(3);
	usleep(100000);
	T(kill(z, 0));
	T(tkill_(z, 0));
	T(waitpid(z, &st, 0) == z);
	status("zombie", st);
	T(kill(z, 0));                                      /* ESRCH */

	/* uid 1000 signals its own and not root's */
	pid_t root_child = paused_child();
	pid_t dropped = fork();
	if (dropped == 0) {
		if (setuid(1000)) _exit(9);
		pid_t mine = paused_child();
		T(kill(mine, 0));
		T(tgkill_(mine, mine, 0));
		T(kill(root_child, 0));                     /* EPERM */
		T(tkill_(root_child, 0));                   /* EPERM */
		T(kill(getppid(), 0));                      /* EPERM */
		T(kill(mine, SIGKILL));
		T(waitpid(mine, &st, 0) == mine);
		status("mine", st);
		fflush(stdout);
		_exit(0);
	}
	T(waitpid(dropped, &st, 0) == dropped);
	status("dropped", st);
	T(kill(root_child, SIGKILL));
	T(waitpid(root_child, &st, 0) == root_child);
	status("root child", st);
}

static int loop(int n)
{
	pid_t c = paused_child();
	for (int i = 0; i < n; i++)
		if (kill(c, 0) || tkill_(c, 0) || tgkill_(c, c, 0)) { perror("kill"); return 1; }
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	printf("calls: %d\n", 3 * n);
	return 0;
}

static volatile int stop;
static long host_pid;
static pid_t alive;          /* a child that lives through the race: the fast path's to answer */
static int hit;
static volatile pid_t recent[64];

static void *churn(void *arg)
{
	(void)arg;
	for (int i = 0; !stop; i++) {
		pid_t c = fork();
		if (c == 0) _exit(0);
		recent[i % 64] = c;
		if (i % 2) waitpid(c, NULL, 0);          /* the rest stay zombies a while */
		else if (i % 64 == 0) while (waitpid(-1, NULL, WNOHANG) > 0) ;
	}
	return NULL;
}

static void *signal_all(void *arg)
{
	(void)arg;
	while (!stop) {
		if (kill(host_pid, SIGKILL) == 0) __atomic_add_fetch(&hit, 1, __ATOMIC_RELAXED);
		if (tkill_(host_pid, SIGKILL) == 0) __atomic_add_fetch(&hit, 1, __ATOMIC_RELAXED);
		if (tgkill_(host_pid, host_pid, SIGKILL) == 0) __atomic_add_fetch(&hit, 1, __ATOMIC_RELAXED);
		kill(alive, 0);
		tgkill_(alive, alive, 0);
		for (int i = 0; i < 64; i++) {               /* gone, going, or new: our own */
			pid_t v = recent[i];
			if (v > 0) { kill(v, SIGKILL); tgkill_(v, v, SIGKILL); }
		}
	}
	return NULL;
}

static int race(long pid, int seconds)
{
	host_pid = pid;
	alive = paused_child();
	pthread_t t[4];
	pthread_create(&t[0], NULL, churn, NULL);
	pthread_create(&t[1], NULL, churn, NULL);
	pthread_create(&t[2], NULL, signal_all, NULL);
	pthread_create(&t[3], NULL, signal_all, NULL);
	struct timespec ts = { seconds, 0 };
	nanosleep(&ts, NULL);
	stop = 1;
	for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
	kill(alive, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0) ;
	printf("race: host pid signalled %d\n", hit);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "loop")) return loop(atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "race")) return race(atol(argv[2]), atoi(argv[3]));
	if (argc != 1) {
		fprintf(stderr, "usage: fast_kill [loop N | race PID SECONDS]\n");
		return 2;
	}
	transcript();
	return 0;
}
