/* Escape attempt: while one thread connects, disconnects (AF_UNSPEC), listens
 * and sends with MSG_FASTOPEN on fd X, another swaps X between a sandbox
 * socket and H, a host socket the Sentry connected outbound.  Neither the
 * host's loopback server (argv[1]:argv[2]) may ever be reached, nor may H
 * stop being connected to its peer (argv[3]:argv[4]) or start listening.
 * Prints "H intact" and the number of rounds. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
	H = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(H, (void *)&peer, sizeof peer)) {
		perror("outbound connect");
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	int rounds = atoi(argv[5]);
	for (int i = 0; i < rounds; i++) {
		connect(X, (void *)&unspec, sizeof unspec);
		listen(X, 1);
		connect(X, (void *)&host, sizeof host);
		sendto(X, "x", 1, MSG_FASTOPEN, (void *)&host, sizeof host);
		bind(X, (void *)&host, sizeof host);
	}
	stop = 1;
	pthread_join(t, NULL);
	struct sockaddr_in got;
	socklen_t len = sizeof got;
	int listening = 0;
	socklen_t ol = sizeof listening;
	getsockopt(H, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol);
	if (getpeername(H, (void *)&got, &len) == 0 && got.sin_port == peer.sin_port &&
	    got.sin_addr.s_addr == peer.sin_addr.s_addr && !listening)
		printf("H intact\n");
	else
		printf("H CHANGED: listening %d, peer errno %d\n", listening, errno);
	printf("rounds %d\n", rounds);
	return 0;
}
