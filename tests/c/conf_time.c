/* Conformance: clocks, nanosleep, clock_nanosleep TIMER_ABSTIME, timerfd,
 * POSIX timers with SIGEV_SIGNAL, setitimer/getitimer, alarm.  Deterministic
 * transcript: times only as relations (never raw values).
 * Usage: conf_time SCRATCH */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transcript.h"
/* calls that return an error number instead of setting errno */
#define E(expr) ereport(#expr, (expr))
static void ereport(const char *what, int r)
{
	printf("%s = %s\n", what, r ? strerrorname_np(r) : "0");
}

static int64_t ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void burn_cpu(int64_t nsecs)
{
	int64_t end = ns(CLOCK_PROCESS_CPUTIME_ID) + nsecs;
	while (ns(CLOCK_PROCESS_CPUTIME_ID) < end) ;
}

/* CPU-time clocks that name another task by pid (the kernel's encoding) */
static clockid_t process_clock(pid_t pid) { return (~pid << 3) | 2; }
static clockid_t thread_clock(pid_t tid) { return (~tid << 3) | 6; }

static void cpu_clocks_of_others(void)
{
	printf("-- CPU-time clocks of other tasks\n");
	struct timespec ts;
	int go[2]; T(pipe(go));
	pid_t child = fork();
	if (child == 0) {
		burn_cpu(50000000);
		write(go[1], "x", 1);
		for (;;) pause();                            /* until killed */
	}
	char c; T(read(go[0], &c, 1));
	clockid_t cc; E(clock_getcpuclockid(child, &cc));
	printf("it is the kernel's encoding: %d\n", cc == process_clock(child));
	T(clock_gettime(cc, &ts));
	printf("child's CPU time at least 40ms: %d\n", ts.tv_sec > 0 || ts.tv_nsec >= 40000000);
	T(clock_getres(cc, &ts));
	ts.tv_sec = 0; ts.tv_nsec = 1; E(clock_nanosleep(cc, TIMER_ABSTIME, &ts, 0));
	timer_t t; struct sigevent none = { .sigev_notify = SIGEV_NONE };
	T(timer_create(cc, &none, &t)); T(timer_delete(t));
	T(clock_gettime(thread_clock(child), &ts));          /* not a thread of ours: EINVAL */
	T(clock_gettime(thread_clock(syscall(SYS_gettid)), &ts));
	T(clock_gettime(process_clock(getpid()), &ts));
	kill(child, SIGKILL); waitpid(child, 0, 0);
	T(clock_gettime(cc, &ts));                           /* reaped: EINVAL */
	E(clock_getcpuclockid(999999999, &cc));
	T(clock_gettime(process_clock(999999999), &ts));
	T(timer_create(process_clock(999999999), &none, &t));
}

static volatile sig_atomic_t alrm, vtalrm, prof, tsig, tcode, tval, tover;
static void on_sig(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIGALRM) alrm++;
	else if (sig == SIGVTALRM) vtalrm++;
	else if (sig == SIGPROF) prof++;
	else { tsig++; tcode = si->si_code; tval = si->si_value.sival_int; tover = si->si_overrun; }
}

/* elapsed ms within [lo, hi]: the transcript shows only the verdict */
static void within(const char *what, int64_t d, int lo_ms, int hi_ms)
{
	printf("%s: >= %dms %d, < %dms %d\n", what, lo_ms, d >= (int64_t)lo_ms * 1000000, hi_ms, d < (int64_t)hi_ms * 1000000);
}

