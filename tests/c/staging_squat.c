/* A new image puts a mapping of its own where the Sentry's staging area
 * goes (a hint the kernel honours: no MAP_FIXED, so no trap), then makes
 * the calls that need the area: the Sentry cannot map it, and the task is
 * killed rather than run with a slot it does not own (tests/test_staging_first.py). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define STAGING 0x3FF000000000ULL     /* sentry/platform/staging.py BASE */

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	void *p = mmap((void *)STAGING, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("hint %s\n", p == (void *)STAGING ? "honoured" : "moved");
	int fd = open(argc > 1 ? argv[1] : "/etc/hostname", O_RDONLY);
	printf("open %s\n", fd >= 0 ? "worked" : "failed");
	return 0;
}
