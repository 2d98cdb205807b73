/* RLIMIT_NPROC (`ulimit -u`), counted per real uid as the kernel does:
 *   nproc_limit forks LIMIT   set the limit, fork (then start threads)
 *                             until EAGAIN; print what the kernel allowed
 *   nproc_limit setuid UID    as root: setrlimit 2, three children become
 *                             UID; a fourth's setuid(UID) works but its
 *                             execve fails with EAGAIN (PF_NPROC_EXCEEDED)
 *                             until the others are gone
 *   nproc_limit refused       fork, then start threads, until EAGAIN (under
 *                             sentry --pids-limit): a refused fork leaves no
 *                             child, no SIGCHLD; a refused thread leaves its
 *                             process running
 *   nproc_limit hello         print "hello" (the execve target)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX 30
static int gate[2];

static void *blocked(void *arg)
{
	char c;
	(void)arg;
	read(gate[0], &c, 1);
	return NULL;
}

static pid_t child(uid_t uid)
{
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(gate[1]);
		if (uid != (uid_t)-1 && setuid(uid))
			_exit(3);
		read(gate[0], &c, 1);
		_exit(0);
	}
	return pid;
}

static void release(pid_t *pids, int n)
{
	close(gate[1]);
	for (int i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
}

static void limits(void)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NPROC, &rl);
	printf("getrlimit: %lu %lu\n", (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
	FILE *f = fopen("/proc/self/limits", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "Max processes", 13)) {
			unsigned long soft, hard;
			sscanf(line + 25, "%lu %lu", &soft, &hard);
			printf("/proc/self/limits: %lu %lu\n", soft, hard);
		}
	if (f) fclose(f);
}

static int forks(int limit)
{
	struct rlimit rl = { limit, limit };
	pid_t pids[MAX];
	int n = 0, err = 0;
	if (setrlimit(RLIMIT_NPROC, &rl)) {
		printf("setrlimit: %s\n", strerrorname_np(errno));
		return 1;
	}
	limits();
	rl.rlim_max = limit + 1;
	printf("raise the hard limit: %s\n", setrlimit(RLIMIT_NPROC, &rl) ? strerrorname_np(errno) : "0");
	pipe(gate);
	while (n < MAX) {
		pid_t p = child(-1);
		if (p < 0) {
			err = errno;
			break;
		}
		pids[n++] = p;
	}
	printf("forks: %d succeeded%s%s\n", n, err ? ", then " : "", err ? strerrorname_np(err) : "");
	/* threads count too: a thread needs one more slot */
	pthread_t t;
	int r = pthread_create(&t, NULL, blocked, NULL);
	printf("pthread_create at the limit: %s\n", r ? strerrorname_np(r) : "0");
	/* a zombie still counts until it is reaped */
	if (n) {
		kill(pids[n - 1], SIGKILL);
		usleep(100000);
		pid_t p = fork();
		if (p == 0) _exit(0);
		printf("fork with a zombie left: %s\n", p < 0 ? strerrorname_np(errno) : "ok");
		if (p > 0) waitpid(p, NULL, 0);
		waitpid(pids[--n], NULL, 0);
		p = fork();
		if (p == 0) _exit(0);
		printf("fork once it is reaped: %s\n", p < 0 ? strerrorname_np(errno) : "ok");
		if (p > 0) waitpid(p, NULL, 0);
	}
	release(pids, n);
	if (r == 0) pthread_join(t, NULL);
	/* nothing of the refused forks is left to wait for */
	r = waitpid(-1, NULL, WNOHANG);
	printf("waitpid after all: %d %s\n", r, r < 0 ? strerrorname_np(errno) : "");
	return 0;
}

static int setuid_exec(const char *self, uid_t uid)
{
	struct rlimit rl = { 2, 2 };
	pid_t pids[3];
	setrlimit(RLIMIT_NPROC, &rl);
	pipe(gate);
	for (int i = 0; i < 3; i++)
		pids[i] = child(uid);
	usleep(100000);
	for (int round = 0; round < 2; round++) {
		int sync[2];
		pipe(sync);
		pid_t p = fork();
		if (p == 0) {
			close(sync[0]);
			close(gate[1]);
			int r = setuid(uid);
			printf("setuid(%d) over the limit: %s\n", uid, r ? strerrorname_np(errno) : "0");
			fflush(stdout);
			if (round == 0) {
				execl(self, self, "hello", (char *)NULL);
				printf("execve: %s\n", strerrorname_np(errno));
				/* once the others are gone, the same process may execve */
				fflush(stdout);
				write(sync[1], "x", 1);
				char c;
				read(gate[0], &c, 1);      /* EOF: the others are gone */
				usleep(100000);
			}
			execl(self, self, "hello", (char *)NULL);
			printf("execve: %s\n", strerrorname_np(errno));
			_exit(1);
		}
		close(sync[1]);
		if (round == 0) {
			char c;
			read(sync[0], &c, 1);
			release(pids, 3);
		}
		int st;
		waitpid(p, &st, 0);
		printf("round %d: exited %d\n", round, WEXITSTATUS(st));
	}
	return 0;
}

static volatile sig_atomic_t sigchld;

static void on_chld(int sig)
{
	(void)sig;
	sigchld++;
}

static int refused(void)
{
	pid_t pids[MAX];
	int n = 0, threads = 0, err = 0, r = 0;
	signal(SIGCHLD, on_chld);
	pipe(gate);
	while (n < MAX) {
		pid_t p = child(-1);
		if (p < 0) {
			err = errno;
			break;
		}
		pids[n++] = p;
	}
	usleep(200000);
	printf("forks: %d then %s; SIGCHLD %d\n", n, strerrorname_np(err), (int)sigchld);
	r = waitpid(-1, NULL, WNOHANG);
	printf("waitpid(-1, WNOHANG) = %d\n", r);
	release(pids, n);
	printf("SIGCHLD after the real children: %s\n", sigchld ? "yes" : "no");
	r = waitpid(-1, NULL, 0);
	printf("waitpid(-1) = %d %s\n", r, r < 0 ? strerrorname_np(errno) : "");
	/* threads: all but the refused one run, and so does the process */
	int tgate[2];
	pipe(tgate);
	gate[0] = tgate[0];
	pthread_t t[MAX];
	while (threads < MAX && !(r = pthread_create(&t[threads], NULL, blocked, NULL)))
		threads++;
	printf("threads: %d then %s\n", threads, strerrorname_np(r));
	close(tgate[1]);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("still running\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1 && !strcmp(argv[1], "hello")) {
		printf("hello\n");
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "refused"))
		return refused();
	if (argc > 2 && !strcmp(argv[1], "forks"))
		return forks(atoi(argv[2]));
	if (argc > 2 && !strcmp(argv[1], "setuid"))
		return setuid_exec(argv[0], atoi(argv[2]));
	return 2;
}
