/* Process-model corner cases, each printing a deterministic transcript.
 * Usage: procs vfork|thread-exec|stopcont|orphan|waitid|sigchld */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *self;

static void *exec_from_thread(void *arg)
{
	execl(self, self, "exec-done", (char *)0);
	perror("execl");
	return arg;
}

static volatile sig_atomic_t got_chld;
static void on_chld(int s) { (void)s; got_chld++; }

int main(int argc, char **argv)
{
	self = argv[0];
	setvbuf(stdout, 0, _IONBF, 0);
	const char *what = argc > 1 ? argv[1] : "";
	if (!strcmp(what, "vfork")) {
		for (int i = 0; i < 20; i++) {
			pid_t p = vfork();
			if (p == 0) execl("/bin/true", "true", (char *)0), _exit(127);
			int st;
			waitpid(p, &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st)) printf("vfork child %d: status %x\n", i, st);
		}
		pid_t p = vfork();
		if (p == 0) _exit(7);
		int st;
		waitpid(p, &st, 0);
		printf("vfork ok, last exit %d\n", WEXITSTATUS(st));
	} else if (!strcmp(what, "thread-exec")) {
		pthread_t t;
		pthread_create(&t, 0, exec_from_thread, 0);
		pause();
	} else if (!strcmp(what, "exec-done")) {
		printf("exec from a thread: ok\n");
	} else if (!strcmp(what, "stopcont")) {
		pid_t p = fork();
		if (p == 0) { for (;;) pause(); }
		int st;
		kill(p, SIGSTOP);
		waitpid(p, &st, WUNTRACED);
		printf("stopped: %d sig %s\n", WIFSTOPPED(st), strsignal(WSTOPSIG(st)));
		kill(p, SIGCONT);
		waitpid(p, &st, WCONTINUED);
		printf("continued: %d\n", WIFCONTINUED(st));
		kill(p, SIGTERM);
		waitpid(p, &st, 0);
		printf("terminated: %s\n", strsignal(WTERMSIG(st)));
	} else if (!strcmp(what, "orphan")) {
		/* a grandchild outlives its parent and still finishes its work */
		int fd[2];
		pipe(fd);
		if (fork() == 0) {
			if (fork() == 0) { usleep(200000); write(fd[1], "orphan done\n", 12); _exit(0); }
			_exit(0);
		}
		close(fd[1]);
		wait(0);
		char buf[32] = "";
		ssize_t n = read(fd[0], buf, sizeof buf);
		if (n > 0) fwrite(buf, 1, n, stdout);
	} else if (!strcmp(what, "sigchld")) {
		signal(SIGCHLD, on_chld);
		for (int i = 0; i < 5; i++) if (fork() == 0) _exit(i);
		int n = 0, sum = 0, st;
		while (n < 5) {
			pid_t p = wait(&st);
			if (p < 0 && errno == EINTR) continue;
			if (p < 0) break;
			n++; sum += WEXITSTATUS(st);
		}
		printf("reaped %d, sum %d, sigchld seen %d\n", n, sum, got_chld > 0);
	} else if (!strcmp(what, "zombie")) {
		/* an exited child not yet reaped can still be signalled */
		pid_t p = fork();
		if (p == 0) _exit(3);
		usleep(200000);
		printf("kill zombie: %d\n", kill(p, SIGTERM));
		printf("getpgid zombie: %d\n", getpgid(p) == getpgid(0));
		int st;
		waitpid(p, &st, 0);
		printf("reaped: %d, then kill: %d %s\n", WEXITSTATUS(st), kill(p, 0), strerror(errno));
	} else if (!strcmp(what, "spawn-bg")) {
		/* leaves a background child behind: the sandbox must kill it */
		if (fork() == 0) { setsid(); for (;;) pause(); }
		printf("init leaving\n");
	} else {
		return 2;
	}
	return 0;
}
