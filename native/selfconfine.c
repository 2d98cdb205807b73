/*
 * The Sentry's own seccomp filter answers a forbidden call with
 * SECCOMP_RET_TRAP: the kernel skips the call and raises SIGSYS.  This
 * handler says which call it was, on stderr, in one line (a process the
 * kernel kills outright cannot say anything), then ends the process with a
 * code of its own.  Only async-signal-safe work: write(2) and _exit(2), on
 * text prepared before the filter was loaded.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "tracer.h"

static char names[SN_MAX_SYSCALL][32];   /* filled before the filter is loaded */
static char who[32] = "the Sentry";
static int exit_code = 1;
static int also_kill;          /* the mount helper takes the Sentry down with it */

void sn_self_name(int nr, const char *name)
{
	if (nr >= 0 && nr < SN_MAX_SYSCALL) {
		strncpy(names[nr], name, sizeof names[nr] - 1);
		names[nr][sizeof names[nr] - 1] = 0;
	}
}

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, long v)
{
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	do {
		tmp[n++] = '0' + u % 10;
		u /= 10;
	} while (u);
	if (v < 0 && at < cap)
		buf[at++] = '-';
	while (n && at < cap)
		buf[at++] = tmp[--n];
	return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char line[256];
	size_t n = 0, cap = sizeof line - 1;
	int nr = si->si_syscall;
	(void)sig;
	(void)ctx;
	n = put(line, n, cap, "sentry: internal error: ");
	n = put(line, n, cap, who);
	n = put(line, n, cap, " made syscall ");
	n = put_num(line, n, cap, nr);
	n = put(line, n, cap, " (");
	n = put(line, n, cap, nr >= 0 && nr < SN_MAX_SYSCALL && names[nr][0] ? names[nr] : "unknown");
	n = put(line, n, cap, "), which its own filter forbids; stopping\n");
	(void)!write(2, line, n);
	if (also_kill > 0)
		kill(also_kill, SIGKILL);
	/* exit_group: every thread, and (PTRACE_O_EXITKILL) every guest with it */
	syscall(SYS_exit_group, exit_code);
	_exit(exit_code);
}

int sn_self_trap(const char *name, int code, int kill_pid)
{
	struct sigaction sa;
	also_kill = kill_pid;
	strncpy(who, name, sizeof who - 1);
	exit_code = code;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL))
		return -1;
	/* a SIGSYS blocked at the trap would kill without a word */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	return sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* The tests' probe: a call no filter allows (execveat), harmless if let
 * through (EBADF). */
long sn_self_probe(void)
{
	return syscall(SYS_execveat, -1, "", NULL, NULL, 0);
}
