/* The stops of a fork that C serves (native/identity.c): a child's first
 * stop, where its tid goes where it asked (CLONE_CHILD_SETTID), and its
 * parent's SIGCHLD, whose siginfo names the child.
 *
 *   fork_events          children that exit, abort, are killed, change
 *                        their uid; what each sees of itself and what its
 *                        parent's handler is told (compared with Linux)
 *   fork_events core     a child with RLIMIT_CORE set dies by SIGABRT:
 *                        CLD_DUMPED or not (compared C against Python)
 *   fork_events waits    wait4 of one child (native/identity.c wait_one):
 *                        running, high bits in its int, reaped, itself,
 *                        nobody's, its argument register kept
 *   fork_events storm N  two threads fork N children each that exit at
 *                        once; every SIGCHLD must name one of them
 *   fork_events threads N  N pthreads (glibc's clone3) made and joined one
 *                        by one: each child's first stop, and nothing else
 *                        of a fork's (no SIGCHLD, no wait) */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_pid, got_code, got_status, got_uid, signals;

static void on_chld(int s, siginfo_t *si, void *u)
{
	(void)s; (void)u;
	got_pid = si->si_pid; got_code = si->si_code; got_status = si->si_status; got_uid = si->si_uid;
	signals++;
}

static void handle_chld(void (*fn)(int, siginfo_t *, void *))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGCHLD, &sa, 0);
}

/* fork by clone(2) itself, asking for the child's tid in `ctid` */
static pid_t fork_settid(pid_t *ctid)
{
	return syscall(SYS_clone, CLONE_CHILD_SETTID | SIGCHLD, 0, NULL, ctid, 0);
}

static void report(const char *what, pid_t child)
{
	int st;
	pid_t w = waitpid(child, &st, 0);
	while (!got_pid) sched_yield();
	printf("%s: waited %s, status %#x; SIGCHLD from %s, code %d, status %d, uid %d\n", what,
	       w == child ? "the child" : "another", st, got_pid == child ? "the child" : "another",
	       got_code, got_status, got_uid);
	got_pid = 0;
}

static void plain(void)
{
	for (int k = 0; k < 4; k++) {
		pid_t ctid = -1;
		got_pid = 0;
		pid_t p = fork_settid(&ctid);
		if (p < 0) { perror("clone"); exit(1); }
		if (p == 0) {
			pid_t me = getpid();
			printf("child %d: settid %s getpid, getpid %s gettid, raise works\n", k,
			       ctid == me ? "==" : "!=", me == syscall(SYS_gettid) ? "==" : "!=");
			if (k == 1) abort();
			if (k == 2) raise(SIGKILL);
			if (k == 3 && setuid(4321)) perror("setuid");
			_exit(7 + k);
		}
		report("plain", p);
	}
	/* glibc's fork: the child's tid in its thread block, which raise() reads */
	got_pid = 0;
	pid_t p = fork();
	if (p == 0) {
		raise(SIGTERM);
		_exit(1);
	}
	report("glibc fork, raise", p);
}

static void core(void)
{
	pid_t p = fork();
	if (p == 0) {
		struct rlimit rl = { 1 << 20, 1 << 20 };
		setrlimit(RLIMIT_CORE, &rl);
		abort();
	}
	report("core", p);
}

static const char *outcome(long r)
{
	static char buf[64];
	if (r == -1) snprintf(buf, sizeof buf, "-1 %s", strerrorname_np(errno));
	else snprintf(buf, sizeof buf, "%s", r == 0 ? "0" : "the child");
	return buf;
}

/* wait4(pid, &st, 0, NULL) by the syscall instruction: rdi afterwards */
static long raw_wait4(long pid, int *st, long *rdi_after)
{
	register long rdi asm("rdi") = pid;
	register long r10 asm("r10") = 0;
	long ret;
	asm volatile("syscall" : "=a"(ret), "+D"(rdi)
		     : "a"((long)SYS_wait4), "S"(st), "d"(0L), "r"(r10) : "rcx", "r11", "memory");
	*rdi_after = rdi;
	if (ret < 0) { errno = -ret; return -1; }
	return ret;
}

