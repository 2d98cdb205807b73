/* Conformance: unix sockets — socketpair stream/dgram/seqpacket, path and
 * abstract names, SCM_RIGHTS, getsockname/getpeername, shutdown, MSG_PEEK,
 * connected datagrams.  Deterministic transcript.
 * Usage: conf_unix SCRATCH   (SCRATCH: an empty directory, absolute) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/vm_sockets.h>
#include "transcript.h"


static const char *scratch;
static char abs_name[64]; /* this run's abstract name, without the leading NUL */

static socklen_t path_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	strcpy(a->sun_path, path);
	return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static socklen_t abstract_addr(struct sockaddr_un *a, const char *suffix)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "%s%s", abs_name, suffix);
	return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

/* a socket address as the transcript shows it: the scratch prefix and this
 * run's abstract name are replaced by fixed words */
static void show_addr(const char *what, struct sockaddr_un *a, socklen_t len)
{
	size_t plen = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
	printf("%s: family=%d len=%s", what, a->sun_family, plen == 0 ? "unnamed" : "named");
	if (plen == 0) { printf("\n"); return; }
	if (a->sun_path[0] == 0) {
		size_t an = strlen(abs_name);
		if (plen - 1 >= an && !memcmp(a->sun_path + 1, abs_name, an))
			printf(" abstract=@NAME%.*s\n", (int)(plen - 1 - an), a->sun_path + 1 + an);
		else if (plen == 6)
			printf(" abstract autobind, 5 chars hex: %d\n", (int)strspn(a->sun_path + 1, "0123456789abcdef") == 5);
		else
			printf(" abstract other (%zu bytes)\n", plen - 1);
		return;
	}
	size_t sl = strlen(scratch);
	if (!strncmp(a->sun_path, scratch, sl) && a->sun_path[sl] == '/')
		printf(" path=SCRATCH%s plen=%zu\n", a->sun_path + sl, plen - sl);
	else
		printf(" path=%s plen=%zu\n", a->sun_path, plen);
}

static void names(const char *what, int fd)
{
	struct sockaddr_un a; socklen_t len = sizeof a;
	char w[128];
	memset(&a, 0x55, sizeof a);
	snprintf(w, sizeof w, "%s getsockname", what);
	if (getsockname(fd, (void *)&a, &len)) printf("%s: %s\n", w, strerrorname_np(errno)); else show_addr(w, &a, len);
	len = sizeof a; memset(&a, 0x55, sizeof a);
	snprintf(w, sizeof w, "%s getpeername", what);
	if (getpeername(fd, (void *)&a, &len)) printf("%s: %s\n", w, strerrorname_np(errno)); else show_addr(w, &a, len);
}

static int send_fd(int sock, int fd)
{
	char c = 'F';
	struct iovec iov = { &c, 1 };
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	return sendmsg(sock, &m, 0);
}

static int recv_fd(int sock)
{
	char c;
	struct iovec iov = { &c, 1 };
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b };
	if (recvmsg(sock, &m, 0) < 0) return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	if (!cm || cm->cmsg_type != SCM_RIGHTS) { errno = ENOMSG; return -1; }
	int fd; memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	return fd;
}

