/*
 * The fd holder: a process of the Sentry's that only holds O_PATH fds, at
 * numbers the Sentry chooses, so that a guest call can name a sandbox file
 * as /proc/<holder>/fd/<n> -- a magic link no guest thread can retarget.
 *
 * A call that must run in the guest's own context (a unix connect or
 * datagram send, which the kernel looks up by path; chdir) cannot name the
 * file through the guest's own fd table: another guest thread could dup2 a
 * host object onto the number between the Sentry's check and the kernel's
 * use.  The holder's table is the Sentry's alone: no guest call can name the
 * holder (it is in no sandbox's pid space), and the holder does nothing but
 * take an fd and a number from the Sentry over a socket pair.  The guest's
 * thread may follow the link because the holder is as it is: the same host
 * ids, in the same user namespace, no capabilities, dumpable (the kernel's
 * ptrace read check on /proc/<pid>/fd).  An O_PATH fd cannot be handed
 * straight into the guest (the seccomp ADDFD refuses it), hence a process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tracer.h"

/* One request: its fd, -1 if none came, -2 if it was malformed. */
static int receive(int sock, int32_t *req)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = req, .iov_len = sizeof *req };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	struct cmsghdr *c;
	int fd = -1;
	ssize_t n;

	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		_exit(n == 0 ? 0 : 1);
	c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof fd);
	if (n != sizeof *req) {
		if (fd >= 0)
			close(fd);
		return -2;
	}
	return fd;
}

/* Never returns: serves the Sentry on sock, set up and confined by
 * platform/fdholder.py.  A request is an int32: a number n >= 0 with one fd
 * attached (held at n, answered with one byte: 1 if it is), or -1 - n (n is
 * closed, unanswered).  The end of the socket (the Sentry gone) ends it. */
void sn_holder_serve(int sock)
{
	int32_t req;

	for (;;) {
		int fd = receive(sock, &req);

		if (fd == -2 || req == sock || req == -1 - sock) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (req < 0) {
			if (fd >= 0)
				close(fd);
			close(-1 - req);
			continue;
		}
		{
			char ok = fd >= 0 && (fd == req || syscall(SYS_dup3, fd, req, 0) == req);
			if (fd >= 0 && fd != req)
				close(fd);
			send(sock, &ok, 1, 0);
		}
	}
}
