/* Escape attempt on the link changes a guest root may make (sentry/net/links.py):
 * while threads send RTM_NEWLINK requests (sendmsg, sendto, sendmmsg) and the
 * SIOCSIFMTU ioctl on fd X, another swaps X between the sandbox's route
 * socket N, a second route socket N2, a UDP socket of the sandbox and H, a
 * host TCP socket the Sentry connected outbound to argv[1]:argv[2]; a third
 * flips the request's interface index between lo (1) and argv[3] (an index
 * of the host's, none of the sandbox's) and its MTU, in the very buffer the
 * senders pass.  Only the sandbox's lo may change, and nothing but the
 * guest's own bytes may reach H's peer.  Prints lo's MTU at the end, the
 * acks N and N2 got, and the number of rounds (argv[4]). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define X 50
static int N, N2, U, H, other;
static volatile int stop;

static struct {
	struct nlmsghdr h;
	struct ifinfomsg i;
	struct rtattr a;
	uint32_t mtu;
} req;

static void *swapper(void *arg)
{
	(void)arg;
	while (!stop) {
		dup2(N, X);
		dup2(H, X);
		dup2(N2, X);
		dup2(U, X);
	}
	return NULL;
}

static void *flipper(void *arg)
{
	(void)arg;
	for (uint32_t m = 0; !stop; m++) {
		*(volatile int *)&req.i.ifi_index = other;
		*(volatile uint32_t *)&req.mtu = 1280 + (m % 8) * 10;
		*(volatile int *)&req.i.ifi_index = 1;
	}
	return NULL;
}

static int drain(int s)
{
	char buf[65536];
	int acks = 0;
	ssize_t n;
	while ((n = recv(s, buf, sizeof buf, MSG_DONTWAIT)) > 0)
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n))
			acks += h->nlmsg_type == NLMSG_ERROR;
	return acks;
}

static int route_socket(void)
{
	int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	struct sockaddr_nl me = { .nl_family = AF_NETLINK };
	int big = 1 << 20;
	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	bind(s, (void *)&me, sizeof me);
	return s;
}

int main(int argc, char **argv)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
	struct sockaddr_in nine = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	inet_pton(AF_INET, argv[1], &peer.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &nine.sin_addr);
	other = atoi(argv[3]);
	int rounds = atoi(argv[4]);
	H = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(H, (void *)&peer, sizeof peer)) {
		perror("outbound connect");
		return 1;
	}
	N = route_socket();
	N2 = route_socket();
	U = socket(AF_INET, SOCK_DGRAM, 0);
	connect(U, (void *)&nine, sizeof nine);
	req.h = (struct nlmsghdr){ .nlmsg_len = sizeof req, .nlmsg_type = RTM_NEWLINK,
				   .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 1 };
	req.i = (struct ifinfomsg){ .ifi_family = AF_UNSPEC, .ifi_index = 1, .ifi_flags = IFF_UP,
				    .ifi_change = IFF_UP };
	req.a = (struct rtattr){ .rta_len = RTA_LENGTH(4), .rta_type = IFLA_MTU };
	req.mtu = 1280;
	pthread_t t1, t2;
	pthread_create(&t1, NULL, swapper, NULL);
	pthread_create(&t2, NULL, flipper, NULL);
	int acks = 0, acks2 = 0;
	for (int r = 0; r < rounds; r++) {
		struct iovec iov = { &req, sizeof req };
		struct msghdr m = { .msg_name = &kernel, .msg_namelen = sizeof kernel, .msg_iov = &iov, .msg_iovlen = 1 };
		struct mmsghdr mm = { .msg_hdr = m };
		struct ifreq ifr = { .ifr_name = "lo" };
		ifr.ifr_mtu = 1280 + (r % 8) * 10;
		switch (r % 4) {
		case 0: sendmsg(X, &m, 0); break;
		case 1: sendto(X, &req, sizeof req, 0, (void *)&kernel, sizeof kernel); break;
		case 2: sendmmsg(X, &mm, 1, 0); break;
		case 3: ioctl(X, SIOCSIFMTU, &ifr); break;
		}
		if (r % 64 == 0) {
			acks += drain(N);
			acks2 += drain(N2);
		}
	}
	stop = 1;
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	acks += drain(N);
	acks2 += drain(N2);
	struct ifreq ifr = { .ifr_name = "lo" };
	ioctl(N, SIOCGIFMTU, &ifr);
	int mtu = ifr.ifr_mtu;
	ioctl(N, SIOCGIFFLAGS, &ifr);
	printf("lo mtu %d %s\nacks %s %s\nrounds %d\n", mtu, ifr.ifr_flags & IFF_UP ? "up" : "down",
	       acks ? "some" : "none", acks2 ? "some" : "none", rounds);
	return 0;
}
