/*
 * The datagram fast path: sendto and sendmsg that need nothing of Python.
 *
 * Both trap whenever they name a destination (BPF cannot read it) and
 * sendmsg always (its header is in memory).  syscalls/socket.py checks the
 * name -- a unix path is pinned, an abstract name namespaced, a datagram to
 * the outside relayed or refused (sentry/net/connect.py datagram_out) --
 * and gives the kernel a copy in the staging slot.  Here, with no Python:
 * a name of the internet families for a destination of the sandbox's own
 * (loopback, "this host", eth0's subnet; any, where the sandbox has no
 * outbound policy: --network=host or none), or no name at all, and no
 * control data (SCM_RIGHTS and SCM_CREDENTIALS are Python's), and no
 * MSG_FASTOPEN (which connects as it sends: sentry/net/connect.py).  The checked
 * name -- and for sendmsg the header, name and control dropped as checked
 * -- is staged and the call rewritten to it, so that a racing thread that
 * changes either after the check changes nothing the kernel reads.  The
 * data (the iovec and its buffers) stays the guest's own.
 * Anything else returns 0 and goes to Python.
 *
 * connect to such a name (an internet one of the sandbox's own) is
 * answered here too, in one of two ways, neither reaching Python:
 *  - on an internet socket of the sandbox's namespace, in a process whose
 *    fd table is its alone, it runs as the guest made it, with no stop at
 *    its exit.  The fd keeps naming that socket until the kernel runs the
 *    call (no other task can change the table), and the name, which
 *    another process sharing the memory could still change, can then
 *    reach nothing but the sandbox's network: an address outside gets the
 *    gateway's "unreachable" (where Python would have connected it
 *    outward: only the racing guest loses), a unix name the family's
 *    EAFNOSUPPORT or EINVAL.  The socket is told by the Sentry's own copy
 *    of it (pidfd_getfd: SO_DOMAIN, SO_NETNS_COOKIE).
 *  - else, where the sandbox has no outbound policy (--network=none or
 *    host), as syscalls/socket.py rewrites it: the checked name staged,
 *    the guest's rsi given back at the syscall-exit stop by C (identity.c
 *    sn_restore_args_at_exit).  With a policy (--network=sandbox) an
 *    outbound host socket must never meet the kernel's connect
 *    (sentry/net/connect.py): that is Python's (syscalls/slots.py).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "tracer.h"

#define NAME_MAX_ 128              /* what read_sockaddr takes; more: EINVAL, Python's */
#define MSGHDR 56
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static int open_policy = 1;        /* no outbound policy: every destination is fine */
static uint32_t net_addr, net_mask;  /* eth0's subnet, host order (0/0: none) */
static uint64_t sandbox_netns;     /* the sandbox's namespace's SO_NETNS_COOKIE (0: unknown) */

void sn_net_policy(int open, uint32_t addr, uint32_t mask, uint64_t netns_cookie)
{
	open_policy = open;
	net_addr = addr & mask;
	net_mask = mask;
	sandbox_netns = netns_cookie;
}

/* connect.py inside(): loopback, unspecified, eth0's subnet (IPv4, or
 * mapped into IPv6) */
static int inside_v4(uint32_t a)
{
	return (a >> 24) == 127 || a == 0 || (net_mask && (a & net_mask) == net_addr);
}

/* A name of len bytes: 1 if it may be passed as it is, 0 if Python's. */
static int name_ok(const unsigned char *name, size_t len)
{
	uint16_t family;
	if (len < sizeof family) return 0;
	memcpy(&family, name, sizeof family);
	if (family == AF_INET) {
		if (len < sizeof(struct sockaddr_in)) return 0;
		if (open_policy) return 1;
		struct sockaddr_in sin;
		memcpy(&sin, name, sizeof sin);
		return inside_v4(ntohl(sin.sin_addr.s_addr));
	}
	if (family == AF_INET6) {
		if (len < 24) return 0;
		if (open_policy) return 1;
		struct in6_addr a;
		memcpy(&a, name + 8, sizeof a);
		if (IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_UNSPECIFIED(&a)) return 1;
		uint32_t v4;
		memcpy(&v4, a.s6_addr + 12, 4);
		return IN6_IS_ADDR_V4MAPPED(&a) && inside_v4(ntohl(v4));
	}
	return 0;
}

static int restart(int tid, sn_regs *r)
{
	if (ptrace(PTRACE_SETREGS, tid, 0, r)) return 0;
	ptrace(PTRACE_CONT, tid, 0, 0);
	return 1;
}

