/* Escape attempt on an outbound socket still connecting, or whose handshake
 * failed: H is a non-blocking connect to argv[3]:argv[4] (a port whose SYNs
 * are dropped: H stays SYN_SENT; or a closed one: H fails).  While another
 * thread swaps fd X between a sandbox socket and H, this one disconnects
 * (AF_UNSPEC), listens, connects toward the host's loopback server
 * (argv[1]:argv[2]), sends to it with MSG_FASTOPEN (sendto, sendmsg, sendmmsg),
 * binds to it and shuts X down -- each of which, reaching the kernel on H,
 * could make H unconnected and so free to listen or connect on the host's
 * network.  Then H itself must still refuse listen (EINVAL).  Prints
 * "H listen EINVAL" and the number of rounds. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "flipper.h"

int main(int argc, char **argv)
{
	struct sockaddr_in host, peer;
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	race_addresses(argv, &host, &peer);
	H = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (connect(H, (void *)&peer, sizeof peer) == 0 || errno != EINPROGRESS) {
		perror("outbound connect");
		return 1;
	}
	struct pollfd p = { .fd = H, .events = POLLOUT };
	poll(&p, 1, 200);                 /* a closed port has answered by then */
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	int rounds = atoi(argv[5]);
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct msghdr msg = { .msg_name = &host, .msg_namelen = sizeof host, .msg_iov = &iov, .msg_iovlen = 1 };
	struct mmsghdr mm = { .msg_hdr = msg };
	for (int i = 0; i < rounds; i++) {
		connect(X, (void *)&unspec, sizeof unspec);
		listen(X, 1);
		connect(X, (void *)&host, sizeof host);
		sendto(X, "x", 1, MSG_FASTOPEN, (void *)&host, sizeof host);
		sendto(X, "x", 1, MSG_FASTOPEN, NULL, 0);
		sendmsg(X, &msg, MSG_FASTOPEN);
		sendmmsg(X, &mm, 1, MSG_FASTOPEN);
		bind(X, (void *)&host, sizeof host);
		shutdown(X, SHUT_RDWR);
	}
	stop = 1;
	pthread_join(t, NULL);
	int listening = 0;
	socklen_t ol = sizeof listening;
	getsockopt(H, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol);
	if (listen(H, 1) == 0 || listening)
		printf("H LISTENS on the host\n");
	else
		printf("H listen %s\n", errno == EINVAL ? "EINVAL" : strerror(errno));
	printf("rounds %d\n", rounds);
	return 0;
}
