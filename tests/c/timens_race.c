/* Racing threads against a time namespace's clocks (issue 13): in a child of
 * unshare(CLONE_NEWTIME) whose CLOCK_MONOTONIC is OFF seconds ahead (far past
 * the host's uptime), no thread may ever read a host time:
 *  - readers: clock_gettime through the vDSO and the syscall into one shared
 *    timespec, which another thread reads all the while (the kernel must
 *    never write the host's time there first);
 *  - sleepers: an absolute clock_nanosleep on a timespec a thread flips
 *    between "50 ms ahead in the namespace" and "50 ms ahead on the host's
 *    clock" (in the namespace long past): a sleep that read the flipped value
 *    unconverted would last OFF seconds (cut short by an alarm: "host time").
 * Prints counts as relations only.  Usage: timens_race */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OFF 100000LL
#define NS 1000000000LL
#define READS 4000
#define SLEEPS 20

static struct timespec shared;
static atomic_int done;
static atomic_long host_seen, reads;
static struct timespec target;

static void *reader_vdso(void *arg)
{
	(void)arg;
	for (int i = 0; i < READS; i++) clock_gettime(CLOCK_MONOTONIC, &shared);
	return NULL;
}

static void *reader_sys(void *arg)
{
	(void)arg;
	for (int i = 0; i < READS / 4; i++) syscall(SYS_clock_gettime, CLOCK_BOOTTIME, &shared);
	return NULL;
}

static void *watcher(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		volatile struct timespec *s = &shared;
		long sec = s->tv_sec;
		if (sec != 0 && sec < OFF) atomic_fetch_add(&host_seen, 1);
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

static int64_t now(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return t.tv_sec * NS + t.tv_nsec;
}

static int64_t in_ns, on_host;

static void *flipper(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		int64_t v = (random() & 1) ? in_ns : on_host;
		target.tv_sec = v / NS;
		target.tv_nsec = v % NS;
		for (volatile int i = random() % 2000; i > 0; i--) ;
	}
	return NULL;
}

static void on_alarm(int sig) { (void)sig; }

static void child(void)
{
	pthread_t r1, r2, w;
	pthread_create(&w, NULL, watcher, NULL);
	pthread_create(&r1, NULL, reader_vdso, NULL);
	pthread_create(&r2, NULL, reader_sys, NULL);
	pthread_join(r1, NULL);
	pthread_join(r2, NULL);
	atomic_store(&done, 1);
	pthread_join(w, NULL);
	printf("watched reads > 0: %d, host times seen: %ld\n", atomic_load(&reads) > 0, atomic_load(&host_seen));

	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	int long_sleeps = 0, interrupted = 0;
	for (int i = 0; i < SLEEPS; i++) {
		in_ns = now(CLOCK_MONOTONIC) + NS / 20;
		on_host = in_ns - OFF * NS;
		target.tv_sec = in_ns / NS;
		target.tv_nsec = in_ns % NS;
		atomic_store(&done, 0);
		pthread_t f;
		pthread_create(&f, NULL, flipper, NULL);
		alarm(5);
		int64_t start = now(CLOCK_REALTIME);
		int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, NULL);
		alarm(0);
		if (r == EINTR) interrupted++;
		if (now(CLOCK_REALTIME) - start > 3 * NS) long_sleeps++;
		atomic_store(&done, 1);
		pthread_join(f, NULL);
	}
	printf("sleeps on host time: %d, interrupted: %d\n", long_sleeps, interrupted);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (unshare(CLONE_NEWTIME)) { perror("unshare"); return 1; }
	int fd = open("/proc/self/timens_offsets", O_WRONLY);
	char line[64];
	int n = snprintf(line, sizeof line, "monotonic %lld 0\nboottime %lld 0\n", OFF, OFF);
	if (fd < 0 || write(fd, line, n) != n) { perror("timens_offsets"); return 1; }
	close(fd);
	pid_t pid = fork();
	if (pid == 0) {
		child();
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}
