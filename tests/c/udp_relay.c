/* UDP to an echo server (argv[1]:argv[2], which answers "echo:" + the
 * datagram): sendto/recvfrom (the answer comes from the server's address),
 * sendmsg/recvmsg, a connected socket's send/recv, two sockets at once
 * (each gets its own answer), a datagram of 60000 bytes.  The same lines
 * natively and in the sandbox. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct sockaddr_in dest;

static int udp(void)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct timeval tv = { .tv_sec = 3 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return s;
}

static void answer(const char *how, int s)
{
	static char buf[65536];
	struct sockaddr_in from;
	socklen_t len = sizeof from;
	ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
	if (n < 0) {
		printf("%s: nothing (%m)\n", how);
		return;
	}
	buf[n] = 0;
	printf("%s: from %s:%d, %zd bytes%s%s\n", how, inet_ntoa(from.sin_addr), ntohs(from.sin_port), n,
	       n < 64 ? ": " : "", n < 64 ? buf : "");
}

int main(int argc, char **argv)
{
	dest.sin_family = AF_INET;
	dest.sin_port = htons(atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &dest.sin_addr);

	int s = udp();
	sendto(s, "one", 3, 0, (struct sockaddr *)&dest, sizeof dest);
	answer("sendto", s);

	struct iovec iov = { .iov_base = "two", .iov_len = 3 };
	struct msghdr msg = { .msg_name = &dest, .msg_namelen = sizeof dest, .msg_iov = &iov, .msg_iovlen = 1 };
	sendmsg(s, &msg, 0);
	answer("sendmsg", s);

	int c = udp();
	if (connect(c, (struct sockaddr *)&dest, sizeof dest) < 0)
		perror("connect");
	send(c, "three", 5, 0);
	answer("connected send", c);
	write(c, "four", 4);
	answer("connected write", c);

	int a = udp(), b = udp();
	sendto(a, "a", 1, 0, (struct sockaddr *)&dest, sizeof dest);
	sendto(b, "b", 1, 0, (struct sockaddr *)&dest, sizeof dest);
	answer("socket b", b);
	answer("socket a", a);

	static char big[60000];
	memset(big, 'x', sizeof big);
	if (sendto(s, big, sizeof big, 0, (struct sockaddr *)&dest, sizeof dest) < 0)
		perror("big");
	answer("big", s);
	return 0;
}
