/* udp_name_race N: N sendto calls from one socket to a name that a second thread
 * turns, a random while after each call began, from the sandbox's loopback
 * (a receiving socket) to an address outside (refused by the sandbox's
 * policy: ENETUNREACH) -- before the check, or after it and before the
 * kernel reads the name.  Prints how many sends succeeded, how many the
 * receiver got, how many were unreachable, and any other outcome: every
 * successful send must be one the receiver got (the kernel sent to the name
 * that was checked). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "delayed_flip.h"

static struct sockaddr_in name, inside, outside;

static void flip_now(void)
{
	memcpy(&name, &outside, sizeof name);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
	inside.sin_family = AF_INET;
	inside.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(rx, (struct sockaddr *)&inside, sizeof inside)) { perror("bind"); return 1; }
	socklen_t len = sizeof inside;
	getsockname(rx, (struct sockaddr *)&inside, &len);
	outside = inside;
	inet_pton(AF_INET, "192.0.2.1", &outside.sin_addr);
	pthread_t t;
	pthread_create(&t, NULL, flip, NULL);
	int sent = 0, unreachable = 0, other = 0, got = 0;
	char c;
	srand(1);
	for (int i = 0; i < n; i++) {
		memcpy(&name, &inside, sizeof name);
		__asm__ volatile("" ::: "memory");
		delay = rand() % 40000;
		go = 1;
		if (sendto(tx, "x", 1, 0, (struct sockaddr *)&name, sizeof name) == 1) sent++;
		else if (errno == ENETUNREACH) unreachable++;
		else other++;
		while (go)
			;                       /* the flip is done before the next round */
		while (recv(rx, &c, 1, MSG_DONTWAIT) == 1) got++;
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("sent %d got %d unreachable %d other %d\n", sent, got, unreachable, other);
	return 0;
}
