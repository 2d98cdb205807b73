/* lowport_race N [SPREAD]: N binds of fresh TCP sockets to a name whose port a second
 * thread turns, a random while after each bind began, from 8080 (anyone's)
 * to 80 (CAP_NET_BIND_SERVICE's) -- before the Sentry's check, or after it
 * and before the kernel reads the name.  Run by a guest without that
 * capability: a bind may succeed only on the port that was checked, so no
 * socket may ever end up on port 80.  Prints how many binds succeeded on
 * 8080, on 80, were refused (EACCES), and any other outcome.  SPREAD (spin
 * iterations, default 400000) bounds the random while: a slower trap needs a
 * longer one for flips to land after the check too. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "delayed_flip.h"

static struct sockaddr_in name;
static void flip_now(void)
{
	name.sin_port = htons(80);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	unsigned spread = argc > 2 ? (unsigned)atol(argv[2]) : 400000;
	int high = 0, low = 0, refused = 0, other = 0;
	pthread_t t;
	pthread_create(&t, NULL, flip, NULL);
	srand(1);
	for (int i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		name = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(8080),
					     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		__asm__ volatile("" ::: "memory");
		delay = rand() % spread;
		go = 1;
		if (bind(s, (struct sockaddr *)&name, sizeof name) == 0) {
			struct sockaddr_in got;
			socklen_t len = sizeof got;
			getsockname(s, (struct sockaddr *)&got, &len);
			if (ntohs(got.sin_port) == 80)
				low++;
			else
				high++;
		} else if (errno == EACCES) {
			refused++;
		} else {
			other++;
		}
		while (go)
			;                       /* the flip is done before the next round */
		close(s);
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("high %d low %d refused %d other %d\n", high, low, refused, other);
	return 0;
}
