/* PID namespaces a program makes itself (issue 13): unshare(CLONE_NEWPID)
 * and clone(CLONE_NEWPID), the numbers seen inside and from the parent,
 * the init's orphans and signals, the namespace's end, and the errors.
 * Run as root (the sandbox's, natively the host's): the same transcript. */
#include "transcript.h"
#include <sched.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/utsname.h>

static char stack[1 << 16];
static int pipefd[2];

static void on_usr1(int s) { (void)s; }

/* The init of a new namespace: its own numbers, a child and an orphan it
 * reaps, kill by the namespace's numbers, signals to itself. */
static int init_main(void *arg)
{
	(void)arg;
	T(getpid());
	T(getppid());
	T(gettid());
	int sub = -1;
	T(prctl(PR_GET_CHILD_SUBREAPER, &sub));
	printf("subreaper bit %d\n", sub);
	pid_t c = fork();
	if (c == 0) {
		printf("child: pid %d ppid %d\n", getpid(), getppid());
		pid_t g = fork();
		if (g == 0) {
			usleep(200000);           /* its parent is gone by now */
			printf("orphan: pid %d ppid %d\n", getpid(), getppid());
			fflush(stdout);
			_exit(7);
		}
		_exit(0);
	}
	int st;
	T(waitpid(c, &st, 0));
	printf("forked %d\n", c);
	status("child", st);
	T(wait(&st));
	status("orphan", st);
	T(wait(&st));

	pid_t v = fork();
	if (v == 0) { pause(); _exit(0); }
	T(kill(v, SIGTERM));
	T(waitpid(v, &st, 0));
	status("victim", st);
	T(kill(99, 0));
	/* the init drops what it has no handler for, from inside its namespace */
	T(kill(1, SIGTERM));
	T(kill(getpid(), SIGKILL));
	signal(SIGUSR1, on_usr1);
	T(kill(1, SIGUSR1));
	printf("init still here\n");
	fflush(stdout);
	return 3;
}

/* A child with a UTS namespace of its own (and a PID one): its names are
 * its own.  Only ever called in the new namespace: natively, the host's
 * name must not change. */
static int uts_main(void *arg)
{
	(void)arg;
	struct utsname u;
	T(sethostname("inner", 5));
	uname(&u);
	printf("the child's name: %s; its pid %d\n", u.nodename, getpid());
	usleep(200000);
	return 0;
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	T(pipe(pipefd));
	pid_t p = clone(init_main, stack + sizeof stack, CLONE_NEWPID | SIGCHLD, NULL);
	int st;
	printf("clone(CLONE_NEWPID) %s; parent waits for it by its own number: %s\n", p > 0 ? "made a child" : "failed",
	       waitpid(p, &st, 0) == p ? "yes" : "no");
	status("init", st);

	struct utsname before, after;
	uname(&before);
	/* its wait is interrupted by another child's SIGCHLD and restarted:
	 * with the pid it was given, not a register of the rewritten clone */
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigaction(SIGCHLD, &sa, NULL);
	pid_t n = clone(uts_main, stack + sizeof stack, CLONE_NEWUTS | CLONE_NEWPID | SIGCHLD, NULL);
	pid_t quick = fork();
	if (quick == 0) { usleep(50000); _exit(0); }
	T(waitpid(n, &st, 0) == n);
	T(waitpid(quick, &st, 0) == quick);
	signal(SIGCHLD, SIG_DFL);
	uname(&after);
	printf("the parent's name unchanged: %d\n", !strcmp(before.nodename, after.nodename));

	/* without CAP_SYS_ADMIN */
	pid_t u = fork();
	if (u == 0) {
		if (setuid(1000)) _exit(1);
		T(unshare(CLONE_NEWPID));
		_exit(0);
	}
	waitpid(u, &st, 0);
	status("unprivileged", st);

	T(clone(init_main, stack + sizeof stack, CLONE_NEWPID | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, NULL));
	T(unshare(CLONE_NEWPID));
	T(unshare(CLONE_NEWPID));
	T(clone(init_main, stack + sizeof stack, CLONE_NEWPID | SIGCHLD, NULL));
	pid_t first = fork();
	if (first == 0) {
		printf("first child after unshare: pid %d ppid %d\n", getpid(), getppid());
		pid_t inner = fork();
		if (inner == 0) { printf("its child: pid %d ppid %d\n", getpid(), getppid()); _exit(0); }
		waitpid(inner, NULL, 0);
		/* the init ends: whatever is left of its namespace is killed */
		pid_t stay = fork();
		if (stay == 0) { pause(); _exit(0); }
		_exit(4);
	}
	T(waitpid(first, &st, 0) == first);
	status("namespace init", st);
	pid_t late = fork();           /* its init is gone: no process joins */
	if (late == 0) _exit(0);
	report("fork() after the init's end", late);
	/* a thread of the caller is still in the caller's namespace */
	T(syscall(SYS_gettid) == getpid());

	return 0;
}
