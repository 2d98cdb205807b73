/* Forks children that sleep until told to go, until fork fails; prints how
 * many it got and the errno, then lets them go.  Usage: forkbomb MAX */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int max = atoi(argv[1]), n = 0, err = 0;
	pid_t *kids = calloc(max, sizeof *kids);
	while (n < max) {
		pid_t p = fork();
		if (p == 0) { pause(); _exit(0); }
		if (p < 0) { err = errno; break; }
		kids[n++] = p;
	}
	printf("forked %d, then %s\n", n, err ? strerrorname_np(err) : "no error");
	for (int i = 0; i < n; i++) kill(kids[i], SIGTERM);
	while (wait(0) > 0) ;
	return 0;
}
