/* Conformance: poll/ppoll/select/pselect/epoll (LT, ET, ONESHOT) on pipes,
 * eventfd (semaphore mode), timerfd expirations, signalfd readiness.
 * Deterministic transcript.
 * Usage: conf_poll SCRATCH */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transcript.h"

static const char *ev(int e)
{
	static char b[128];
	b[0] = 0;
	if (e & POLLIN) strcat(b, "IN|");
	if (e & POLLPRI) strcat(b, "PRI|");
	if (e & POLLOUT) strcat(b, "OUT|");
	if (e & POLLERR) strcat(b, "ERR|");
	if (e & POLLHUP) strcat(b, "HUP|");
	if (e & POLLNVAL) strcat(b, "NVAL|");
	if (e & POLLRDHUP) strcat(b, "RDHUP|");
	if (!b[0]) strcpy(b, "0|");
	b[strlen(b) - 1] = 0;
	return b;
}

static void pollshow(const char *what, struct pollfd *p, int n, int timeout)
{
	int r = poll(p, n, timeout);
	printf("%s: poll=%d", what, r);
	if (r < 0) printf(" %s", strerrorname_np(errno));
	for (int i = 0; i < n; i++) printf(" [%s]", ev(p[i].revents));
	printf("\n");
}

static void epshow(const char *what, int ep, int timeout)
{
	struct epoll_event e[8];
	int r = epoll_wait(ep, e, 8, timeout);
	printf("%s: epoll_wait=%d", what, r);
	if (r < 0) printf(" %s", strerrorname_np(errno));
	/* report in data order, not readiness-list order */
	for (int i = 0; i < r; i++)
		for (int j = i + 1; j < r; j++)
			if (e[j].data.u64 < e[i].data.u64) { struct epoll_event t = e[i]; e[i] = e[j]; e[j] = t; }
	for (int i = 0; i < r; i++) printf(" {%lu %s}", (unsigned long)e[i].data.u64, ev(e[i].events));
	printf("\n");
}

static volatile sig_atomic_t hits;
static void on_usr1(int s) { (void)s; hits++; }