static void waits(void)
{
	int st, gate[2];
	if (pipe(gate)) exit(1);
	pid_t p = fork();
	if (p == 0) {
		char c;
		read(gate[0], &c, 1);
		_exit(5);
	}
	long r = waitpid(p, &st, WNOHANG);
	printf("running, WNOHANG: %s\n", r == p ? "the child" : outcome(r));
	write(gate[1], "x", 1);
	long rdi;
	r = raw_wait4((long)0x5a5a5a5a00000000ULL | p, &st, &rdi);
	printf("high bits: %s, status %#x, rdi %s\n", r == p ? "the child" : outcome(r), st,
	       rdi == ((long)0x5a5a5a5a00000000ULL | p) ? "kept" : "changed");
	r = waitpid(p, &st, 0);
	printf("reaped: %s\n", r == p ? "the child" : outcome(r));
	r = waitpid(getpid(), &st, 0);
	printf("itself: %s\n", r == getpid() ? "itself" : outcome(r));
	r = waitpid(30000, &st, WNOHANG);
	printf("nobody's: %s\n", outcome(r));
	r = raw_wait4(p, &st, &rdi);
	printf("reaped, raw: %s, rdi %s\n", outcome(r), rdi == p ? "kept" : "changed");
}

/* ---- storm ---- */
#define MAX_KIDS 100000
static pid_t kids[MAX_KIDS];
static volatile int nkids;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static pid_t seen[MAX_KIDS];
static volatile int nseen;

/* checked once every fork has returned: a child may end before its fork
 * returns in the other thread */
static void on_chld_storm(int s, siginfo_t *si, void *u)
{
	(void)s; (void)u;
	if (nseen < MAX_KIDS) seen[nseen++] = si->si_pid;
}

static volatile int wrong_waits;

/* Children reaped three ways while the other thread does the same: by
 * name (its own, or an older one's that either thread may have reaped, or
 * whose number a new child may carry by now: ECHILD, 0 or that very
 * number, never another), and any. */
static void *forker(void *arg)
{
	int n = *(int *)arg;
	for (int i = 0; i < n; i++) {
		pthread_mutex_lock(&lock);
		pid_t p = fork();
		if (p == 0) _exit(0);
		if (p > 0 && nkids < MAX_KIDS) kids[nkids++] = p;
		pthread_mutex_unlock(&lock);
		if (i % 3 == 0) {
			pid_t w = waitpid(p, NULL, 0);
			if (w != p && !(w == -1 && errno == ECHILD)) wrong_waits++;
		} else if (i % 3 == 1 && nkids > 8) {
			pid_t old = kids[nkids - 1 - i % 8];
			pid_t w = waitpid(old, NULL, WNOHANG);
			if (w != old && w != 0 && !(w == -1 && errno == ECHILD)) wrong_waits++;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0) ;
	}
	return NULL;
}

static void storm(int n)
{
	handle_chld(on_chld_storm);
	pthread_t a, b;
	pthread_create(&a, NULL, forker, &n);
	pthread_create(&b, NULL, forker, &n);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	while (waitpid(-1, NULL, 0) > 0) ;
	int strangers = 0;
	for (int i = 0; i < nseen; i++) {
		int found = 0;
		for (int k = 0; k < nkids && !found; k++) found = kids[k] == seen[i];
		strangers += !found;
	}
	printf("storm: %d children, %s, %d naming none of them, %d waits answered with another\n", nkids,
	       nseen ? "SIGCHLD seen" : "no SIGCHLD", strangers, (int)wrong_waits);
}

static void *returns(void *arg) { return arg; }

static void threads(int n)
{
	long sum = 0;
	for (long i = 0; i < n; i++) {
		pthread_t t;
		void *back;
		if (pthread_create(&t, NULL, returns, (void *)i) || pthread_join(t, &back)) {
			printf("threads: pthread failed at %ld\n", i);
			return;
		}
		sum += (long)back;
	}
	printf("threads: %d made and joined, sum %ld\n", n, sum);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	handle_chld(on_chld);
	if (argc > 2 && !strcmp(argv[1], "storm")) storm(atoi(argv[2]));
	else if (argc > 2 && !strcmp(argv[1], "threads")) threads(atoi(argv[2]));
	else if (argc > 1 && !strcmp(argv[1], "core")) core();
	else if (argc > 1 && !strcmp(argv[1], "waits")) waits();
	else plain();
	return 0;
}
