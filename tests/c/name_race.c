/* Leak attempt: while one thread swaps fd X between a fresh sandbox socket
 * and H, a host socket the Sentry connected outbound (to argv[1]:argv[2]),
 * the main thread asks X its name (getsockname), the interfaces
 * (SIOCGIFCONF) and its namespace cookie.  None may ever be the host's: not
 * the host's address on the way to the peer (argv[3]), not an interface
 * the sandbox lacks, not another cookie than a sandbox socket's.
 * Prints the leaks seen and the number of rounds. */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "flipper.h"
#define SO_NETNS_COOKIE_ 71

int main(int argc, char **argv)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
	struct in_addr host;
	int rounds = atoi(argv[4]), leaks = 0;
	unsigned long long mine, cookie;
	socklen_t n = sizeof mine;
	inet_pton(AF_INET, argv[1], &peer.sin_addr);
	inet_pton(AF_INET, argv[3], &host);
	H = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(H, (struct sockaddr *)&peer, sizeof peer) < 0) {
		perror("connect");
		return 1;
	}
	int s = socket(AF_INET, SOCK_STREAM, 0);
	getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE_, &mine, &n);
	dup2(s, X);
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	for (int i = 0; i < rounds; i++) {
		struct sockaddr_in name;
		socklen_t len = sizeof name;
		if (getsockname(X, (struct sockaddr *)&name, &len) == 0 && name.sin_addr.s_addr == host.s_addr)
			leaks++;
		struct ifreq reqs[16];
		struct ifconf ifc = { .ifc_len = sizeof reqs, .ifc_req = reqs };
		if (ioctl(X, SIOCGIFCONF, &ifc) == 0)
			for (int j = 0; j < ifc.ifc_len / (int)sizeof(struct ifreq); j++)
				if (strcmp(reqs[j].ifr_name, "lo") && strcmp(reqs[j].ifr_name, "eth0"))
					leaks++;
		n = sizeof cookie;
		if (getsockopt(X, SOL_SOCKET, SO_NETNS_COOKIE_, &cookie, &n) == 0 && cookie != mine)
			leaks++;
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("leaks %d\nrounds %d\n", leaks, rounds);
	return 0;
}