static int fast_sendto(int tid, sn_regs *r)
{
	uint32_t len = (uint32_t)r->r9;
	unsigned char name[NAME_MAX_];
	if ((uint32_t)r->r10 & MSG_FASTOPEN) return 0;
	if (!r->r8 || len < 2 || len > NAME_MAX_) return 0;
	if (sn_read_mem(tid, r->r8, name, len) != (long)len || !name_ok(name, len)) return 0;
	uint64_t slot = sn_slot_of(tid);
	if (!slot || sn_stage(tid, slot, name, len)) return 0;
	r->r8 = slot;
	return restart(tid, r);
}

static int fast_sendmsg(int tid, sn_regs *r)
{
	unsigned char hdr[MSGHDR], name[NAME_MAX_];
	uint64_t name_ptr, controllen;
	uint32_t namelen;
	if ((uint32_t)r->rdx & MSG_FASTOPEN) return 0;
	if (sn_read_mem(tid, r->rsi, hdr, sizeof hdr) != (long)sizeof hdr) return 0;
	memcpy(&name_ptr, hdr, 8);
	memcpy(&namelen, hdr + 8, 4);
	memcpy(&controllen, hdr + 40, 8);
	if (controllen) return 0;
	uint64_t zero = 0;
	memcpy(hdr + 32, &zero, 8);               /* no control data, as checked */
	uint64_t slot = sn_slot_of(tid);
	if (!slot) return 0;
	size_t staged = MSGHDR;
	unsigned char blob[MSGHDR + NAME_MAX_];
	if (name_ptr && namelen) {
		if (namelen < 2 || namelen > NAME_MAX_) return 0;
		if (sn_read_mem(tid, name_ptr, name, namelen) != (long)namelen || !name_ok(name, namelen)) return 0;
		uint64_t at = slot + MSGHDR;
		memcpy(hdr, &at, 8);
		memcpy(blob + MSGHDR, name, namelen);
		staged += namelen;
	} else {
		memcpy(hdr, &zero, 8);                /* no name: none the kernel could read later */
		memset(hdr + 8, 0, 4);
	}
	memcpy(blob, hdr, MSGHDR);
	if (sn_stage(tid, slot, blob, staged)) return 0;
	r->rsi = slot;
	return restart(tid, r);
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* Whether the guest's fd names an internet socket of the sandbox's network
 * namespace, asked of the Sentry's own copy of it; any doubt: no. */
static int sandbox_inet_socket(int tid, int fd)
{
	if (!sandbox_netns || fd < 0 || fd >= SN_HIDDEN_FD_BASE) return 0;
	int pidfd = (int)syscall(SYS_pidfd_open, tid, 0);   /* a leader's: one thread */
	if (pidfd < 0) return 0;
	int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	if (copy < 0) return 0;
	uint64_t cookie = 0;
	int domain = 0;
	socklen_t len = sizeof cookie, dlen = sizeof domain;
	int ok = !getsockopt(copy, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len)
		&& len == sizeof cookie && cookie == sandbox_netns
		&& !getsockopt(copy, SOL_SOCKET, SO_DOMAIN, &domain, &dlen)
		&& (domain == AF_INET || domain == AF_INET6);
	close(copy);
	return ok;
}

static int fast_connect(int tid, sn_regs *r)
{
	uint32_t len = (uint32_t)r->rdx;
	unsigned char name[NAME_MAX_];
	if (len < 2 || len > NAME_MAX_) return 0;
	if (sn_read_mem(tid, r->rsi, name, len) != (long)len || !name_ok(name, len)) return 0;
	if (sn_ident_files_alone(tid) && sandbox_inet_socket(tid, (int)r->rdi)) {
		ptrace(PTRACE_CONT, tid, 0, 0);
		return 1;
	}
	if (!open_policy) return 0;
	uint64_t slot = sn_slot_of(tid);
	if (!slot || sn_stage(tid, slot, name, len)) return 0;
	uint64_t guest[6] = { 0, r->rsi };
	if (!sn_restore_args_at_exit(tid, 1u << 1, guest)) return 0;
	r->rsi = slot;
	if (ptrace(PTRACE_SETREGS, tid, 0, r)) return 0;     /* gone: its row goes too */
	ptrace(PTRACE_SYSCALL, tid, 0, 0);
	return 1;
}

/* Returns 1 when the seccomp stop was answered here. */
int sn_fast_net(int tid, sn_regs *r)
{
	if (!sn_fast_enabled()) return 0;
	if (r->orig_rax == SYS_sendto) return fast_sendto(tid, r);
	if (r->orig_rax == SYS_sendmsg) return fast_sendmsg(tid, r);
	if (r->orig_rax == SYS_connect) return fast_connect(tid, r);
	return 0;
}