int main(int argc, char **argv)
{
	int sv[2], s, c, a, st;
	char buf[256];
	struct sockaddr_un sa, from;
	socklen_t len, flen;
	if (argc < 2 || chdir(argv[1])) return 2;
	scratch = argv[1];
	setvbuf(stdout, 0, _IONBF, 0);
	signal(SIGPIPE, SIG_IGN);
	alarm(20);
	snprintf(abs_name, sizeof abs_name, "conf_unix-%d", (int)getpid());

	printf("-- socketpair\n");
	T(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	T(write(sv[0], "hello", 5)); T(write(sv[0], "world", 5)); T(read(sv[1], buf, sizeof buf));
	T(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
	int v; len = sizeof v;
	T(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &len)); printf("SO_TYPE=%d\n", v);
	T(getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &v, &len)); printf("SO_DOMAIN=%d\n", v);
	struct ucred cr; len = sizeof cr;
	T(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &len));
	printf("peercred pid==getpid: %d uid=%d gid=%d\n", cr.pid == getpid(), (int)cr.uid, (int)cr.gid);
	names("socketpair", sv[0]);
	T(send(sv[0], "peekme", 6, 0));
	memset(buf, 0, sizeof buf);
	T(recv(sv[1], buf, 4, MSG_PEEK)); printf("peeked %s\n", buf);
	T(recv(sv[1], buf, sizeof buf, 0)); printf("read %.6s\n", buf);
	T(shutdown(sv[0], SHUT_WR)); T(read(sv[1], buf, sizeof buf));
	T(write(sv[0], "x", 1)); T(write(sv[1], "back", 4)); T(read(sv[0], buf, sizeof buf));
	T(shutdown(sv[1], SHUT_RDWR)); T(write(sv[1], "x", 1)); T(shutdown(sv[1], 7));
	close(sv[0]); close(sv[1]);
	T(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
	T(!!(fcntl(sv[0], F_GETFL) & O_NONBLOCK)); T(fcntl(sv[1], F_GETFD));
	T(read(sv[0], buf, 1));
	close(sv[0]); close(sv[1]);
	T(socketpair(AF_INET, SOCK_STREAM, 0, sv)); T(socketpair(AF_UNIX, SOCK_RAW, 0, sv));
	/* sendmmsg: every message, each msg_len, the count */
	{
		int mp[2];
		T(socketpair(AF_UNIX, SOCK_DGRAM, 0, mp));
		char a[] = "one", b[] = "three", c[] = "fifth";
		struct iovec iv[3] = { { a, 3 }, { b, 5 }, { c, 5 } };
		struct mmsghdr mm[3];
		memset(mm, 0, sizeof mm);
		for (int i = 0; i < 3; i++) { mm[i].msg_hdr.msg_iov = &iv[i]; mm[i].msg_hdr.msg_iovlen = 1; }
		T(sendmmsg(mp[0], mm, 3, 0));
		printf("msg_len %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
		char rb[16];
		for (int i = 0; i < 3; i++) T(recv(mp[1], rb, sizeof rb, MSG_DONTWAIT));
		T(recv(mp[1], rb, sizeof rb, MSG_DONTWAIT));
		mm[1].msg_hdr.msg_iov = (struct iovec *)8;          /* a bad one: the count so far */
		T(sendmmsg(mp[0], mm, 3, 0));
		T(sendmmsg(mp[0], mm + 1, 2, 0));
		T(sendmmsg(mp[0], mm, 0, 0));
		close(mp[0]); close(mp[1]);
	}
	/* a unix path given to a socket of another family, or to no socket */
	{
		struct sockaddr_un dot = { .sun_family = AF_UNIX, .sun_path = "." };
		int fams[][2] = { { AF_INET, SOCK_STREAM }, { AF_INET, SOCK_DGRAM }, { AF_INET6, SOCK_STREAM },
				  { AF_NETLINK, SOCK_RAW } };
		socklen_t lens[] = { 8, 20, sizeof dot };
		for (unsigned i = 0; i < 4; i++) {
			int s = socket(fams[i][0], fams[i][1], 0);
			for (unsigned j = 0; j < 3; j++) {
				printf("family %d, length %u: ", fams[i][0], lens[j]);
				T(bind(s, (struct sockaddr *)&dot, lens[j]));
				printf("  ");
				T(connect(s, (struct sockaddr *)&dot, lens[j]));
			}
			close(s);
		}
		int f = open(".", O_RDONLY);
		T(bind(f, (struct sockaddr *)&dot, sizeof dot)); T(connect(f, (struct sockaddr *)&dot, sizeof dot));
		close(f);
		T(bind(77, (struct sockaddr *)&dot, sizeof dot));
	}
	/* the argument errors Linux checks before any capability */
	int bad[][3] = { { AF_INET, SOCK_RAW, 0 }, { AF_INET6, SOCK_RAW, 0 }, { AF_INET, SOCK_RAW, 300 },
			 { AF_INET, 15, 0 }, { AF_INET, SOCK_STREAM | 0x100, 0 }, { AF_INET, SOCK_RAW | 0x100, 1 },
			 { 99, SOCK_STREAM, 0 }, { -1, SOCK_STREAM, 0 }, { 99, 15, 0 }, { AF_INET6, SOCK_PACKET, 0 },
			 { AF_INET, SOCK_STREAM, 17 }, { AF_NETLINK, 15, 0 }, { AF_NETLINK, SOCK_RAW, 99 },
			 { AF_NETLINK, SOCK_RAW, -1 }, { AF_PACKET, 15, 0 }, { AF_VSOCK, 15, 0 } };
	for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
		printf("family %d type %#x protocol %d: ", bad[i][0], bad[i][1], bad[i][2]);
		T(socket(bad[i][0], bad[i][1], bad[i][2]));
		printf("  socketpair: ");
		T(socketpair(bad[i][0], bad[i][1], bad[i][2], sv));
	}

	T(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	T(send(sv[0], "one", 3, 0)); T(send(sv[0], "three", 5, 0));
	T(recv(sv[1], buf, 2, 0)); T(recv(sv[1], buf, sizeof buf, MSG_PEEK | MSG_TRUNC));
	T(recv(sv[1], buf, 2, MSG_TRUNC)); T(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
	T(send(sv[0], "", 0, 0)); T(recv(sv[1], buf, sizeof buf, 0));
	close(sv[1]); T(send(sv[0], "x", 1, 0)); close(sv[0]);

	T(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	T(send(sv[0], "rec1", 4, 0)); T(send(sv[0], "record2", 7, MSG_EOR));
	struct iovec iov = { buf, 3 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	T(recvmsg(sv[1], &mh, 0)); printf("msg_flags MSG_TRUNC=%d\n", !!(mh.msg_flags & MSG_TRUNC));
	T(recv(sv[1], buf, sizeof buf, 0));
	close(sv[0]); T(recv(sv[1], buf, sizeof buf, 0)); close(sv[1]);

	printf("-- stream socket on a path\n");
	s = socket(AF_UNIX, SOCK_STREAM, 0); T(s >= 0);
	names("fresh", s);
	len = path_addr(&sa, "srv.sock");
	T(bind(s, (void *)&sa, len)); T(bind(s, (void *)&sa, len));
	struct stat sb; T(stat("srv.sock", &sb)); printf("S_ISSOCK=%d\n", S_ISSOCK(sb.st_mode));
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	T(connect(c, (void *)&sa, len));
	T(listen(s, 4));
	int s2 = socket(AF_UNIX, SOCK_STREAM, 0); T(bind(s2, (void *)&sa, len)); close(s2);
	names("listener", s);
	T(connect(c, (void *)&sa, len)); T(connect(c, (void *)&sa, len));
	flen = sizeof from; memset(&from, 0x55, sizeof from);
	a = accept(s, (void *)&from, &flen); T(a >= 0); show_addr("accept peer", &from, flen);
	names("client", c); names("accepted", a);
	T(write(c, "ping", 4)); T(read(a, buf, sizeof buf));
	T(send(a, "pong", 4, 0)); memset(buf, 0, sizeof buf); T(recv(c, buf, sizeof buf, MSG_PEEK)); T(recv(c, buf, sizeof buf, 0));
	len = sizeof cr; T(getsockopt(a, SOL_SOCKET, SO_PEERCRED, &cr, &len));
	printf("accepted peercred pid==getpid: %d uid=%d\n", cr.pid == getpid(), (int)cr.uid);
	T(shutdown(c, SHUT_WR)); T(read(a, buf, sizeof buf)); close(a); T(read(c, buf, sizeof buf));
	T(write(c, "x", 1)); T(send(c, "x", 1, MSG_NOSIGNAL));
	close(c);
	/* absolute path, and a client bound to its own path */
	char absp[200]; snprintf(absp, sizeof absp, "%s/abs.sock", scratch);
	s2 = socket(AF_UNIX, SOCK_STREAM, 0); len = path_addr(&sa, absp);
	T(bind(s2, (void *)&sa, len)); T(listen(s2, 1));
	names("absolute listener", s2);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un ca; socklen_t clen = path_addr(&ca, "cli.sock");
	T(bind(c, (void *)&ca, clen));
	T(connect(c, (void *)&sa, len));
	flen = sizeof from; a = accept(s2, (void *)&from, &flen); T(a >= 0); show_addr("accept peer", &from, flen);
	names("bound client", c); names("accepted", a);
	close(a); close(c); close(s2);
	c = socket(AF_UNIX, SOCK_STREAM, 0); len = path_addr(&sa, "srv.sock"); T(connect(c, (void *)&sa, len));
	a = accept(s, 0, 0); T(a >= 0); close(a); close(c);
	T(fcntl(s, F_SETFL, O_NONBLOCK)); T(accept(s, 0, 0));
	T(accept4(s, 0, 0, 0x7));
	close(s);
	c = socket(AF_UNIX, SOCK_STREAM, 0); len = path_addr(&sa, "srv.sock");
	T(connect(c, (void *)&sa, len));
	T(unlink("srv.sock")); T(connect(c, (void *)&sa, len));
	len = path_addr(&sa, "missing/x.sock"); T(connect(c, (void *)&sa, len)); T(bind(c, (void *)&sa, len));
	close(open("plainfile", O_CREAT | O_WRONLY, 0644));
	len = path_addr(&sa, "plainfile"); T(connect(c, (void *)&sa, len)); T(bind(c, (void *)&sa, len));
	s = socket(AF_UNIX, SOCK_STREAM, 0); len = path_addr(&sa, "nolisten.sock"); T(bind(s, (void *)&sa, len));
	T(connect(c, (void *)&sa, len)); T(accept(s, 0, 0)); close(s);
	T(bind(c, (void *)&sa, 1));
	close(c);

	printf("-- SCM_RIGHTS\n");
	int f = open("passed", O_CREAT | O_RDWR | O_TRUNC, 0644); write(f, "contents of passed", 18);
	T(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	T(send_fd(sv[0], f));
	int g = recv_fd(sv[1]); T(g >= 0); T(g != f);
	struct stat s1, s2st; fstat(f, &s1); fstat(g, &s2st);
	printf("same file: %d, shared offset: %ld\n", s1.st_ino == s2st.st_ino && s1.st_dev == s2st.st_dev, (long)lseek(g, 0, SEEK_CUR));
	close(g);
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		int h = recv_fd(sv[1]);
		if (h < 0) _exit(10);
		char b[64] = { 0 };
		if (pread(h, b, sizeof b, 0) != 18 || strcmp(b, "contents of passed")) _exit(11);
		write(h, "+child", 6);
		/* pass back one of the child's own files */
		int p = open("childfile", O_CREAT | O_RDWR | O_TRUNC, 0644); write(p, "child-made", 10);
		if (send_fd(sv[1], p) < 0) _exit(12);
		_exit(0);
	}
	lseek(f, 0, SEEK_SET); T(send_fd(sv[0], f)); close(f);
	g = recv_fd(sv[0]); T(g >= 0);
	memset(buf, 0, sizeof buf); T(pread(g, buf, sizeof buf, 0)); printf("child's file: %s\n", buf);
	waitpid(pid, &st, 0); status("fd receiver", st);
	f = open("passed", O_RDONLY); memset(buf, 0, sizeof buf); T(read(f, buf, sizeof buf)); printf("passed now: %s\n", buf);
	close(f); close(g);
	T(send_fd(sv[0], 999)); /* not an open fd */
	printf("fd 1000:\n");
	T(send_fd(sv[0], 1000)); /* nor this one */
	close(sv[0]); close(sv[1]);

	printf("-- abstract names\n");
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	len = abstract_addr(&sa, "-stream");
	T(bind(s, (void *)&sa, len)); T(listen(s, 2));
	names("abstract listener", s);
	s2 = socket(AF_UNIX, SOCK_STREAM, 0); T(bind(s2, (void *)&sa, len)); close(s2);
	pid = fork();
	if (pid == 0) {
		int cc = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(cc, (void *)&sa, len)) _exit(20);
		struct sockaddr_un pa; socklen_t pl = sizeof pa;
		int same = !getpeername(cc, (void *)&pa, &pl) && pl == len && !memcmp(&pa, &sa, len);
		dprintf(cc, "child's getpeername is the name bound: %d", same);
		_exit(0);
	}
	flen = sizeof from; a = accept(s, (void *)&from, &flen); T(a >= 0); show_addr("accept peer", &from, flen);
	memset(buf, 0, sizeof buf); T(read(a, buf, sizeof buf)); printf("got: %s\n", buf);
	waitpid(pid, &st, 0); status("abstract client", st);
	close(a); close(s);
	c = socket(AF_UNIX, SOCK_STREAM, 0); len = abstract_addr(&sa, "-nobody"); T(connect(c, (void *)&sa, len)); close(c);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	T(bind(c, (void *)&sa, offsetof(struct sockaddr_un, sun_path)));
	names("autobound", c); close(c);

	printf("-- datagrams\n");
	s = socket(AF_UNIX, SOCK_DGRAM, 0); len = path_addr(&sa, "dgram.sock"); T(bind(s, (void *)&sa, len));
	T(listen(s, 1));
	c = socket(AF_UNIX, SOCK_DGRAM, 0);
	T(send(c, "noaddr", 6, 0));
	T(connect(c, (void *)&sa, len));
	names("connected dgram client", c);
	T(sendto(c, "connected", 9, 0, 0, 0)); T(send(c, "again", 5, 0));
	flen = sizeof from; memset(buf, 0, sizeof buf);
	T(recvfrom(s, buf, sizeof buf, 0, (void *)&from, &flen)); printf("got %s\n", buf); show_addr("recvfrom", &from, flen);
	T(recv(s, buf, sizeof buf, MSG_DONTWAIT)); T(recv(s, buf, sizeof buf, MSG_DONTWAIT));
	/* sendto a path without connecting (sentry: refused, see README) */
	int ds = socket(AF_UNIX, SOCK_DGRAM, 0); socklen_t dlen = path_addr(&ca, "dgram2.sock"); T(bind(ds, (void *)&ca, dlen));
	int dc = socket(AF_UNIX, SOCK_DGRAM, 0);
	T(sendto(dc, "unconnected", 11, 0, (void *)&ca, dlen));
	T(recv(ds, buf, sizeof buf, MSG_DONTWAIT));
	close(ds); close(dc);
	clen = path_addr(&ca, "dcli.sock"); int c2 = socket(AF_UNIX, SOCK_DGRAM, 0);
	T(bind(c2, (void *)&ca, clen)); T(connect(c2, (void *)&sa, len));
	T(send(c2, "named", 5, 0));
	flen = sizeof from; memset(buf, 0, sizeof buf);
	T(recvfrom(s, buf, sizeof buf, 0, (void *)&from, &flen)); printf("got %s\n", buf); show_addr("recvfrom", &from, flen);
	T(connect(s, (void *)&ca, clen)); T(send(s, "reply", 5, 0));
	flen = sizeof from; memset(buf, 0, sizeof buf);
	T(recvfrom(c2, buf, sizeof buf, 0, (void *)&from, &flen)); printf("got %s\n", buf); show_addr("recvfrom", &from, flen);
	T(send(c, "blocked", 7, MSG_DONTWAIT));
	struct sockaddr_un un = { .sun_family = AF_UNSPEC };
	T(connect(c, (void *)&un, sizeof un.sun_family)); T(send(c, "x", 1, 0));
	close(c); close(c2); close(s);
	/* abstract datagrams, unconnected sendto */
	s = socket(AF_UNIX, SOCK_DGRAM, 0); len = abstract_addr(&sa, "-dgram"); T(bind(s, (void *)&sa, len));
	c = socket(AF_UNIX, SOCK_DGRAM, 0);
	T(sendto(c, "abs dgram", 9, 0, (void *)&sa, len));
	flen = sizeof from; memset(buf, 0, sizeof buf);
	T(recvfrom(s, buf, sizeof buf, 0, (void *)&from, &flen)); printf("got %s\n", buf); show_addr("recvfrom", &from, flen);
	close(c); close(s);

	printf("-- a full backlog\n");
	/* backlog 0 holds one connection; a blocking connect beyond it waits
	 * for an accept (here: a child's, 100ms later) */
	s = socket(AF_UNIX, SOCK_STREAM, 0); len = path_addr(&sa, "backlog.sock");
	T(bind(s, (void *)&sa, len)); T(listen(s, 0));
	pid = fork();
	if (pid == 0) {
		usleep(100000);
		int got = 0;
		for (int i = 0; i < 3; i++) {
			struct pollfd pf = { s, POLLIN, 0 };
			if (poll(&pf, 1, 500) != 1) break;
			int x = accept(s, 0, 0); if (x < 0) break;
			got++; close(x);
		}
		_exit(got);
	}
	int cl[3];
	for (int i = 0; i < 3; i++) {
		cl[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		printf("blocking connect %d: ", i); T(connect(cl[i], (void *)&sa, len));
	}
	waitpid(pid, &st, 0); status("accepting child, connections accepted", st);
	for (int i = 0; i < 3; i++) close(cl[i]);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0); T(connect(c, (void *)&sa, len));
	c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0); T(connect(c2, (void *)&sa, len));
	close(c); close(c2); close(s);

	/* last: sun_path filling the whole sockaddr_un (no NUL), and longer */
	printf("-- full-length paths\n");
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sa, 'a', sizeof sa); sa.sun_family = AF_UNIX;
	char longname[sizeof sa.sun_path + 1];
	memset(longname, 'a', sizeof sa.sun_path); longname[sizeof sa.sun_path] = 0;
	T(bind(c, (void *)&sa, sizeof sa));
	T(access(longname, F_OK));
	close(c); c = socket(AF_UNIX, SOCK_STREAM, 0);
	T(bind(c, (void *)&sa, sizeof sa + 1));
	T(connect(c, (void *)&sa, sizeof sa + 1));
	close(c);
	return 0;
}
