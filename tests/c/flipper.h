/* The racing thread of the escape tests: swaps fd X between a fresh
 * sandbox socket and H, a host socket the Sentry connected outbound, until
 * stop is set. */
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

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
