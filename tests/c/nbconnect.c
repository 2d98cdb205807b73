/* Non-blocking and blocking connect(2), as a program sees them: to a
 * listening port (argv[2]), a closed one (argv[3]) and one whose SYNs are
 * dropped (argv[4]) of the server at argv[1].  Prints one line per step;
 * run natively and in the sandbox against the same server, the lines must
 * be the same.  Nothing timing-dependent is printed: a step that waits
 * for the handshake polls first.  With argv[5] "threads", a second thread
 * idles meanwhile (the fd table is shared: syscalls/slots.py). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in to;

static const char *name(int e)
{
	switch (e) {
	case 0: return "0";
	case EINPROGRESS: return "EINPROGRESS";
	case EALREADY: return "EALREADY";
	case EISCONN: return "EISCONN";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNABORTED: return "ECONNABORTED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
	case ENOTCONN: return "ENOTCONN";
	case EPIPE: return "EPIPE";
	case EAGAIN: return "EAGAIN";
	default: return strerror(e);
	}
}

static const char *conn(int fd, int port)
{
	to.sin_port = htons(port);
	return name(connect(fd, (void *)&to, sizeof to) ? errno : 0);
}

static int sock(int nonblock, int syncnt)
{
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (syncnt)
		setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &syncnt, sizeof syncnt);
	return fd;
}

static int so_error(int fd)
{
	int e = -1;
	socklen_t l = sizeof e;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
	return e;
}

static int waitout(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT | POLLIN };
	int n = poll(&p, 1, ms);
	return n > 0 ? p.revents : n;
}

static void on_alarm(int sig) { (void)sig; }

static int dropped_port;

/* a blocking connect that gives up after 0.5 s (SO_SNDTIMEO) */
static void *patient(void *arg)
{
	int fd = sock(0, 0);
	struct timeval t = { 0, 500000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
	struct sockaddr_in me = to;
	me.sin_port = htons(dropped_port);
	*(int *)arg = connect(fd, (void *)&me, sizeof me) ? errno : 0;
	close(fd);
	return NULL;
}

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static double since(struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 5 && !strcmp(argv[5], "threads")) {
		pthread_t t;
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);     /* SIGALRM is this thread's */
		pthread_create(&t, NULL, idle, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	to.sin_family = AF_INET;
	inet_pton(AF_INET, argv[1], &to.sin_addr);
	int open_port = atoi(argv[2]), closed = atoi(argv[3]), dropped = atoi(argv[4]);
	char buf[64];

	/* listening: EINPROGRESS, writable, SO_ERROR 0, then 0 once and EISCONN */
	int fd = sock(1, 0);
	printf("open connect %s\n", conn(fd, open_port));
	printf("open poll %#x\n", waitout(fd, 5000) & POLLOUT);
	printf("open so_error %s\n", name(so_error(fd)));
	printf("open again %s\n", conn(fd, open_port));
	printf("open again %s\n", conn(fd, open_port));
	printf("open listen %s\n", name(listen(fd, 1) ? errno : 0));
	struct sockaddr_in any = { .sin_family = AF_INET };
	printf("open bind %s\n", name(bind(fd, (void *)&any, sizeof any) ? errno : 0));
	struct sockaddr_in me;
	socklen_t ml = sizeof me;
	int r = getsockname(fd, (void *)&me, &ml);
	printf("open name %s family %d\n", name(r ? errno : 0), me.sin_family);
	struct sockaddr_in peer;
	socklen_t pl = sizeof peer;
	getpeername(fd, (void *)&peer, &pl);
	printf("open peer port %d\n", ntohs(peer.sin_port));
	fcntl(fd, F_SETFL, 0);
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	printf("open got %s", buf);
	close(fd);

	/* the same through epoll, then select */
	fd = sock(1, 0);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLOUT, .data.fd = fd }, got;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	printf("epoll connect %s\n", conn(fd, open_port));
	r = epoll_wait(ep, &got, 1, 5000);
	printf("epoll wait %d events %#x\n", r, got.events & EPOLLOUT);
	close(ep);
	close(fd);
	fd = sock(1, 0);
	printf("select connect %s\n", conn(fd, open_port));
	fd_set w;
	FD_ZERO(&w);
	FD_SET(fd, &w);
	struct timeval tv = { 5, 0 };
	r = select(fd + 1, NULL, &w, NULL, &tv);
	printf("select %d writable %d\n", r, FD_ISSET(fd, &w));
	close(fd);

	/* closed: the error through SO_ERROR, after which the socket is
	 * unconnected: its next connect starts again */
	fd = sock(1, 0);
	printf("closed connect %s\n", conn(fd, closed));
	printf("closed poll %#x\n", waitout(fd, 5000));
	printf("closed so_error %s\n", name(so_error(fd)));
	printf("closed so_error %s\n", name(so_error(fd)));
	printf("closed again %s\n", conn(fd, closed));
	printf("closed restart %s\n", conn(fd, closed));
	waitout(fd, 5000);
	printf("closed then %s\n", conn(fd, closed));
	printf("closed then %s\n", conn(fd, open_port));
	close(fd);

	/* closed, blocking: the error at once */
	fd = sock(0, 0);
	printf("closed blocking %s\n", conn(fd, closed));
	close(fd);

	/* dropped: in progress, then EALREADY, writable only when it gives up */
	fd = sock(1, 1);
	printf("dropped connect %s\n", conn(fd, dropped));
	printf("dropped again %s\n", conn(fd, dropped));
	printf("dropped poll %d\n", waitout(fd, 300));
	printf("dropped so_error %s\n", name(so_error(fd)));
	printf("dropped send %s\n", name(send(fd, "x", 1, MSG_NOSIGNAL) < 0 ? errno : 0));
	printf("dropped listen %s\n", name(listen(fd, 1) ? errno : 0));
	printf("dropped poll %#x\n", waitout(fd, 10000));
	printf("dropped so_error %s\n", name(so_error(fd)));
	close(fd);

	/* blocking, dropped, with SO_SNDTIMEO: EINPROGRESS after the timeout,
	 * then EALREADY; the connection goes on */
	fd = sock(0, 0);
	struct timeval t = { 0, 300000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("sndtimeo connect %s\n", conn(fd, dropped));
	double took = since(&t0);
	printf("sndtimeo waited %s\n", took >= 0.25 && took < 3 ? "about 0.3 s" : "wrongly");
	printf("sndtimeo again %s\n", conn(fd, dropped));
	close(fd);

	/* blocking, dropped, interrupted by a signal without SA_RESTART: EINTR */
	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	fd = sock(0, 0);
	struct itimerval it = { .it_value = { 0, 300000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	printf("eintr connect %s\n", conn(fd, dropped));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	printf("eintr again %s\n", conn(fd, dropped));
	close(fd);

	/* many threads wait in blocking connects at once */
	enum { WAITERS = 32 };
	pthread_t waiter[WAITERS];
	int answer[WAITERS], inprogress = 0;
	dropped_port = dropped;
	for (int i = 0; i < WAITERS; i++)
		pthread_create(&waiter[i], NULL, patient, &answer[i]);
	for (int i = 0; i < WAITERS; i++) {
		pthread_join(waiter[i], NULL);
		inprogress += answer[i] == EINPROGRESS;
	}
	printf("parallel %d of %d EINPROGRESS\n", inprogress, WAITERS);

	/* with SA_RESTART the connect goes on waiting, until it gives up */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	fd = sock(0, 1);
	setitimer(ITIMER_REAL, &it, NULL);
	printf("restart connect %s\n", conn(fd, dropped));
	close(fd);
	return 0;
}
