/* What every transcript program shares: T(expr) prints an expression and
 * its result or errno name; status() a wait status; has_cap() whether a
 * capability is effective (natively root may lack some in a container; the
 * guest has none), so that results depending on one can be printed as
 * "as the capability predicts". */
#ifndef TRANSCRIPT_H
#define TRANSCRIPT_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define T(expr) report(#expr, (long)(expr))

static void report(const char *what, long r)
{
	if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
	else printf("%s = %ld\n", what, r);
	errno = 0;
}

static __attribute__((unused)) void status(const char *what, int st)
{
	if (WIFEXITED(st)) printf("%s: exited %d\n", what, WEXITSTATUS(st));
	else if (WIFSIGNALED(st)) printf("%s: killed by %s\n", what, sigabbrev_np(WTERMSIG(st)));
	else printf("%s: status %#x\n", what, st);
}

static __attribute__((unused)) int has_cap(int n)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d)) return 0;
	return (d[n / 32].effective >> (n % 32)) & 1;
}
#endif
