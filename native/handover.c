/*
 * Fd handover: the Sentry puts a file it opened itself into a guest's fd
 * table, atomically, at a number of its choosing or at the lowest free one.
 *
 * The guest's first process installs, under the Sentry's main filter, a
 * second seccomp filter with a user-notification listener, which it hands to
 * the Sentry and closes.  That filter answers USER_NOTIF for one call only:
 * getpid made from an instruction pointer no user code can have (a
 * non-canonical address).  Only a tracer can give a thread such registers, at
 * a seccomp stop: the kernel runs the filters again on the changed call and
 * the thread waits for the listener.  The Sentry then answers with
 * SECCOMP_IOCTL_NOTIF_ADDFD | SECCOMP_ADDFD_FLAG_SEND: the kernel installs the
 * file in the waiting thread's table and returns its number as the call's
 * result in one step, so no other guest thread can swap, close or read the
 * fd before the Sentry's choice takes effect (no number in the guest's table
 * names anything in between, unlike open-then-dup3).
 *
 * USER_NOTIF outranks the main filter's TRACE, so the marker never stops at
 * the Sentry; a guest's own filter that denies getpid (ERRNO, KILL) outranks
 * it in turn, and the Sentry sees the thread stop without a notification.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "tracer.h"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

/* getpid from here is the marker: non-canonical, so no thread's own call
 * was ever made from it (the vsyscall page, whose emulated calls the kernel
 * also filters, is canonical) */
#define SN_HANDOVER_IP 0x8000000000000000ULL
#define IP_LO ((uint32_t)(SN_HANDOVER_IP & 0xffffffffu))
#define IP_HI ((uint32_t)(SN_HANDOVER_IP >> 32))

uint64_t sn_handover_ip(void)
{
	return SN_HANDOVER_IP;
}

int sn_handover_filter(void)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		/* another architecture's calls: the main filter kills them */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 6),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpid, 0, 4),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IP_LO, 0, 2),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IP_HI, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	};
	struct sock_fprog prog = { .len = sizeof code / sizeof code[0], .filter = code };
	long fd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	/* killable only: a signal never sends the thread back past its
	 * marker while the Sentry is about to answer it */
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		     SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
	return fd < 0 ? -errno : (int)fd;
}

/* Whether tid has an event its tracer has not collected: it stopped (its
 * marker never reached the listener) or it is gone.  WNOWAIT: the tracer
 * loop collects it as usual. */
static int stopped_or_gone(int tid)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	if (waitid(P_PID, tid, &si, WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL) < 0)
		return 1;
	return si.si_pid != 0;
}

static void refuse(int listener, uint64_t id, int err)
{
	struct seccomp_notif_resp resp = { .id = id, .error = -err };

	ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

long sn_handover_serve(int listener, int tid, int srcfd, int newfd, unsigned newfd_flags)
{
	for (;;) {
		struct pollfd p = { .fd = listener, .events = POLLIN };
		struct seccomp_notif n;
		struct seccomp_notif_addfd add;
		long fd;
		int r = poll(&p, 1, 20);

		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0) {
			if (stopped_or_gone(tid))
				return -ESRCH;
			continue;
		}
		if (p.revents & (POLLHUP | POLLERR))
			return -ESRCH;     /* no task of the filter is left */
		memset(&n, 0, sizeof n);
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) {
			if (errno == EINTR || errno == ENOENT)
				continue;  /* its task died after notifying */
			return -errno;
		}
		if ((int)n.pid != tid || n.data.nr != SYS_getpid ||
		    n.data.instruction_pointer != SN_HANDOVER_IP) {
			/* never ours to answer with a file: not possible under the
			 * filter above, refused all the same */
			refuse(listener, n.id, ENOSYS);
			continue;
		}
		memset(&add, 0, sizeof add);
		add.id = n.id;
		add.flags = SECCOMP_ADDFD_FLAG_SEND | (newfd >= 0 ? SECCOMP_ADDFD_FLAG_SETFD : 0);
		add.srcfd = srcfd;
		add.newfd = newfd >= 0 ? newfd : 0;
		add.newfd_flags = newfd_flags;
		fd = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
		if (fd < 0) {
			long err = errno;
			/* not installed (EMFILE, EBADF past its RLIMIT_NOFILE):
			 * the marker fails with that errno */
			if (err != ENOENT)
				refuse(listener, n.id, err);
			return -err;
		}
		return fd;
	}
}
