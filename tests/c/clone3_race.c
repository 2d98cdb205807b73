/* clone3's arguments against a racing thread (issue 13).  The struct is in
 * the caller's memory: as each call begins, a thread turns its flags from a
 * plain fork to CLONE_UNTRACED a random while later (up to `spread` µs),
 * so that the change falls anywhere in the call's way to the kernel.  The
 * Sentry checks a copy in the staging area and the kernel reads that copy,
 * so every call is either a traced child (its getppid answered) or EPERM:
 * never a child the tracer does not see: one the sandbox cannot wait for,
 * whose trapped calls find no tracer (ENOSYS).  Prints "forks N eperm N untraced N".
 * Usage: clone3_race [seconds [spread]] */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct clone_args args = { .exit_signal = SIGCHLD };
static int go, done;
static double spread = 200;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void *flipper(void *unused)
{
	(void)unused;
	unsigned seed = 1;
	for (;;) {
		while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
			if (__atomic_load_n(&done, __ATOMIC_RELAXED)) return NULL;
		double until = now_us() + spread * (rand_r(&seed) / (double)RAND_MAX);
		while (now_us() < until) ;
		__atomic_store_n(&args.flags, CLONE_UNTRACED, __ATOMIC_RELEASE);
		__atomic_store_n(&go, 0, __ATOMIC_RELEASE);
	}
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3;
	if (argc > 2) spread = atof(argv[2]);
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	long forks = 0, eperm = 0, untraced = 0;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		__atomic_store_n(&args.flags, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
		long pid = syscall(SYS_clone3, &args, sizeof args);
		if (pid == 0) _exit(syscall(SYS_getppid) < 0 && errno == ENOSYS ? 99 : 0);
		if (pid < 0) {
			eperm += errno == EPERM;
		} else {
			int st;
			/* a child the tracer never saw is no child the sandbox knows */
			if (waitpid(pid, &st, 0) != pid || (WIFEXITED(st) && WEXITSTATUS(st) == 99)) untraced++;
			else forks++;
		}
		while (__atomic_load_n(&go, __ATOMIC_ACQUIRE)) ;   /* this round's flip is done */
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds
		 && !(forks > 200 && eperm > 200));
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	printf("forks %ld eperm %ld untraced %ld\n", forks, eperm, untraced);
	return 0;
}
