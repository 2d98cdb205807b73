/* execve as the first call a process makes that needs the Sentry's staging
 * area: the children of a static program that never staged a call.  Each
 * child execs one path (argv[1..]); the parent prints what became of it.
 * Usage: exec_first PATH...   (a bad argv pointer is tried with PATH[0]) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void try_exec(const char *path, char *const *argv)
{
	int p[2];
	if (pipe(p)) return;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], 1);
		syscall(SYS_execve, path, argv, (char *const[]){ NULL });
		dprintf(p[1], "exec failed: %s\n", strerrorname_np(errno));
		_exit(7);
	}
	close(p[1]);
	char buf[256];
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = 0;
	int st;
	waitpid(pid, &st, 0);
	printf("%s: %s", path, buf[0] ? buf : "(nothing)\n");
	printf("  status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char *args[] = { argv[i], "from-exec-first", NULL };
		try_exec(argv[i], args);
	}
	if (argc > 1) try_exec(argv[1], (char *const *)8);    /* EFAULT */
	fflush(stdout);
	return 0;
}
