/* Conformance: sigaction (SA_RESTART, SA_SIGINFO, SA_RESETHAND), sigprocmask,
 * sigpending, sigsuspend, signalfd, rt_sigqueueinfo, kill(0)/kill(-pgrp),
 * alarm + pause, SIGCHLD si_code/si_status, sigaltstack, real-time queueing.
 * Deterministic transcript: si_code and si_status, never pids (only relations).
 * Usage: conf_signals SCRATCH */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transcript.h"


static volatile sig_atomic_t hits, last_code, last_pid_is_self, last_value, last_uid;
static volatile int order[16], norder;
static void on_info(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	hits++;
	last_code = si->si_code;
	last_pid_is_self = si->si_pid == getpid();
	last_uid = si->si_uid;
	last_value = si->si_value.sival_int;
	if (norder < 16) order[norder++] = (sig == SIGUSR2 ? 900 : (sig - SIGRTMIN) * 100) + si->si_value.sival_int;
}
static void on_plain(int s) { (void)s; hits++; }

static volatile sig_atomic_t chld_code, chld_status, chld_pid_ok, chld_hits;
static pid_t expect_child;
static void on_chld(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	chld_hits++;
	chld_code = si->si_code;
	chld_status = si->si_status;
	chld_pid_ok = si->si_pid == expect_child;
}

static char *altbase; static size_t altsize;
static volatile sig_atomic_t on_alt, alt_flags;
static void on_altstack(int s)
{
	(void)s;
	char here;
	on_alt = &here >= altbase && &here < altbase + altsize;
	stack_t cur; sigaltstack(0, &cur);
	alt_flags = cur.ss_flags;
}

static void info_handler(int sig, int flags)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_info; sa.sa_flags = SA_SIGINFO | flags;
	sigaction(sig, &sa, 0);
}

static void show_info(const char *what)
{
	printf("%s: hits=%d si_code=%d si_pid==getpid:%d si_uid=%d\n", what, (int)hits, (int)last_code, (int)last_pid_is_self, (int)last_uid);
	hits = 0;
}

