/* The PID namespace (issue 4): every way a pid reaches a program, printed
 * as relations that hold in any namespace (so natively and in sentry the
 * transcript is the same); with "raw" as second argument, the values
 * themselves too, on lines starting "raw ", for the leak test to scan. */
#include "transcript.h"
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/resource.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>

static int raw;
static void show(const char *what, long v) { if (raw) printf("raw %s %ld\n", what, v); }

static volatile pid_t handler_pid, handler_uid_ok;
static volatile int handler_code;
static void on_sig(int s, siginfo_t *si, void *c)
{
	(void)s; (void)c;
	handler_pid = si->si_pid; handler_code = si->si_code; handler_uid_ok = si->si_uid == getuid();
}

static pid_t thread_tid;
static void *thread_main(void *a) { (void)a; thread_tid = gettid(); return 0; }

static long fdinfo_pid(int fd)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	long pid = -2;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "Pid:", 4)) pid = atol(line + 4);
	if (f) fclose(f);
	return pid;
}

static long stat_field(pid_t pid, int n)   /* n: 1-based field of /proc/<pid>/stat */
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f) return -2;
	size_t len = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[len] = 0;
	if (n == 1) return atol(buf);
	char *p = strrchr(buf, ')') + 2;
	for (int i = 3; i < n; i++) p = strchr(p, ' ') + 1;
	return atol(p);
}

