/* setid_race PROG N: N times, a child execs the set-uid PROG while a
 * second thread of it flips an environment string between an unsecure
 * name (LD_LIBRARY_PATH, which a secure loader drops) and an ordinary one,
 * and rewrites the envp array's pointers.  PROG's output goes to stdout;
 * the caller checks that every run that printed ran secure. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char var[] = "LD_LIBRARY_PATH=/evil";
static char other[] = "XD_LIBRARY_PATH=/evil";
static char *envp[] = { var, NULL, NULL };

static void *flip(void *arg)
{
	(void)arg;
	for (unsigned i = 0;; i++) {
		var[0] = i & 1 ? 'X' : 'L';
		envp[0] = i & 2 ? other : var;
		envp[1] = i & 4 ? var : NULL;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 50;
	for (int i = 0; i < n; i++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			pthread_t t;
			pthread_create(&t, NULL, flip, NULL);
			usleep(100);
			char *args[] = { argv[1], NULL };
			execve(argv[1], args, envp);
			_exit(127);
		}
		int status;
		waitpid(pid, &status, 0);
	}
	return 0;
}
