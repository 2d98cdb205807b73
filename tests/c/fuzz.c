/* Random arguments to the calls the Sentry handles, each in a child of its
 * own: whatever they do, the Sentry must answer with an errno or a result,
 * never fail (tests/test_fuzz.py looks for its "handler ... failed" lines).
 * Usage: fuzz ITERATIONS SEED NR...   Run only in a throwaway sandbox. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rnd(void) { return ((uint64_t)random() << 33) ^ ((uint64_t)random() << 11) ^ random(); }
static char *buf, *paths[8];

static uint64_t arg(void)
{
	switch (rnd() % 14) {
	case 0: return 0;
	case 1: return 1;
	case 2: return (uint64_t)-1;
	case 3: return rnd() % 64;
	case 4: return rnd();
	case 5: return (uint64_t)buf;                     /* random bytes */
	case 6: return (uint64_t)buf + 4096 - 8;          /* near the end of a mapping */
	case 7: return (uint64_t)paths[rnd() % 8];
	case 8: return 0x7ff000000000ULL;                 /* unmapped */
	case 9: return 0xffffffff80000000ULL;             /* kernel */
	case 10: return (uint64_t)(rnd() % 3 + 1);        /* small pid */
	case 11: return (uint64_t)-100;                   /* AT_FDCWD */
	case 12: return 1000 + rnd() % 24;                /* the Sentry's hidden fds */
	default: return 1u << (rnd() % 32);
	}
}

int main(int argc, char **argv)
{
	int iters = atoi(argv[1]);
	srandom(atoi(argv[2]));
	buf = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	const char *p[8] = { "f", "d", "d/f", "/proc/self/status", "/dev/null", "", "../../x", "/proc/1/fd/0" };
	for (int i = 0; i < 8; i++) paths[i] = strdup(p[i]);
	for (int a = 3; a < argc; a++) {
		long nr = atol(argv[a]);
		for (int i = 0; i < iters; i++) {
			for (int j = 0; j < 4096; j++) buf[j] = rnd();
			pid_t c = fork();
			if (c == 0) {
				/* its F_SETFL, ftruncate... must not reach the parent's stdout */
				int null = open("/dev/null", O_RDWR);
				for (int fd = 0; fd < 3; fd++) dup2(null, fd);
				alarm(2);
				uint64_t x[6];
				for (int k = 0; k < 6; k++) x[k] = arg();
				syscall(nr, x[0], x[1], x[2], x[3], x[4], x[5]);
				_exit(0);
			}
			int st;
			if (c > 0) waitpid(c, &st, 0);
		}
	}
	printf("fuzz done\n");
	return 0;
}