int main(int argc, char **argv)
{
	int st;
	sigset_t set, old, pend;
	if (argc < 2 || chdir(argv[1])) return 2;
	setvbuf(stdout, 0, _IONBF, 0);
	alarm(20);

	printf("-- sigaction\n");
	struct sigaction sa = { 0 }, got;
	sa.sa_handler = on_plain;
	T(sigaction(SIGKILL, &sa, 0)); T(sigaction(SIGSTOP, &sa, 0)); T(sigaction(0, &sa, 0)); T(sigaction(65, &sa, 0));
	T(sigaction(SIGKILL, 0, &got)); printf("SIGKILL handler is default: %d\n", got.sa_handler == SIG_DFL);
	T(syscall(SYS_rt_sigaction, SIGUSR1, 0, &got, 4));
	sa.sa_flags = SA_RESETHAND;
	T(sigaction(SIGUSR1, &sa, 0)); T(raise(SIGUSR1));
	T(sigaction(SIGUSR1, 0, &got)); printf("after SA_RESETHAND: default=%d hits=%d\n", got.sa_handler == SIG_DFL, (int)hits); hits = 0;
	info_handler(SIGUSR1, 0);
	T(sigaction(SIGUSR1, 0, &got)); printf("flags has SA_SIGINFO: %d\n", !!(got.sa_flags & SA_SIGINFO));
	T(raise(SIGUSR1)); show_info("raise");
	T(kill(getpid(), SIGUSR1)); show_info("kill self");
	T(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1)); show_info("tgkill self");
	T(kill(getpid(), 0)); T(kill(getpid(), 65)); T(kill(999999999, SIGUSR1));
	union sigval sv = { .sival_int = 42 };
	T(sigqueue(getpid(), SIGUSR1, sv)); show_info("sigqueue"); printf("si_value=%d\n", (int)last_value);
	siginfo_t si; memset(&si, 0, sizeof si);
	si.si_signo = SIGUSR1; si.si_code = SI_QUEUE; si.si_value.sival_int = 7; si.si_pid = getpid(); si.si_uid = getuid();
	T(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si)); show_info("rt_sigqueueinfo SI_QUEUE"); printf("si_value=%d\n", (int)last_value);
	si.si_code = -42;
	T(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si)); show_info("rt_sigqueueinfo -42");
	si.si_code = SI_USER;
	T(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si)); show_info("rt_sigqueueinfo SI_USER to self");
	T(syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGUSR1, &si)); show_info("rt_tgsigqueueinfo to self");
	pid_t parent = getpid();
	pid_t c = fork();
	if (c == 0) {
		siginfo_t ci; memset(&ci, 0, sizeof ci);
		ci.si_signo = SIGUSR1; ci.si_code = SI_USER;
		long r1 = syscall(SYS_rt_sigqueueinfo, parent, SIGUSR1, &ci); int e1 = errno;
		ci.si_code = SI_TKILL;
		long r2 = syscall(SYS_rt_sigqueueinfo, parent, SIGUSR1, &ci); int e2 = errno;
		_exit((r1 == -1 && e1 == EPERM) + 2 * (r2 == -1 && e2 == EPERM));
	}
	waitpid(c, &st, 0); status("child rt_sigqueueinfo SI_USER and SI_TKILL to parent: 3 = both EPERM", st);
	printf("parent hit: %d\n", (int)hits); hits = 0;

	printf("-- masks and pending\n");
	sigemptyset(&set); sigaddset(&set, SIGUSR1); sigaddset(&set, SIGKILL); sigaddset(&set, SIGSTOP);
	T(sigprocmask(SIG_BLOCK, &set, &old));
	T(sigprocmask(SIG_BLOCK, 0, &old)); printf("blocked: USR1=%d KILL=%d STOP=%d\n", sigismember(&old, SIGUSR1), sigismember(&old, SIGKILL), sigismember(&old, SIGSTOP));
	T(sigprocmask(42, &set, 0));
	T(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, 0, 4));
	T(raise(SIGUSR1)); T(raise(SIGUSR1)); T(raise(SIGUSR1));
	T(sigpending(&pend)); printf("pending USR1=%d USR2=%d hits=%d\n", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGUSR2), (int)hits);
	T(sigprocmask(SIG_UNBLOCK, &set, 0)); show_info("standard signals coalesce");
	/* ignoring a pending signal discards it */
	T(sigprocmask(SIG_BLOCK, &set, 0)); T(raise(SIGUSR1));
	signal(SIGUSR1, SIG_IGN); sigpending(&pend); printf("pending after SIG_IGN: %d\n", sigismember(&pend, SIGUSR1));
	info_handler(SIGUSR1, 0); T(sigprocmask(SIG_UNBLOCK, &set, 0)); printf("hits=%d\n", (int)hits);

	printf("-- real-time queueing\n");
	sigemptyset(&set); sigaddset(&set, SIGRTMIN); sigaddset(&set, SIGRTMIN + 1); sigaddset(&set, SIGUSR2);
	info_handler(SIGRTMIN, 0); info_handler(SIGRTMIN + 1, 0); info_handler(SIGUSR2, 0);
	sigprocmask(SIG_BLOCK, &set, 0);
	for (int i = 1; i <= 3; i++) { sv.sival_int = i; sigqueue(getpid(), SIGRTMIN + 1, sv); }
	for (int i = 4; i <= 6; i++) { sv.sival_int = i; sigqueue(getpid(), SIGRTMIN, sv); }
	sv.sival_int = 9; sigqueue(getpid(), SIGUSR2, sv); sigqueue(getpid(), SIGUSR2, sv);
	norder = 0; hits = 0;
	sigprocmask(SIG_UNBLOCK, &set, 0);
	printf("delivered %d (handlers run, innermost frame first):", (int)hits);
	for (int i = 0; i < norder; i++) printf(" %s:%d", order[i] >= 900 ? "USR2" : order[i] >= 100 ? "RTMIN+1" : "RTMIN", order[i] % 100);
	printf("\n"); hits = 0;
	/* sigtimedwait / sigwaitinfo take queued signals in the same order */
	sigprocmask(SIG_BLOCK, &set, 0);
	sv.sival_int = 11; sigqueue(getpid(), SIGRTMIN + 1, sv);
	sv.sival_int = 12; sigqueue(getpid(), SIGRTMIN, sv);
	struct timespec zero = { 0, 0 }, short_ts = { 0, 20000000 };
	for (int i = 0; i < 3; i++) {
		memset(&si, 0, sizeof si);
		int r = sigtimedwait(&set, &si, &zero);
		if (r < 0) printf("sigtimedwait: %s\n", strerrorname_np(errno));
		else printf("sigtimedwait: SIGRTMIN+%d value=%d code=%d\n", r - SIGRTMIN, si.si_value.sival_int, si.si_code);
	}
	T(sigtimedwait(&set, &si, &short_ts));
	struct timespec badts = { 0, 2000000000L };
	T(sigtimedwait(&set, &si, &badts));
	sigprocmask(SIG_UNBLOCK, &set, 0);

	printf("-- sigsuspend\n");
	info_handler(SIGUSR1, 0);
	sigemptyset(&set); sigaddset(&set, SIGUSR1); sigprocmask(SIG_BLOCK, &set, 0);
	c = fork();
	if (c == 0) { kill(getppid(), SIGUSR1); _exit(0); }
	sigset_t none; sigemptyset(&none);
	T(sigsuspend(&none)); show_info("sigsuspend");
	T(sigprocmask(SIG_BLOCK, 0, &old)); printf("USR1 still blocked after sigsuspend: %d\n", sigismember(&old, SIGUSR1));
	waitpid(c, &st, 0);
	sigprocmask(SIG_UNBLOCK, &set, 0);

	printf("-- signalfd\n");
	sigemptyset(&set); sigaddset(&set, SIGUSR2); sigprocmask(SIG_BLOCK, &set, 0);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC); T(sfd >= 0);
	struct signalfd_siginfo ssi;
	T(read(sfd, &ssi, sizeof ssi));
	T(raise(SIGUSR2));
	memset(&ssi, 0, sizeof ssi);
	T(read(sfd, &ssi, sizeof ssi)); printf("ssi_signo=%d ssi_code=%d ssi_pid==getpid:%d\n", ssi.ssi_signo, ssi.ssi_code, ssi.ssi_pid == (unsigned)getpid());
	sv.sival_int = 77; sigqueue(getpid(), SIGUSR2, sv);
	T(read(sfd, &ssi, 4));
	T(read(sfd, &ssi, sizeof ssi)); printf("ssi_code=%d ssi_int=%d\n", ssi.ssi_code, ssi.ssi_int);
	sigaddset(&set, SIGUSR1); sigprocmask(SIG_BLOCK, &set, 0);
	T(signalfd(sfd, &set, 0) == sfd);
	T(raise(SIGUSR1)); T(read(sfd, &ssi, sizeof ssi)); printf("ssi_signo=%d\n", ssi.ssi_signo);
	T(signalfd(0, &set, 0));
	T(signalfd(-1, &set, 0x1234));
	close(sfd);
	sigprocmask(SIG_UNBLOCK, &set, 0);

	printf("-- SA_RESTART\n");
	int p[2];
	for (int restart = 0; restart < 2; restart++) {
		pipe(p);
		sa.sa_handler = on_plain; sa.sa_flags = restart ? SA_RESTART : 0; sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, 0);
		c = fork();
		if (c == 0) {
			close(p[0]);
			usleep(50000); kill(getppid(), SIGUSR1);
			usleep(100000); write(p[1], "late", 4);
			_exit(0);
		}
		close(p[1]);
		char b[8];
		hits = 0;
		printf("SA_RESTART=%d: ", restart); T(read(p[0], b, sizeof b));
		printf("handler ran: %d\n", (int)hits);
		waitpid(c, &st, 0); close(p[0]);
	}
	/* nanosleep is never restarted: it reports the remaining time */
	sa.sa_flags = SA_RESTART; sigaction(SIGUSR1, &sa, 0);
	c = fork();
	if (c == 0) { usleep(50000); kill(getppid(), SIGUSR1); _exit(0); }
	struct timespec req = { 5, 0 }, rem = { 0, 0 };
	T(nanosleep(&req, &rem)); printf("remaining between 4s and 5s: %d\n", rem.tv_sec >= 4 && rem.tv_sec < 5);
	waitpid(c, &st, 0);

	printf("-- process groups\n");
	T(setpgid(0, 0)); T(getpgrp() == getpid());
	sa.sa_handler = on_plain; sa.sa_flags = 0; sigaction(SIGUSR1, &sa, 0);
	sigemptyset(&set); sigaddset(&set, SIGUSR1); sigprocmask(SIG_BLOCK, &set, 0);
	for (int round = 0; round < 2; round++) {
		int ready[2]; pipe(ready);
		pid_t kids[2];
		for (int i = 0; i < 2; i++) {
			kids[i] = fork();
			if (kids[i] == 0) {
				close(ready[0]);
				siginfo_t ki; struct timespec lim = { 5, 0 };
				write(ready[1], "r", 1);
				int r = sigtimedwait(&set, &ki, &lim);
				_exit(r == SIGUSR1 ? 0 : 1);
			}
		}
		close(ready[1]);
		char b[2]; read(ready[0], b, 1); read(ready[0], b, 1); close(ready[0]);
		hits = 0;
		if (round == 0) { printf("kill(0, SIGUSR1): "); T(kill(0, SIGUSR1)); }
		else { printf("kill(-getpgrp(), SIGUSR1): "); T(kill(-getpgrp(), SIGUSR1)); }
		for (int i = 0; i < 2; i++) { waitpid(kids[i], &st, 0); status("  group member", st); }
		sigpending(&pend); printf("  self got it: %d\n", sigismember(&pend, SIGUSR1));
		sigtimedwait(&set, &si, &zero);
	}
	sigprocmask(SIG_UNBLOCK, &set, 0);
	T(kill(-999999999, SIGUSR1)); T(killpg(999999999, 0)); T(kill(-1, 0));
	c = fork();
	if (c == 0) { setpgid(0, 0); pause(); _exit(0); }
	setpgid(c, c);
	T(kill(-c, SIGTERM)); waitpid(c, &st, 0); status("child in own group, kill(-pgrp)", st);

	printf("-- alarm and pause\n");
	signal(SIGALRM, on_plain); hits = 0;
	T(alarm(0) > 0); /* the watchdog */
	T(alarm(1)); T(pause()); printf("SIGALRM hits=%d\n", (int)hits); hits = 0;
	T(alarm(5)); T(alarm(0)); T(alarm(0));
	alarm(20);

	printf("-- SIGCHLD\n");
	sa.sa_sigaction = on_chld; sa.sa_flags = SA_SIGINFO; sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, 0);
	sigemptyset(&set); sigaddset(&set, SIGCHLD);
	struct { const char *what; int kind; } cases[] = { { "exit 3", 0 }, { "SIGKILL", 1 }, { "raise SIGTERM", 2 }, { "SIGSTOP/SIGCONT", 3 } };
	for (int i = 0; i < 4; i++) {
		sigprocmask(SIG_BLOCK, &set, 0);
		chld_hits = 0; chld_code = 0; chld_status = 0;
		c = fork();
		if (c == 0) {
			if (cases[i].kind == 0) _exit(3);
			if (cases[i].kind == 2) raise(SIGTERM);
			for (;;) pause();
		}
		expect_child = c;
		if (cases[i].kind == 1) kill(c, SIGKILL);
		if (cases[i].kind == 3) {
			kill(c, SIGSTOP);
			sigsuspend(&none);
			printf("%s: stop code=%d status=%s hits=%d pid ok=%d\n", cases[i].what, (int)chld_code, sigabbrev_np(chld_status), (int)chld_hits, (int)chld_pid_ok);
			waitpid(c, &st, WUNTRACED); printf("  waitpid WIFSTOPPED=%d\n", WIFSTOPPED(st));
			chld_hits = 0;
			kill(c, SIGCONT);
			sigsuspend(&none);
			printf("%s: cont code=%d status=%s hits=%d\n", cases[i].what, (int)chld_code, sigabbrev_np(chld_status), (int)chld_hits);
			chld_hits = 0;
			kill(c, SIGKILL);
		}
		sigsuspend(&none);
		int shown = cases[i].kind == 0 ? chld_status : 0;
		printf("%s: code=%d status=%s hits=%d pid ok=%d\n", cases[i].what, (int)chld_code,
		       cases[i].kind == 0 ? (shown == 3 ? "3" : "?") : sigabbrev_np(chld_status), (int)chld_hits, (int)chld_pid_ok);
		siginfo_t wi; memset(&wi, 0, sizeof wi);
		T(waitid(P_PID, c, &wi, WEXITED)); printf("  waitid si_code=%d si_status=%d si_pid ok=%d\n", wi.si_code, wi.si_status, wi.si_pid == c);
		sigprocmask(SIG_UNBLOCK, &set, 0);
	}
	/* SA_NOCLDSTOP and SA_NOCLDWAIT */
	sa.sa_flags = SA_SIGINFO | SA_NOCLDSTOP; sigaction(SIGCHLD, &sa, 0);
	c = fork(); if (c == 0) { for (;;) pause(); }
	expect_child = c; chld_hits = 0;
	kill(c, SIGSTOP); waitpid(c, &st, WUNTRACED); usleep(20000);
	printf("SA_NOCLDSTOP: hits after stop=%d\n", (int)chld_hits);
	kill(c, SIGKILL); waitpid(c, &st, 0);
	signal(SIGCHLD, SIG_IGN);
	c = fork(); if (c == 0) _exit(0);
	T(waitpid(c, &st, 0));
	signal(SIGCHLD, SIG_DFL);

	printf("-- sigaltstack\n");
	stack_t ss = { 0 }, os;
	T(sigaltstack(0, &os)); printf("initially disabled: %d\n", !!(os.ss_flags & SS_DISABLE));
	altsize = 1 << 16; altbase = malloc(altsize);
	ss.ss_sp = altbase; ss.ss_size = 1024; T(sigaltstack(&ss, 0));
	ss.ss_size = altsize; ss.ss_flags = 0x1234; T(sigaltstack(&ss, 0));
	ss.ss_flags = 0; T(sigaltstack(&ss, 0));
	T(sigaltstack(0, &os)); printf("ss_size ok=%d ss_sp ok=%d flags=%d\n", os.ss_size == altsize, os.ss_sp == altbase, os.ss_flags);
	sa.sa_handler = on_altstack; sa.sa_flags = SA_ONSTACK; sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, 0);
	T(raise(SIGUSR2)); printf("handler on the alternate stack: %d, flags in handler SS_ONSTACK=%d\n", (int)on_alt, !!(alt_flags & SS_ONSTACK));
	sa.sa_flags = 0; sigaction(SIGUSR2, &sa, 0);
	T(raise(SIGUSR2)); printf("without SA_ONSTACK: on alt=%d\n", (int)on_alt);
	ss.ss_flags = SS_DISABLE; T(sigaltstack(&ss, 0));
	T(sigaltstack(0, &os)); printf("disabled: %d\n", !!(os.ss_flags & SS_DISABLE));

	printf("-- default actions\n");
	int sigs[] = { SIGTERM, SIGUSR1, SIGHUP, SIGINT, SIGKILL, SIGSEGV };
	for (int i = 0; i < 6; i++) {
		c = fork();
		if (c == 0) {
			struct rlimit { unsigned long a, b; } z = { 0, 0 };
			syscall(SYS_setrlimit, 4 /* RLIMIT_CORE */, &z);
			signal(sigs[i], SIG_DFL); raise(sigs[i]); _exit(0);
		}
		waitpid(c, &st, 0);
		printf("raise %s: ", sigabbrev_np(sigs[i])); status("child", st);
	}
	c = fork();
	if (c == 0) { signal(SIGTERM, SIG_IGN); raise(SIGTERM); execl("/bin/sh", "sh", "-c", "kill -TERM $$; echo ignored across exec", (char *)0); _exit(127); }
	waitpid(c, &st, 0); status("SIG_IGN inherited across exec", st);

	printf("-- ignored signals do not end a wait\n");
	signal(SIGUSR2, SIG_IGN);
	signal(SIGWINCH, SIG_DFL);
	sigset_t w; sigemptyset(&w); sigaddset(&w, SIGUSR1);
	sigprocmask(SIG_BLOCK, &w, 0);
	pid_t me = getpid();
	c = fork();
	if (c == 0) {
		usleep(50000); kill(me, SIGUSR2); usleep(50000); kill(me, SIGWINCH);
		usleep(50000); kill(me, SIGUSR1); _exit(0);
	}
	struct timespec lim = { 5, 0 };
	T(sigtimedwait(&w, 0, &lim));
	waitpid(c, &st, 0);
	sigprocmask(SIG_UNBLOCK, &w, 0);

	printf("-- core dumps in the wait status (WCOREDUMP, CLD_DUMPED)\n");
	signal(SIGCHLD, SIG_DFL);
	sigset_t cs; sigemptyset(&cs); sigaddset(&cs, SIGCHLD);
	sigprocmask(SIG_BLOCK, &cs, 0);
	int cfd = signalfd(-1, &cs, SFD_CLOEXEC);
	int dumping[] = { SIGSEGV, SIGABRT, SIGQUIT, SIGTERM };
	for (int lim = 0; lim < 3; lim++) {
		/* 0 and 1000 bytes write no core (an ELF core needs a page); unlimited does */
		struct rlimit rl = { lim == 0 ? 0 : lim == 1 ? 1000 : RLIM_INFINITY, RLIM_INFINITY };
		T(setrlimit(RLIMIT_CORE, &rl));
		for (int i = 0; i < 4; i++)
			for (int how = 0; how < 3; how++) {
				c = fork();
				if (c == 0) { kill(getpid(), dumping[i]); _exit(9); }
				siginfo_t si; memset(&si, 0, sizeof si);
				if (how == 0) waitpid(c, &st, 0);
				else if (how == 1) wait(&st);
				else waitid(P_PID, c, &si, WEXITED);
				struct signalfd_siginfo ss; memset(&ss, 0, sizeof ss);
				int got = read(cfd, &ss, sizeof ss) == sizeof ss;
				if (how < 2)
					printf("core limit %d, signal %d, %s: signaled %d core %d; signalfd code %d status %d (%d)\n", lim, dumping[i],
					       how ? "wait" : "waitpid", WIFSIGNALED(st), !!WCOREDUMP(st), ss.ssi_code, ss.ssi_status, got);
				else
					printf("core limit %d, signal %d, waitid: code %d status %d; signalfd code %d (%d)\n", lim, dumping[i],
					       si.si_code, si.si_status, ss.ssi_code, got);
			}
	}
	close(cfd);
	return 0;
}
