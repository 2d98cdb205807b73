/* connect_loop N: N rounds of socket, connect, accept, close on the
 * loopback (what bench/ tcp_connect_accept times); prints "connected N". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1, done = 0;
	struct sockaddr_in at = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof at;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (void *)&at, sizeof at) || listen(l, 16) || getsockname(l, (void *)&at, &len))
		return perror("listen"), 1;
	for (int i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || connect(s, (void *)&at, sizeof at))
			return perror("connect"), 1;
		int a = accept(l, NULL, NULL);
		if (a < 0)
			return perror("accept"), 1;
		close(a);
		close(s);
		done++;
	}
	printf("connected %d\n", done);
	return 0;
}
