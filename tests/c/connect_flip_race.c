/* Escape attempt on the connect fast path (native/fastnet.c): while the main
 * thread connects fd X to the name in `name`, one thread flips that name
 * between the sandbox's loopback (a listener of this program's) and a unix
 * path, argv[1], where a host process listens, and another swaps X between
 * an internet and a unix socket.  The kernel must only ever connect to the
 * name that was checked: the host's socket is never reached.  With argv[3]
 * "shared" the process stays single-threaded (its fd table its alone) and
 * a child flips the name, in memory both share, among the loopback, the
 * unix path and an address outside (192.0.2.1:80).  Prints the rounds,
 * whether connects reached the loopback and whether some were refused
 * (the unix path's check, a family's or the policy's refusal, the
 * gateway's "unreachable"), and the count of unexpected errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define X 40
static volatile int stop;
typedef union { struct sockaddr_in in; struct sockaddr_un un; } some_name;
static some_name *name;
static struct sockaddr_in loop;
static struct sockaddr_un path;
static int listener;

static void *flip_name(void *arg)
{
	struct sockaddr_in outside = { .sin_family = AF_INET, .sin_port = htons(80),
				       .sin_addr.s_addr = htonl(0xC0000201) };
	int with_outside = arg != NULL;
	for (unsigned i = 0; !stop; i++) {
		/* shared: mostly the loopback, so that some connects find it at both reads */
		unsigned k = with_outside ? (i % 8 < 6 ? 0 : i % 8 - 5) : i % 2;
		if (k == 1) memcpy(name, &path, sizeof path);
		else { memset(name, 0, sizeof *name); memcpy(name, k ? &outside : &loop, sizeof loop); }
	}
	return NULL;
}

static void *flip_fd(void *arg)
{
	(void)arg;
	for (unsigned i = 0; !stop; i++) {
		int s = socket(i & 1 ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		dup2(s, X);
		close(s);
	}
	return NULL;
}

static void *drain(void *arg)
{
	(void)arg;
	while (!stop) {
		int a = accept(listener, NULL, NULL);
		if (a >= 0) close(a);
		else usleep(100);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int rounds = argc > 2 ? atoi(argv[2]) : 1000, reached = 0, refused = 0, other = 0;
	socklen_t len = sizeof loop;
	loop = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	path.sun_family = AF_UNIX;
	strncpy(path.sun_path, argv[1], sizeof path.sun_path - 1);
	listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (bind(listener, (void *)&loop, sizeof loop) || listen(listener, 4096) ||
	    getsockname(listener, (void *)&loop, &len))
		return perror("listen"), 1;
	int shared = argc > 3 && !strcmp(argv[3], "shared");
	name = mmap(NULL, sizeof *name, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (name == MAP_FAILED)
		return perror("mmap"), 1;
	memcpy(name, &loop, sizeof loop);
	pthread_t t[3];
	pid_t child = 0;
	if (shared) {
		child = fork();
		if (child == 0) {
			flip_name(name);
			_exit(0);
		}
	} else {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		dup2(s, X);
		pthread_create(&t[0], NULL, flip_name, NULL);
		pthread_create(&t[1], NULL, flip_fd, NULL);
		pthread_create(&t[2], NULL, drain, NULL);
	}
	for (int i = 0; i < rounds; i++) {
		if (shared) {
			int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
			dup2(s, X);
			close(s);
		}
		if (connect(X, (void *)name, sizeof path) == 0 || errno == EINPROGRESS || errno == EISCONN
		    || errno == EALREADY)
			reached++;
		else if (errno == ECONNREFUSED || errno == EINVAL || errno == EAFNOSUPPORT || errno == EPROTOTYPE
			 || errno == ENETUNREACH || errno == EHOSTUNREACH)
			refused++;
		else if (errno != EAGAIN && errno != EBADF && errno != ENOENT)
			other++, fprintf(stderr, "connect: %s\n", strerror(errno));
		if (shared) {
			int a = accept(listener, NULL, NULL);
			if (a >= 0) close(a);
		}
	}
	stop = 1;
	if (shared) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	} else {
		for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
	}
	printf("rounds %d reached %d refused %d other %d\n", rounds, reached > 0, refused > 0, other);
	return 0;
}
