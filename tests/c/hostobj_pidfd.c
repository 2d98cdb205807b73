/* pidfds a guest may hold: its own children's, and one a host service sent
 * it over a unix socket (SCM_RIGHTS).  Only the first may be signalled.
 * Usage: hostobj_pidfd SOCKET   (a host service that sends a pidfd)
 *        hostobj_pidfd race SOCKET   (threads swap the two at one fd number
 *                                     while SIGTERM is sent through it, 2 s) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include "transcript.h"

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#define PIDFD_SIGNAL_PROCESS_GROUP 4

static int pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned flags)
{
	return syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}

static int host_pidfd(const char *path)
{
	int s = socket(AF_UNIX, SOCK_STREAM, 0), one = 1;
	struct sockaddr_un a = { AF_UNIX };
	strcpy(a.sun_path, path);
	T(setsockopt(s, SOL_SOCKET, SO_PASSPIDFD, &one, sizeof one));
	T(syscall(SYS_setsockopt, s, 0x100000000UL | SOL_SOCKET, 0x700000000UL | SO_PASSPIDFD, &one, sizeof one));
	if (connect(s, (struct sockaddr *)&a, sizeof a)) { perror("connect"); exit(1); }
	char byte, control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
	if (recvmsg(s, &m, 0) != 1 || !CMSG_FIRSTHDR(&m)) { perror("recvmsg"); exit(1); }
	int fd;
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
	return fd;
}

static pid_t child(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		signal(SIGTERM, SIG_IGN);
		signal(SIGUSR1, SIG_IGN);
		for (;;) pause();
	}
	setpgid(pid, pid);          /* as shells do: whoever runs first */
	return pid;
}

static int target, host, own;
static volatile int stop;

static void *swapper(void *arg)
{
	(void)arg;
	while (!stop) {
		dup2(host, target);
		dup2(own, target);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int racing = argc > 2 && !strcmp(argv[1], "race");
	host = host_pidfd(argv[argc - 1]);
	pid_t pid = child();
	own = syscall(SYS_pidfd_open, pid, 0);
	if (!racing) {
		siginfo_t info = { .si_signo = SIGTERM, .si_code = SI_QUEUE, .si_pid = getpid() };
		siginfo_t usr1 = { .si_signo = SIGUSR1, .si_code = SI_QUEUE, .si_pid = getpid() };
		T(pidfd_send_signal(host, 0, NULL, 0));
		T(pidfd_send_signal(host, SIGTERM, NULL, 0));
		T(pidfd_send_signal(host, SIGTERM, &info, 0));
		T(pidfd_send_signal(host, SIGTERM, NULL, PIDFD_SIGNAL_PROCESS_GROUP));
		T(pidfd_send_signal(host, SIGTERM, NULL, 3));
		T(pidfd_send_signal(0, SIGTERM, NULL, 0));
		T(pidfd_send_signal(own, 0, NULL, 0));
		T(pidfd_send_signal(own, SIGUSR1, &info, 0));
		T(pidfd_send_signal(own, SIGUSR1, &usr1, 0));
		T(pidfd_send_signal(own, SIGTERM, NULL, PIDFD_SIGNAL_PROCESS_GROUP));
		T(pidfd_send_signal(own, SIGKILL, NULL, 0));
		int st;
		waitpid(pid, &st, 0);
		status("child", st);
		return 0;
	}
	target = dup(own);
	pthread_t t;
	pthread_create(&t, 0, swapper, 0);
	long ok = 0, refused = 0;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		if (pidfd_send_signal(target, SIGTERM, NULL, 0) == 0) ok++; else refused++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < 2);
	stop = 1;
	pthread_join(t, 0);
	printf("race: ok %s, refused %s\n", ok ? "some" : "none", refused ? "some" : "none");
	kill(pid, SIGKILL);
	return 0;
}
