/* Arguments drawn by their declared kind (syscalls/signature.py, via
 * tests/test_fuzz.py) for calls the Sentry handles, each call in a child of
 * its own; prints one line per call: "NAME ITER RESULT" (a result, -errno, or
 * "sig N" when the child died).  Run natively and in sentry, the lines must
 * match where the test compares them.  Deterministic: every argument is
 * drawn in the parent from srandom(SEED).
 * Usage: fuzz ITERATIONS SEED STAGING MODE NAME:NR:KINDS...
 *   STAGING: an address in the Sentry's staging area, or 0 (not drawn)
 *   MODE: "any" draws every argument adversarially; "one" draws one of them
 *   so and the others among plausible values, so that a call has at most one
 *   fault and Linux's errno does not depend on which argument it checks first
 *   KINDS, one letter per argument:
 *     f fd  d dirfd  p path  b pointer (buffer, structure)  o open flags
 *     m mode  u flags (unsigned int)  i int  s signal  n pid  z size  a address
 *     l any 64-bit value
 * Run only as a throwaway: in a sandbox, or natively in a scratch chroot. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rnd(void) { return ((uint64_t)random() << 33) ^ ((uint64_t)random() << 11) ^ random(); }
static char *buf, *ro, *paths[10];
static uint64_t staging;
static int fds[8];            /* valid fds of several kinds, opened before the loop */
static int base;              /* the directory the run directories are made in */

static uint64_t high(uint64_t v) { return rnd() % 4 ? v : v | 0xdead000000000000ULL | (rnd() & 0xffff00000000ULL); }

static uint64_t pointer(void)
{
	switch (rnd() % 9) {
	case 0: return 0;
	case 1: return (uint64_t)buf + 4096 - 8;            /* near the end of a mapping */
	case 2: return 0x7ff000000000ULL;                   /* unmapped */
	case 3: return 0xffffffff80000000ULL;               /* kernel */
	case 4: return staging ? staging + (rnd() % 64) * 8 : 0x10;   /* the Sentry's staging area */
	case 5: return (uint64_t)ro;                        /* read-only */
	default: return (uint64_t)buf + (rnd() % 8) * 64;   /* random bytes */
	}
}

static uint64_t draw(char kind)
{
	switch (kind) {
	case 'f':
		switch (rnd() % 6) {
		case 0: return high(1000 + rnd() % 24);            /* the Sentry's hidden fds */
		case 1: return rnd() % 2 ? (uint64_t)-1 : 77;      /* bad, closed */
		default: return high(fds[rnd() % 8]);
		}
	case 'd':
		switch (rnd() % 5) {
		case 0: return high((uint32_t)-100);               /* AT_FDCWD */
		case 1: return 1000 + rnd() % 24;
		case 2: return (uint64_t)-1;
		default: return high(fds[rnd() % 8]);
		}
	case 'p': return rnd() % 5 ? (uint64_t)paths[rnd() % 10] : pointer();
	case 'b': return pointer();
	case 'a':
		switch (rnd() % 4) {
		case 0: return staging ? staging : 0x7ff000000000ULL;
		case 1: return (uint64_t)buf;
		case 2: return 0x7ff000000000ULL;
		default: return rnd() & ~0xfffULL;
		}
	case 'o': {
		static const int flags[] = { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND,
			O_DIRECTORY, O_NOFOLLOW, O_PATH, O_CLOEXEC, O_NONBLOCK, O_TMPFILE };
		uint64_t v = 0;
		for (int k = rnd() % 4; k > 0; k--) v |= flags[rnd() % 13];
		return high(v);
	}
	case 'm': return high(rnd() % 3 ? rnd() % 01000 : rnd() & 0xffff);
	case 'u': {
		switch (rnd() % 5) {
		case 0: return 0;
		case 1: return high(1u << (rnd() % 32));
		case 2: return 0xffffffff;
		default: return high(rnd() & 0xffffffff);
		}
	}
	case 'i':
		switch (rnd() % 6) {
		case 0: return 0;
		case 1: return high(1);
		case 2: return (uint64_t)-1;
		case 3: return 0x80000000;                        /* INT_MIN */
		case 4: return high(rnd() % 64);
		default: return high(rnd() & 0xffffffff);
		}
	case 's': return high(rnd() % 3 ? rnd() % 66 : (uint64_t)-1);
	case 'n':       /* never a live process: natively pid 1 is the host's init */
		switch (rnd() % 3) {
		case 0: return 0;
		case 1: return (uint64_t)-1;
		default: return high(99999);
		}
	case 'z':
		switch (rnd() % 6) {
		case 0: return 0;
		case 1: return rnd() % 64;
		case 2: return 4096;
		case 3: return 1ULL << 62;                         /* huge */
		case 4: return (uint64_t)-1;                       /* negative */
		default: return rnd() % 100000;
		}
	default: return rnd() % 3 ? rnd() % 64 : rnd();
	}
}