int main(int argc, char **argv)
{
	struct timespec ts, res;
	if (argc < 2 || chdir(argv[1])) return 2;
	setvbuf(stdout, 0, _IONBF, 0);
	alarm(20);
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_sig; sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGALRM, &sa, 0); sigaction(SIGVTALRM, &sa, 0); sigaction(SIGPROF, &sa, 0); sigaction(SIGUSR1, &sa, 0);

	printf("-- clocks\n");
	clockid_t clocks[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
		CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME, CLOCK_TAI };
	const char *names[] = { "REALTIME", "MONOTONIC", "PROCESS_CPUTIME", "THREAD_CPUTIME", "MONOTONIC_RAW",
		"REALTIME_COARSE", "MONOTONIC_COARSE", "BOOTTIME", "TAI" };
	for (int i = 0; i < 9; i++) {
		int64_t a = ns(clocks[i]), b = ns(clocks[i]);
		int r = clock_getres(clocks[i], &res);
		printf("%s: positive %d, non-decreasing %d, getres %d res<=10ms %d\n", names[i], a > 0, b >= a, r, r == 0 && res.tv_sec == 0 && res.tv_nsec <= 10000000);
	}
	T(clock_gettime(42, &ts)); T(clock_getres(42, &res)); T(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)8));
	T(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts)); T(syscall(SYS_clock_gettime, 42, &ts));
	int64_t mono = ns(CLOCK_MONOTONIC), boot = ns(CLOCK_BOOTTIME);
	printf("BOOTTIME >= MONOTONIC: %d\n", boot >= mono);
	int64_t rt = ns(CLOCK_REALTIME);
	struct timeval tv; T(gettimeofday(&tv, 0));
	time_t now = time(0);
	printf("REALTIME after 2020: %d, gettimeofday within 1s: %d, time() within 1s: %d\n", rt / 1000000000 > 1577836800,
	       llabs((int64_t)tv.tv_sec * 1000000000 + tv.tv_usec * 1000 - rt) < 1000000000, llabs((int64_t)now * 1000000000 - rt) < 2000000000);
	T(syscall(SYS_time, 0) > 1577836800);
	pid_t self = getpid();
	clockid_t pc; T(clock_getcpuclockid(self, &pc) == 0); T(clock_gettime(pc, &ts));
	struct tms tm; clock_t t0 = times(&tm); printf("times() positive %d\n", t0 > 0);
	T(clock_settime(CLOCK_MONOTONIC, &ts));
	cpu_clocks_of_others();

	printf("-- nanosleep\n");
	int64_t a = ns(CLOCK_MONOTONIC);
	ts.tv_sec = 0; ts.tv_nsec = 30000000; T(nanosleep(&ts, 0));
	within("nanosleep 30ms", ns(CLOCK_MONOTONIC) - a, 30, 5000);
	ts.tv_nsec = 1000000000; T(nanosleep(&ts, 0));
	ts.tv_nsec = -1; T(nanosleep(&ts, 0));
	ts.tv_sec = -1; ts.tv_nsec = 0; T(nanosleep(&ts, 0));
	ts.tv_sec = 0; ts.tv_nsec = 0; T(nanosleep(&ts, 0));
	T(usleep(1000));
	struct itimerval it = { { 0, 0 }, { 0, 20000 } }, old;
	T(setitimer(ITIMER_REAL, &it, 0));
	struct timespec rem = { 0, 0 }; ts.tv_sec = 2; ts.tv_nsec = 0; alrm = 0;
	T(nanosleep(&ts, &rem)); printf("interrupted by SIGALRM %d, rem in (1s, 2s] %d\n", (int)alrm, rem.tv_sec == 1 || (rem.tv_sec == 2 && rem.tv_nsec == 0));

	printf("-- clock_nanosleep\n");
	a = ns(CLOCK_MONOTONIC);
	struct timespec target = { (a + 40000000) / 1000000000, (a + 40000000) % 1000000000 };
	E(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, 0));
	int64_t b = ns(CLOCK_MONOTONIC);
	printf("woke at or after the target: %d, within 5s: %d\n", b >= a + 40000000, b < a + 5000000000LL);
	E(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, 0));
	ts.tv_sec = 0; ts.tv_nsec = 10000000;
	E(clock_nanosleep(CLOCK_REALTIME, 0, &ts, 0));
	E(clock_nanosleep(CLOCK_BOOTTIME, 0, &ts, 0));
	E(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ts, 0));
	E(clock_nanosleep(42, 0, &ts, 0));
	ts.tv_nsec = -5; E(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, 0));
	int64_t cpu0 = ns(CLOCK_PROCESS_CPUTIME_ID);
	struct timespec cpuwait = { 0, 0 };
	E(clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, &cpuwait, 0));
	printf("cpu clock non-decreasing %d\n", ns(CLOCK_PROCESS_CPUTIME_ID) >= cpu0);

	printf("-- timerfd\n");
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC); T(tfd >= 0);
	uint64_t exp;
	T(read(tfd, &exp, sizeof exp));
	struct itimerspec its = { { 0, 10000000 }, { 0, 10000000 } }, cur;
	T(timerfd_settime(tfd, 0, &its, 0));
	T(timerfd_gettime(tfd, &cur)); printf("armed: interval 10ms %d, value in (0,10ms] %d\n", cur.it_interval.tv_nsec == 10000000, cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 10000000);
	usleep(55000);
	T(read(tfd, &exp, sizeof exp)); printf("expirations >= 3: %d, <= 100: %d\n", exp >= 3, exp <= 100);
	T(read(tfd, &exp, 4));
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };
	T(timerfd_settime(tfd, 0, &off, &cur)); printf("old value was armed: %d\n", cur.it_interval.tv_nsec == 10000000);
	T(timerfd_gettime(tfd, &cur)); printf("disarmed: %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
	T(read(tfd, &exp, sizeof exp));
	/* absolute, in the past: fires at once */
	its.it_interval.tv_nsec = 0; its.it_value.tv_sec = 1; its.it_value.tv_nsec = 0;
	T(timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, 0)); T(read(tfd, &exp, sizeof exp)); printf("expirations=%lu\n", (unsigned long)exp);
	its.it_value.tv_nsec = 1000000000; T(timerfd_settime(tfd, 0, &its, 0));
	T(timerfd_settime(tfd, 0x100, &off, 0));
	close(tfd);
	/* blocking read of a one-shot timer */
	tfd = timerfd_create(CLOCK_REALTIME, 0);
	its.it_value.tv_sec = 0; its.it_value.tv_nsec = 20000000; its.it_interval.tv_nsec = 0;
	a = ns(CLOCK_MONOTONIC);
	T(timerfd_settime(tfd, 0, &its, 0)); T(read(tfd, &exp, sizeof exp)); printf("expirations=%lu\n", (unsigned long)exp);
	within("blocking timerfd read", ns(CLOCK_MONOTONIC) - a, 20, 5000);
	close(tfd);
	T(timerfd_create(42, 0)); T(timerfd_create(CLOCK_MONOTONIC, 0x1234)); T(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0));
	T(timerfd_settime(0, 0, &its, 0));

	printf("-- POSIX timers\n");
	timer_t tid;
	struct sigevent sev = { 0 };
	sev.sigev_notify = SIGEV_SIGNAL; sev.sigev_signo = SIGUSR1; sev.sigev_value.sival_int = 77;
	T(timer_create(CLOCK_MONOTONIC, &sev, &tid));
	its.it_interval.tv_sec = 0; its.it_interval.tv_nsec = 0; its.it_value.tv_sec = 0; its.it_value.tv_nsec = 20000000;
	tsig = 0;
	T(timer_settime(tid, 0, &its, 0));
	struct itimerspec tcur; T(timer_gettime(tid, &tcur)); printf("pending value in (0,20ms]: %d\n", tcur.it_value.tv_sec == 0 && tcur.it_value.tv_nsec > 0 && tcur.it_value.tv_nsec <= 20000000);
	for (int i = 0; i < 1000 && !tsig; i++) usleep(1000);
	printf("timer signal: hits=%d si_code SI_TIMER %d value=%d\n", (int)tsig, tcode == SI_TIMER, (int)tval);
	T(timer_getoverrun(tid));
	/* overruns while the signal is blocked */
	sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1); sigprocmask(SIG_BLOCK, &set, 0);
	its.it_interval.tv_nsec = 5000000; its.it_value.tv_nsec = 5000000;
	T(timer_settime(tid, 0, &its, 0));
	usleep(60000);
	siginfo_t tsi; struct timespec nowait = { 0, 0 };
	int got = sigtimedwait(&set, &tsi, &nowait);
	printf("blocked periodic timer: signal queued %d, SI_TIMER %d, overrun >= 3 %d\n", got == SIGUSR1, tsi.si_code == SI_TIMER, tsi.si_overrun >= 3);
	its.it_interval.tv_nsec = 0; its.it_value.tv_nsec = 0; T(timer_settime(tid, 0, &its, 0));
	while (sigtimedwait(&set, &tsi, &nowait) > 0) ;
	sigprocmask(SIG_UNBLOCK, &set, 0);
	T(timer_delete(tid)); T(timer_delete(tid)); T(timer_gettime(tid, &tcur));
	sev.sigev_notify = SIGEV_NONE;
	T(timer_create(CLOCK_REALTIME, &sev, &tid));
	its.it_value.tv_sec = 10; T(timer_settime(tid, 0, &its, 0));
	T(timer_gettime(tid, &tcur)); printf("SIGEV_NONE timer counts down: %d\n", tcur.it_value.tv_sec == 9 || (tcur.it_value.tv_sec == 10 && tcur.it_value.tv_nsec == 0));
	timer_delete(tid);
	sev.sigev_notify = SIGEV_SIGNAL; sev.sigev_signo = 99; T(timer_create(CLOCK_MONOTONIC, &sev, &tid));
	sev.sigev_signo = SIGUSR1; T(timer_create(42, &sev, &tid));
	sev.sigev_notify = SIGEV_THREAD_ID; sev._sigev_un._tid = gettid();
	T(timer_create(CLOCK_MONOTONIC, &sev, &tid));
	its.it_value.tv_sec = 0; its.it_value.tv_nsec = 10000000; tsig = 0;
	T(timer_settime(tid, 0, &its, 0)); for (int i = 0; i < 1000 && !tsig; i++) usleep(1000);
	printf("SIGEV_THREAD_ID delivered: %d\n", (int)tsig);
	timer_delete(tid);
	sev.sigev_notify = SIGEV_SIGNAL; sev.sigev_signo = SIGUSR1;
	T(timer_create(CLOCK_PROCESS_CPUTIME_ID, &sev, &tid));
	its.it_value.tv_nsec = 20000000; tsig = 0; T(timer_settime(tid, 0, &its, 0));
	int64_t c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
	while (!tsig && ns(CLOCK_PROCESS_CPUTIME_ID) - c0 < 2000000000LL) ;
	printf("CPU-time timer fired after >= 20ms of CPU: %d\n", tsig && ns(CLOCK_PROCESS_CPUTIME_ID) - c0 >= 20000000);
	timer_delete(tid);

	printf("-- setitimer / getitimer\n");
	T(getitimer(ITIMER_REAL, &old)); printf("idle: %d\n", old.it_value.tv_sec == 0 && old.it_value.tv_usec == 0);
	it.it_value.tv_sec = 0; it.it_value.tv_usec = 30000; it.it_interval.tv_usec = 0; alrm = 0;
	T(setitimer(ITIMER_REAL, &it, 0));
	T(getitimer(ITIMER_REAL, &old)); printf("remaining in (0,30ms]: %d\n", old.it_value.tv_sec == 0 && old.it_value.tv_usec > 0 && old.it_value.tv_usec <= 30000);
	a = ns(CLOCK_MONOTONIC);
	while (!alrm) pause();
	within("ITIMER_REAL", ns(CLOCK_MONOTONIC) - a, 20, 5000);
	it.it_value.tv_usec = 10000; it.it_interval.tv_usec = 10000; alrm = 0;
	T(setitimer(ITIMER_REAL, &it, &old));
	while (alrm < 3) pause();
	printf("periodic ITIMER_REAL fired 3 times\n");
	struct itimerval zero = { { 0, 0 }, { 0, 0 } };
	T(setitimer(ITIMER_REAL, &zero, &old)); printf("old interval 10ms: %d\n", old.it_interval.tv_usec == 10000);
	it.it_value.tv_usec = 20000; it.it_interval.tv_usec = 0;
	T(setitimer(ITIMER_VIRTUAL, &it, 0)); burn_cpu(0); 
	c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
	while (!vtalrm && ns(CLOCK_PROCESS_CPUTIME_ID) - c0 < 2000000000LL) ;
	printf("ITIMER_VIRTUAL: SIGVTALRM %d\n", (int)vtalrm);
	T(setitimer(ITIMER_PROF, &it, 0));
	c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
	while (!prof && ns(CLOCK_PROCESS_CPUTIME_ID) - c0 < 2000000000LL) ;
	printf("ITIMER_PROF: SIGPROF %d\n", (int)prof);
	T(setitimer(42, &it, 0)); T(getitimer(42, &old));
	it.it_value.tv_usec = 2000000; T(setitimer(ITIMER_REAL, &it, 0));
	setitimer(ITIMER_REAL, &zero, 0);

	printf("-- alarm\n");
	T(alarm(0) > 0);
	T(alarm(3)); T(alarm(2)); T(alarm(0));
	alrm = 0; T(alarm(1));
	a = ns(CLOCK_MONOTONIC);
	while (!alrm) pause();
	within("alarm(1)", ns(CLOCK_MONOTONIC) - a, 900, 6000);
	it.it_value.tv_sec = 0; it.it_value.tv_usec = 600000; setitimer(ITIMER_REAL, &it, 0);
	T(alarm(0));
	return 0;
}