int main(int argc, char **argv)
{
	int st;
	if (argc < 2 || chdir(argv[1])) return 2;
	raw = argc > 2 && !strcmp(argv[2], "raw");
	setvbuf(stdout, 0, _IONBF, 0);
	alarm(20);
	pid_t me = getpid(), parent = getppid();
	show("getpid", me); show("getppid", parent); show("gettid", gettid());
	show("getpgrp", getpgrp()); show("getsid", getsid(0));
	show("syscall getpid", syscall(SYS_getpid));

	printf("-- identity\n");
	printf("gettid==getpid %d syscall(getpid)==getpid %d\n", gettid() == me, syscall(SYS_getpid) == me);
	if (raw) {     /* /proc: not in the native chroot the transcript is compared with */
		char link[64] = "";
		readlink("/proc/self", link, sizeof link - 1);
		printf("raw proc: self==me %d stat pid==me %d ppid==parent %d pgrp==getpgrp %d\n",
		       atol(link) == me, stat_field(me, 1) == me, stat_field(me, 4) == parent,
		       stat_field(me, 5) == getpgrp());
		show("readlink /proc/self", atol(link));
		show("stat pid", stat_field(me, 1)); show("stat ppid", stat_field(me, 4));
		show("stat pgrp", stat_field(me, 5)); show("stat session", stat_field(me, 6));
	}

	printf("-- fork, wait, SIGCHLD\n");
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_sig; sa.sa_flags = SA_SIGINFO;
	sigaction(SIGCHLD, &sa, 0);
	int p[2]; pipe(p);
	pid_t c = fork();
	if (c == 0) {
		pid_t mine = getpid();
		write(p[1], &mine, sizeof mine);
		printf("child: getppid==parent %d\n", getppid() == me);
		_exit(5);
	}
	pid_t told; read(p[0], &told, sizeof told);
	show("fork", c); show("child getpid", told);
	pid_t w = waitpid(c, &st, 0);
	while (!handler_pid) usleep(1000);
	printf("fork()==child's getpid %d waitpid==child %d SIGCHLD si_pid==child %d code=%d uid ok %d\n",
	       c == told, w == c, handler_pid == c, handler_code, handler_uid_ok);
	show("waitpid", w); show("SIGCHLD si_pid", handler_pid);
	status("child", st);
	c = fork();
	if (c == 0) _exit(6);
	siginfo_t si = { 0 };
	T(waitid(P_PID, c, &si, WEXITED));
	printf("waitid si_pid==child %d si_status=%d\n", si.si_pid == c, si.si_status);
	show("waitid si_pid", si.si_pid);
	T(waitpid(c, &st, WNOHANG));
	T(waitpid(999999, &st, WNOHANG));
	/* -INT_MIN is no group: ESRCH, after the options' EINVAL */
	T(waitpid(INT_MIN, &st, WNOHANG)); T(waitpid(INT_MIN, &st, 0x4000)); T(waitpid(-999999, &st, WNOHANG));

	printf("-- signals to self\n");
	sigaction(SIGUSR1, &sa, 0);
	handler_pid = 0;
	T(kill(me, SIGUSR1));
	printf("kill: si_pid==me %d code=%d\n", handler_pid == me, handler_code);
	show("kill si_pid", handler_pid);
	handler_pid = 0;
	union sigval v = { 7 };
	T(sigqueue(me, SIGUSR1, v));
	printf("sigqueue: si_pid==me %d code=%d\n", handler_pid == me, handler_code);
	handler_pid = 0;
	T(syscall(SYS_tgkill, me, gettid(), SIGUSR1));
	printf("tgkill: si_pid==me %d code=%d\n", handler_pid == me, handler_code);
	sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, 0);
	kill(me, SIGUSR2);
	struct timespec zero = { 0, 0 };
	memset(&si, 0, sizeof si);
	T(sigtimedwait(&set, &si, &zero));
	printf("sigtimedwait si_pid==me %d\n", si.si_pid == me);
	show("sigtimedwait si_pid", si.si_pid);

	{	/* a signalfd's records name the sender too */
		sigset_t sm; sigemptyset(&sm); sigaddset(&sm, SIGUSR2); sigaddset(&sm, SIGCHLD);
		sigprocmask(SIG_BLOCK, &sm, 0);
		int sfd = signalfd(-1, &sm, 0);
		kill(me, SIGUSR2);
		struct signalfd_siginfo ss;
		T(read(sfd, &ss, sizeof ss));
		printf("signalfd ssi_pid==me %d uid ok %d\n", ss.ssi_pid == (unsigned)me, ss.ssi_uid == getuid());
		show("signalfd ssi_pid", ss.ssi_pid);
		pid_t k = fork();
		if (k == 0) _exit(4);
		T(read(sfd, &ss, sizeof ss));
		printf("signalfd SIGCHLD ssi_pid==child %d status %d\n", ss.ssi_pid == (unsigned)k, ss.ssi_status);
		show("signalfd child ssi_pid", ss.ssi_pid);
		waitpid(k, &st, 0);
		/* its copies, under other numbers, and in a child */
		int copies[] = { dup(sfd), fcntl(sfd, F_DUPFD_CLOEXEC, 40), dup2(sfd, 50), dup3(sfd, 51, O_CLOEXEC) };
		for (int i = 0; i < 4; i++) {
			kill(me, SIGUSR2);
			memset(&ss, 0, sizeof ss);
			T(read(copies[i], &ss, sizeof ss) == sizeof ss);
			printf("copy %d of the signalfd: ssi_pid==me %d\n", i, ss.ssi_pid == (unsigned)me);
			show("signalfd copy ssi_pid", ss.ssi_pid);
		}
		int again = dup(copies[3]);
		k = fork();
		if (k == 0) {
			kill(getpid(), SIGUSR2);      /* a signalfd reads its reader's signals */
			memset(&ss, 0, sizeof ss);
			if (read(again, &ss, sizeof ss) != sizeof ss) _exit(1);
			printf("a child's copy of a copy: ssi_pid==child %d\n", ss.ssi_pid == (unsigned)getpid());
			show("child's signalfd copy ssi_pid", ss.ssi_pid);
			_exit(0);
		}
		waitpid(k, &st, 0);
		status("child reading a copy", st);
		for (int i = 0; i < 4; i++) close(copies[i]);
		close(again);
		close(sfd);
		sigprocmask(SIG_UNBLOCK, &sm, 0);
	}

	printf("-- threads\n");
	pthread_t t;
	pthread_create(&t, 0, thread_main, 0);
	pthread_join(t, 0);
	printf("thread tid differs %d, positive %d\n", thread_tid != me, thread_tid > 0);
	show("thread tid", thread_tid);
	pid_t set_tid = syscall(SYS_set_tid_address, (void *)0);
	printf("set_tid_address==gettid %d\n", set_tid == gettid());
	struct sigevent ev = { 0 };
	ev.sigev_notify = SIGEV_THREAD_ID; ev.sigev_signo = SIGUSR1; ev._sigev_un._tid = gettid();
	timer_t tm;
	T(timer_create(CLOCK_MONOTONIC, &ev, &tm));

	printf("-- process groups and sessions\n");
	c = fork();
	if (c == 0) { pause(); _exit(0); }
	T(setpgid(c, c));
	printf("getpgid(child)==child %d\n", getpgid(c) == c);
	show("getpgid(child)", getpgid(c));
	T(kill(-c, SIGTERM));
	waitpid(c, &st, 0); status("group member", st);
	c = fork();
	if (c == 0) {
		pid_t s = setsid();
		printf("child: setsid==getpid %d getsid==getpid %d getpgrp==getpid %d\n",
		       s == getpid(), getsid(0) == getpid(), getpgrp() == getpid());
		_exit(0);
	}
	waitpid(c, &st, 0);
	T(setpgid(0, 0));
	printf("getpgrp==me %d getpgid(0)==me %d\n", getpgrp() == me, getpgid(0) == me);
	T(kill(0, 0)); T(kill(-me, 0)); T(kill(999999, 0)); T(kill(-999999, 0));
	{	/* the kernel preserves argument registers: a translated pid must not stay in rdi */
		long rdi = me, rax = SYS_kill;
		__asm__ volatile("syscall" : "+a"(rax), "+D"(rdi) : "S"(0L) : "rcx", "r11", "memory");
		printf("kill(me, 0) raw: %ld, rdi kept %d\n", rax, rdi == me);
		show("rdi after kill", rdi);
	}

	printf("-- fds: owner, locks, pidfd, peer\n");
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	struct ucred cr; socklen_t cl = sizeof cr;
	T(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &cl));
	printf("SO_PEERCRED pid==me %d uid ok %d\n", cr.pid == me, cr.uid == getuid());
	show("SO_PEERCRED pid", cr.pid);
	{	/* SO_PASSCRED: the kernel attaches the sender's credentials */
		int dv[2];
		socketpair(AF_UNIX, SOCK_DGRAM, 0, dv);
		int on = 1;
		T(setsockopt(dv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
		pid_t k = fork();
		if (k == 0) { send(dv[0], "x", 1, 0); _exit(0); }
		char data[4], cbuf[CMSG_SPACE(sizeof(struct ucred))];
		struct iovec iov = { data, sizeof data };
		struct msghdr mh = { 0 };
		mh.msg_iov = &iov; mh.msg_iovlen = 1; mh.msg_control = cbuf; mh.msg_controllen = sizeof cbuf;
		T(recvmsg(dv[1], &mh, 0));
		struct ucred *uc = (struct ucred *)CMSG_DATA(CMSG_FIRSTHDR(&mh));
		printf("SCM_CREDENTIALS pid==child %d uid ok %d\n", uc->pid == k, uc->uid == getuid());
		show("SCM_CREDENTIALS pid", uc->pid);
		waitpid(k, &st, 0);
		int copy = fcntl(dv[1], F_DUPFD, 60);
		T(send(dv[0], "y", 1, 0));
		mh.msg_controllen = sizeof cbuf;
		T(recvmsg(copy, &mh, 0));
		uc = (struct ucred *)CMSG_DATA(CMSG_FIRSTHDR(&mh));
		printf("SCM_CREDENTIALS through a copy: pid==me %d\n", uc->pid == me);
		show("SCM_CREDENTIALS copy pid", uc->pid);
		close(copy);
		close(dv[0]); close(dv[1]);
	}
	T(fcntl(sv[0], F_SETOWN, me));
	printf("F_GETOWN==me %d\n", fcntl(sv[0], F_GETOWN) == me);
	show("F_GETOWN", fcntl(sv[0], F_GETOWN));
	T(fcntl(sv[0], F_SETOWN, -me));
	printf("F_GETOWN==-me %d\n", fcntl(sv[0], F_GETOWN) == -me);
	struct f_owner_ex ox = { F_OWNER_TID, gettid() };
	T(fcntl(sv[0], F_SETOWN_EX, &ox));
	memset(&ox, 0, sizeof ox);
	T(fcntl(sv[0], F_GETOWN_EX, &ox));
	printf("F_GETOWN_EX type %d pid==tid %d\n", ox.type, ox.pid == gettid());
	int fd = open("lockfile", O_RDWR | O_CREAT, 0600);
	int q[2]; pipe(q);
	c = fork();
	if (c == 0) {
		struct flock fl = { F_WRLCK, SEEK_SET, 0, 10, 0 };
		fcntl(fd, F_SETLK, &fl);
		write(q[1], "x", 1);
		pause();
		_exit(0);
	}
	char b; read(q[0], &b, 1);
	struct flock fl = { F_WRLCK, SEEK_SET, 0, 10, 0 };
	T(fcntl(fd, F_GETLK, &fl));
	printf("F_GETLK l_pid==holder %d type %d\n", fl.l_pid == c, fl.l_type);
	show("F_GETLK l_pid", fl.l_pid);
	int pfd = syscall(SYS_pidfd_open, c, 0);
	printf("pidfd_open ok %d\n", pfd >= 0);
	if (raw) printf("raw proc: fdinfo Pid==child %d\n", fdinfo_pid(pfd) == c);
	show("fdinfo Pid", fdinfo_pid(pfd));
	show("holder stat pid", stat_field(c, 1));
	{	/* PIDFD_GET_INFO (Linux 6.13): the process by pid, tgid, ppid and ids */
		struct { uint64_t mask, cgroupid; uint32_t pid, tgid, ppid, ids[8]; int32_t exit_code; uint32_t more[2]; } info;
		memset(&info, 0, sizeof info);
		info.mask = 1 | 2;                       /* PIDFD_INFO_PID | PIDFD_INFO_CREDS */
		long r = ioctl(pfd, _IOWR(0xFF, 11, info), &info);
		if (r == 0)
			printf("PIDFD_GET_INFO: pid==child %d tgid==child %d ppid==me %d ruid ok %d euid ok %d\n",
			       info.pid == (uint32_t)c, info.tgid == (uint32_t)c, info.ppid == (uint32_t)me,
			       info.ids[0] == getuid(), info.ids[2] == geteuid());
		else
			printf("PIDFD_GET_INFO: %s\n", strerrorname_np(errno));
		show("PIDFD_GET_INFO pid", info.pid);
		show("PIDFD_GET_INFO ppid", info.ppid);
		int ns = ioctl(pfd, _IO(0xFF, 4), 0);     /* PIDFD_GET_PID_NAMESPACE */
		printf("PIDFD_GET_PID_NAMESPACE gives an fd: %d\n", ns >= 0);
		if (ns >= 0) close(ns);
	}
	T(syscall(SYS_pidfd_send_signal, pfd, SIGKILL, 0, 0));
	waitpid(c, &st, 0); status("lock holder", st);
	T(syscall(SYS_pidfd_open, 999999, 0));
	printf("-- scheduling and limits by pid\n");
	T(getpriority(PRIO_PROCESS, me) == getpriority(PRIO_PROCESS, 0));
	T(sched_getscheduler(me));
	T(sched_getscheduler(999999));
	struct rlimit rl;
	T(prlimit(me, RLIMIT_NOFILE, 0, &rl));
	T(prlimit(999999, RLIMIT_NOFILE, 0, &rl));
	return 0;
}