int main(int argc, char **argv)
{
	int p[2];
	char buf[256];
	if (argc < 2 || chdir(argv[1])) return 2;
	setvbuf(stdout, 0, _IONBF, 0);
	signal(SIGPIPE, SIG_IGN);
	alarm(20);

	printf("-- poll\n");
	pipe(p);
	struct pollfd pf[3] = { { p[0], POLLIN, 0 }, { p[1], POLLOUT, 0 }, { 999, POLLIN, 0 } };
	pollshow("empty pipe", pf, 3, 0);
	write(p[1], "x", 1);
	pollshow("one byte", pf, 2, 0);
	pf[0].events = 0; pollshow("no events requested", pf, 1, 0);
	pf[0].events = POLLIN;
	pf[0].fd = -1; pollshow("negative fd ignored", pf, 1, 0); pf[0].fd = p[0];
	close(p[1]);
	pollshow("writer closed (data left)", pf, 1, 0);
	read(p[0], buf, 1);
	pollshow("writer closed, drained", pf, 1, 0);
	close(p[0]);
	pipe(p); close(p[0]);
	struct pollfd wp = { p[1], POLLOUT, 0 }; pollshow("reader closed", &wp, 1, 0); close(p[1]);
	pipe(p);
	struct pollfd one = { p[0], POLLIN, 0 };
	struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
	pollshow("timeout 30ms", &one, 1, 30);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("waited >= 30ms: %d\n", (t1.tv_sec - t0.tv_sec) * 1000000000L + t1.tv_nsec - t0.tv_nsec >= 30000000L);
	volatile nfds_t huge = 1 << 30, single = 1;
	struct pollfd *volatile bad = (void *)8;
	T(poll(0, 0, 10)); T(poll(pf, huge, 0)); T(poll(bad, single, 0));
	/* a writer in another process wakes a blocked poll */
	pid_t c = fork();
	if (c == 0) { usleep(30000); write(p[1], "y", 1); _exit(0); }
	pollshow("woken by a child's write", &one, 1, 5000);
	while (wait(0) > 0) ;
	read(p[0], buf, 1);

	printf("-- ppoll\n");
	struct sigaction sa = { 0 }; sa.sa_handler = on_usr1; sigaction(SIGUSR1, &sa, 0);
	sigset_t blk, empty; sigemptyset(&blk); sigaddset(&blk, SIGUSR1); sigemptyset(&empty);
	sigprocmask(SIG_BLOCK, &blk, 0);
	raise(SIGUSR1);
	struct timespec pt = { 0, 20000000 };
	T(ppoll(&one, 1, &pt, &blk)); printf("hits=%d\n", (int)hits);
	T(ppoll(&one, 1, &pt, &empty)); printf("hits=%d\n", (int)hits);
	sigset_t cur; sigprocmask(SIG_BLOCK, 0, &cur); printf("mask restored: %d\n", sigismember(&cur, SIGUSR1));
	pt.tv_nsec = 5000000; T(ppoll(&one, 1, &pt, 0));
	struct timespec kt = { 0, 10000000 };
	T(syscall(SYS_ppoll, &one, 1, &kt, 0, 8)); printf("kernel ppoll updates the timeout: %d\n", kt.tv_sec == 0 && kt.tv_nsec == 0);
	T(syscall(SYS_ppoll, &one, 1, &kt, &empty, 4));
	pt.tv_nsec = -1; T(ppoll(&one, 1, &pt, 0));

	printf("-- select / pselect\n");
	fd_set r, w, x;
	FD_ZERO(&r); FD_ZERO(&w); FD_ZERO(&x); FD_SET(p[0], &r); FD_SET(p[1], &w);
	struct timeval tv = { 0, 0 };
	T(select(p[1] + 1, &r, &w, &x, &tv)); printf("readable %d writable %d\n", FD_ISSET(p[0], &r), FD_ISSET(p[1], &w));
	write(p[1], "z", 1);
	FD_ZERO(&r); FD_SET(p[0], &r); FD_ZERO(&w);
	T(select(p[0] + 1, &r, &w, 0, &tv)); printf("readable %d\n", FD_ISSET(p[0], &r));
	read(p[0], buf, 1);
	FD_ZERO(&r); FD_SET(p[0], &r);
	tv.tv_sec = 0; tv.tv_usec = 20000;
	T(select(p[0] + 1, &r, 0, 0, &tv)); printf("timeout left: %d\n", (int)(tv.tv_sec + tv.tv_usec));
	FD_ZERO(&r); FD_SET(900, &r); tv.tv_usec = 0;
	T(select(901, &r, 0, 0, &tv));
	T(select(-1, 0, 0, 0, &tv));
	tv.tv_usec = -1; T(select(1, 0, 0, 0, &tv));
	FD_ZERO(&r); FD_SET(p[0], &r);
	struct timespec ps = { 0, 20000000 };
	T(pselect(p[0] + 1, &r, 0, 0, &ps, &empty)); printf("hits=%d\n", (int)hits);
	raise(SIGUSR1);
	FD_ZERO(&r); FD_SET(p[0], &r);
	T(pselect(p[0] + 1, &r, 0, 0, &ps, &empty)); printf("hits=%d\n", (int)hits);
	sigprocmask(SIG_UNBLOCK, &blk, 0);

	printf("-- epoll\n");
	int ep = epoll_create1(EPOLL_CLOEXEC); T(ep >= 0);
	T(fcntl(ep, F_GETFD));
	T(epoll_create(0)); T(epoll_create1(0x1234));
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 1 };
	T(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e)); T(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e));
	T(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &e)); T(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], 0));
	T(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e)); T(epoll_ctl(ep, 42, p[0], &e)); T(epoll_ctl(ep, EPOLL_CTL_ADD, 999, &e));
	int reg = open("regular", O_CREAT | O_RDWR, 0644);
	T(epoll_ctl(ep, EPOLL_CTL_ADD, reg, &e)); close(reg);
	T(epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &e));
	struct epoll_event ee[2];
	T(epoll_wait(ep, ee, 0, 0)); T(epoll_wait(p[0], ee, 1, 0));
	epshow("LT empty", ep, 0);
	write(p[1], "ab", 2);
	epshow("LT data", ep, 0); epshow("LT again", ep, 0);
	read(p[0], buf, sizeof buf);
	epshow("LT drained", ep, 0);
	e.events = EPOLLIN | EPOLLET; T(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e));
	write(p[1], "ab", 2);
	epshow("ET data", ep, 0); epshow("ET again", ep, 0);
	read(p[0], buf, 1);
	epshow("ET after partial read", ep, 0);
	write(p[1], "c", 1);
	epshow("ET new data", ep, 0);
	read(p[0], buf, sizeof buf);
	e.events = EPOLLIN | EPOLLONESHOT; T(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e));
	write(p[1], "d", 1);
	epshow("ONESHOT", ep, 0); epshow("ONESHOT disarmed", ep, 0);
	T(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e));
	epshow("ONESHOT rearmed", ep, 0);
	read(p[0], buf, sizeof buf);
	e.events = EPOLLOUT; e.data.u64 = 2; T(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &e));
	e.events = EPOLLIN; e.data.u64 = 1; T(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e));
	write(p[1], "e", 1);
	epshow("two fds", ep, 0);
	int sv[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	e.events = EPOLLIN | EPOLLRDHUP; e.data.u64 = 3; T(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &e));
	T(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], 0));
	read(p[0], buf, sizeof buf);
	shutdown(sv[1], SHUT_WR);
	epshow("peer shut down", ep, 0);
	close(sv[1]);
	epshow("peer closed", ep, 0);
	T(epoll_ctl(ep, EPOLL_CTL_DEL, sv[0], 0)); close(sv[0]);
	/* closing the last reference removes it from the set */
	int d = dup(p[0]);
	e.events = EPOLLIN; e.data.u64 = 4; T(epoll_ctl(ep, EPOLL_CTL_ADD, d, &e));
	close(d);
	write(p[1], "f", 1);
	epshow("closed dup dropped, original reported", ep, 0);
	read(p[0], buf, sizeof buf);
	/* nested epoll, and a blocking wait woken by a child */
	int outer = epoll_create1(0);
	e.events = EPOLLIN; e.data.u64 = 9; T(epoll_ctl(outer, EPOLL_CTL_ADD, ep, &e));
	epshow("outer, inner idle", outer, 0);
	c = fork();
	if (c == 0) { usleep(30000); write(p[1], "g", 1); _exit(0); }
	epshow("outer, woken by a child", outer, 5000);
	epshow("inner", ep, 0);
	while (wait(0) > 0) ;
	read(p[0], buf, sizeof buf);
	sigprocmask(SIG_BLOCK, &blk, 0); raise(SIGUSR1); hits = 0;
	T(epoll_pwait(ep, ee, 2, 20, &blk)); printf("hits=%d\n", (int)hits);
	T(epoll_pwait(ep, ee, 2, 20, &empty)); printf("hits=%d\n", (int)hits);
	sigprocmask(SIG_UNBLOCK, &blk, 0);
	struct timespec ep2 = { 0, 10000000 };
	T(syscall(SYS_epoll_pwait2, ep, ee, 2, &ep2, 0, 8));
	close(outer);

	printf("-- eventfd\n");
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); T(efd >= 0);
	uint64_t v;
	T(read(efd, &v, sizeof v));
	v = 3; T(write(efd, &v, sizeof v)); v = 4; T(write(efd, &v, sizeof v));
	T(read(efd, &v, sizeof v)); printf("value=%lu\n", (unsigned long)v);
	T(read(efd, &v, 4)); v = 1; T(write(efd, &v, 4));
	v = UINT64_MAX; T(write(efd, &v, sizeof v));
	v = UINT64_MAX - 1; T(write(efd, &v, sizeof v));
	v = 1; T(write(efd, &v, sizeof v));
	struct pollfd epf = { efd, POLLIN | POLLOUT, 0 };
	pollshow("eventfd full", &epf, 1, 0);
	T(read(efd, &v, sizeof v));
	pollshow("eventfd zero", &epf, 1, 0);
	close(efd);
	efd = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
	for (int i = 0; i < 4; i++) { v = 0; long n = read(efd, &v, sizeof v); printf("semaphore read: %ld %s value=%lu\n", n, n < 0 ? strerrorname_np(errno) : "", (unsigned long)v); }
	v = 2; write(efd, &v, sizeof v);
	e.events = EPOLLIN; e.data.u64 = 5; epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e);
	epshow("semaphore eventfd in epoll", ep, 0);
	read(efd, &v, sizeof v); epshow("after one read", ep, 0);
	read(efd, &v, sizeof v); epshow("after two reads", ep, 0);
	T(eventfd(0, 0x1234));
	/* blocking read woken by another process */
	int bfd = eventfd(0, 0);
	c = fork();
	if (c == 0) { usleep(20000); uint64_t one = 7; write(bfd, &one, sizeof one); _exit(0); }
	T(read(bfd, &v, sizeof v)); printf("value=%lu\n", (unsigned long)v);
	while (wait(0) > 0) ;
	close(bfd);

	printf("-- timerfd readiness\n");
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	struct pollfd tp = { tfd, POLLIN, 0 };
	pollshow("unarmed timerfd", &tp, 1, 0);
	struct itimerspec its = { { 0, 0 }, { 0, 30000000 } };
	timerfd_settime(tfd, 0, &its, 0);
	pollshow("one-shot 30ms, poll 2s", &tp, 1, 2000);
	T(read(tfd, &v, sizeof v)); printf("expirations=%lu\n", (unsigned long)v);
	pollshow("after read", &tp, 1, 0);
	its.it_interval.tv_nsec = 10000000; its.it_value.tv_nsec = 10000000;
	timerfd_settime(tfd, 0, &its, 0);
	e.events = EPOLLIN | EPOLLET; e.data.u64 = 6; epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e);
	epoll_ctl(ep, EPOLL_CTL_DEL, efd, 0);
	epshow("periodic timerfd in epoll", ep, 2000);
	usleep(35000);
	T(read(tfd, &v, sizeof v)); printf("expirations >= 3: %d\n", v >= 3);
	its.it_interval.tv_nsec = 0; its.it_value.tv_nsec = 0; timerfd_settime(tfd, 0, &its, 0);
	epoll_ctl(ep, EPOLL_CTL_DEL, tfd, 0);
	close(tfd);

	printf("-- signalfd readiness\n");
	sigset_t s2; sigemptyset(&s2); sigaddset(&s2, SIGUSR2); sigprocmask(SIG_BLOCK, &s2, 0);
	int sfd = signalfd(-1, &s2, SFD_NONBLOCK);
	struct pollfd sp = { sfd, POLLIN, 0 };
	pollshow("no signal", &sp, 1, 0);
	raise(SIGUSR2);
	pollshow("SIGUSR2 pending", &sp, 1, 0);
	e.events = EPOLLIN; e.data.u64 = 7; T(epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e));
	epshow("signalfd in epoll", ep, 0);
	struct signalfd_siginfo si; T(read(sfd, &si, sizeof si)); printf("ssi_signo=%d\n", si.ssi_signo);
	pollshow("consumed", &sp, 1, 0);
	c = fork();
	if (c == 0) { usleep(20000); kill(getppid(), SIGUSR2); _exit(0); }
	epshow("woken by a child's kill", ep, 5000);
	while (wait(0) > 0) ;
	T(read(sfd, &si, sizeof si)); printf("ssi_signo=%d ssi_code=%d\n", si.ssi_signo, si.ssi_code);
	close(sfd); close(ep);
	return 0;
}
