/* The racing thread of the escape tests: swaps fd X between a fresh
 * sandbox socket and H, a host socket the Sentry connected outbound, until
 * stop is set. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

#define X 40
static int H;
static volatile int stop;

static void *flipper(void *arg)
{
	(void)arg;
	while (!stop) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		dup2(s, X);
		close(s);
		dup2(H, X);
	}
	return NULL;
}

/* The escape tests' arguments: the host's loopback server argv[1]:argv[2]
 * and H's peer outside argv[3]:argv[4]. */
static inline void race_addresses(char **argv, struct sockaddr_in *host, struct sockaddr_in *peer)
{
	*host = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
	*peer = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(atoi(argv[4])) };
	inet_pton(AF_INET, argv[1], &host->sin_addr);
	inet_pton(AF_INET, argv[3], &peer->sin_addr);
}