/* A plausible value of each kind: a valid fd, an existing path, a buffer... */
static uint64_t plausible(char kind)
{
	switch (kind) {
	case 'f': return fds[rnd() % 7];
	case 'd': return rnd() % 2 ? (uint64_t)(uint32_t)-100 : (uint64_t)fds[1];
	case 'p': return (uint64_t)paths[rnd() % 4];
	case 'b': return (uint64_t)buf + (rnd() % 8) * 64;
	case 'a': return (uint64_t)buf;
	case 'o': return rnd() % 2 ? O_RDONLY : O_RDWR | O_CREAT;
	case 'm': return 0644;
	case 's': return 0;
	case 'n': return 0;
	case 'z': return rnd() % 64;
	default: return 0;
	}
}

/* Each call runs in a directory of its own, made afresh with the same
 * content (file f, directory d with d/f, symlink l -> f), so that what one
 * call did or failed to do does not change what the next one sees. */
static void fresh(int n)
{
	char dir[32];
	if (n) {
		close(fds[0]);
		close(fds[1]);
		fchdir(base);        /* not "..": a call may have taken its search bit */
	}
	snprintf(dir, sizeof dir, "run%d", n);
	mkdir(dir, 0755);
	chdir(dir);
	int fd = open("f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	write(fd, "some content\n", 13);
	close(fd);
	mkdir("d", 0755);
	close(open("d/f", O_WRONLY | O_CREAT, 0644));
	symlink("f", "l");
	fds[0] = open("f", O_RDWR);                 /* 3, as the first time */
	fds[1] = open("d", O_RDONLY | O_DIRECTORY); /* 4 */
}

int main(int argc, char **argv)
{
	int iters = atoi(argv[1]);
	srandom(atoi(argv[2]));
	staging = strtoull(argv[3], 0, 0);
	int one = strcmp(argv[4], "one") == 0;
	/* a guard page after buf: what lies past its end must not depend on where
	 * the kernel put the mappings (natively and in sentry alike: EFAULT) */
	buf = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(buf + 4096, 4096, PROT_NONE);
	ro = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* the first four exist in each call's fresh directory (plausible() draws them) */
	const char *p[10] = { "f", "d", "d/f", "l", "new", "d/new", "", "../../x", "/dev/null", "/" };
	if (one) {
		/* compared with Linux: nothing outside the scratch tree (the guest's
		 * mode on / or /dev would hold the Sentry too: it has no capability
		 * to override it, and /dev is the Sentry's own) */
		p[7] = "../x";
		p[8] = "d/../f";
		p[9] = ".";
	}
	for (int i = 0; i < 10; i++) paths[i] = strdup(p[i]);
	base = open(".", O_RDONLY | O_DIRECTORY);
	/* fds 3..: a file, a directory (both remade for each call), a pipe's two
	 * ends, a socket, /dev/null, an eventfd */
	int pfd[2], sv[2];
	fresh(0);
	pipe(pfd);
	fds[2] = pfd[0];
	fds[3] = pfd[1];
	socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
	fds[4] = sv[0];
	fds[5] = open("/dev/null", O_RDWR);
	fds[6] = eventfd(0, 0);
	fds[7] = AT_FDCWD;
	int res[2];
	pipe(res);
	fcntl(res[0], F_SETFL, O_NONBLOCK);     /* a child that died first wrote nothing */
	for (int a = 5; a < argc; a++) {
		char name[64], kinds[8] = "";
		long nr;
		if (sscanf(argv[a], "%63[^:]:%ld:%7s", name, &nr, kinds) < 2) return 2;
		for (int i = 0; i < iters; i++) {
			static int runs;
			fresh(++runs);
			for (int j = 0; j < 4096; j++) buf[j] = rnd();
			uint64_t x[6] = { 0 };
			int n = strlen(kinds), bad = n ? rnd() % n : 0;
			for (int k = 0; k < 6; k++)
				x[k] = !kinds[k] ? draw('l') : !one || k == bad ? draw(kinds[k]) : plausible(kinds[k]);
			/* the arguments, to tell a difference apart (pointers vary: stderr) */
			fprintf(stderr, "%s %d %lx %lx %lx %lx %lx %lx\n", name, i,
				x[0], x[1], x[2], x[3], x[4], x[5]);
			fflush(stdout);
			pid_t c = fork();
			if (c == 0) {
				/* its F_SETFL, ftruncate... must not reach the parent's stdout */
				int null = open("/dev/null", O_RDWR);
				for (int fd = 0; fd < 3; fd++) dup2(null, fd);
				close(null);
				struct itimerval t = { { 0, 0 }, { 0, 200000 } };   /* a call that blocks */
				setitimer(ITIMER_REAL, &t, 0);
				long r = syscall(nr, x[0], x[1], x[2], x[3], x[4], x[5]);
				if (r < 0) r = -errno;
				write(res[1], &r, sizeof r);
				_exit(0);
			}
			int st = 0;
			long r;
			/* a clone with a stop signal as its exit signal (SIGSTOP,
			 * SIGTSTP...) stops the child when the grandchild exits
			 * first, natively too: it goes on, as after a shell's fg */
			while (waitpid(c, &st, WUNTRACED) == c && WIFSTOPPED(st))
				kill(c, SIGCONT);
			if (WIFSIGNALED(st))
				printf("%s %d sig %d\n", name, i, WTERMSIG(st));
			else if (read(res[0], &r, sizeof r) == sizeof r)
				printf("%s %d %ld\n", name, i, r);
			else
				printf("%s %d exit %d\n", name, i, WEXITSTATUS(st));
		}
	}
	printf("fuzz done\n");
	return 0;
}
