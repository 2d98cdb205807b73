/* Conformance: getrlimit/setrlimit/prlimit64 on NOFILE, STACK, AS, FSIZE,
 * CORE (lowering soft limits and observing EMFILE, ENOMEM, EFBIG, SIGSEGV),
 * getrusage sanity, sysconf(_SC_OPEN_MAX), umask round trip.  Each limit
 * is changed in a child process.  Deterministic transcript.
 * Usage: conf_rlimits SCRATCH */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transcript.h"



static void predicted(const char *what, long r, int cap, int err)
{
	int ok = has_cap(cap) ? r == 0 : r == -1 && errno == err;
	printf("%s: as the capability predicts: %d\n", what, ok);
	errno = 0;
}

static const char *lim(rlim_t v)
{
	static char b[2][32]; static int i;
	i ^= 1;
	if (v == RLIM_INFINITY) return "unlimited";
	snprintf(b[i], sizeof b[i], "%llu", (unsigned long long)v);
	return b[i];
}

static int depth(int n)
{
	volatile char pad[4096];
	pad[0] = (char)n;
	return n > 0 ? depth(n - 1) + pad[0] : 0;
}

int main(int argc, char **argv)
{
	struct rlimit rl, rl2;
	int st;
	pid_t c;
	if (argc < 2 || chdir(argv[1])) return 2;
	syscall(SYS_close_range, 3, ~0U, 0);   /* whatever the caller left open */
	setvbuf(stdout, 0, _IONBF, 0);
	alarm(20);

	printf("-- the limits a process starts with\n");
	struct { int r; const char *name; } all[] = {
		{ RLIMIT_CPU, "CPU" }, { RLIMIT_FSIZE, "FSIZE" }, { RLIMIT_DATA, "DATA" }, { RLIMIT_STACK, "STACK" },
		{ RLIMIT_CORE, "CORE" }, { RLIMIT_NOFILE, "NOFILE" }, { RLIMIT_AS, "AS" }, { RLIMIT_MEMLOCK, "MEMLOCK" },
		{ RLIMIT_LOCKS, "LOCKS" }, { RLIMIT_MSGQUEUE, "MSGQUEUE" }, { RLIMIT_NICE, "NICE" }, { RLIMIT_RTPRIO, "RTPRIO" },
		{ RLIMIT_RTTIME, "RTTIME" }, { RLIMIT_SIGPENDING, "SIGPENDING" }, { RLIMIT_NPROC, "NPROC" }, { RLIMIT_RSS, "RSS" } };
	for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
		getrlimit(all[i].r, &rl);
		syscall(SYS_prlimit64, 0, all[i].r, 0, &rl2);
		printf("%s: soft=%s hard=%s prlimit64 same: %d\n", all[i].name, lim(rl.rlim_cur), lim(rl.rlim_max),
		       rl.rlim_cur == rl2.rlim_cur && rl.rlim_max == rl2.rlim_max);
	}
	T(getrlimit(99, &rl)); T(getrlimit(RLIMIT_NOFILE, (void *)8));
	getrlimit(RLIMIT_NOFILE, &rl);
	printf("sysconf(_SC_OPEN_MAX) == soft NOFILE: %d\n", sysconf(_SC_OPEN_MAX) == (long)rl.rlim_cur);
	printf("getdtablesize() == soft NOFILE: %d\n", getdtablesize() == (int)rl.rlim_cur);

	printf("-- RLIMIT_NOFILE\n");
	c = fork();
	if (c == 0) {
		struct rlimit n = { 16, rl.rlim_max };
		T(setrlimit(RLIMIT_NOFILE, &n));
		printf("sysconf(_SC_OPEN_MAX)=%ld\n", sysconf(_SC_OPEN_MAX));
		int last = -1, fd, opened = 0;
		while ((fd = open("/dev/null", O_RDONLY)) >= 0) { last = fd; opened++; }
		printf("opened %d more, last fd %d, then %s\n", opened, last, strerrorname_np(errno));
		T(dup(0)); T(dup2(0, 16)); T(dup2(0, 15)); T(fcntl(0, F_DUPFD, 16)); T(fcntl(0, F_DUPFD, 10));
		int pp[2]; T(pipe(pp));
		close(3); close(4);
		T(pipe(pp));
		T(mkdir("nofile_dir", 0755));
		T(open("nofile_dir/f", O_CREAT | O_WRONLY, 0644));
		T(stat("nofile_dir", &(struct stat){ 0 }));
		T(open("nofile_dir/f", O_RDONLY));
		T(open("/dev/null", O_RDONLY));
		/* a lower limit than open fds, then raising the soft limit again */
		n.rlim_cur = 4; T(setrlimit(RLIMIT_NOFILE, &n));
		T(open("/dev/null", O_RDONLY));
		n.rlim_cur = 64; T(setrlimit(RLIMIT_NOFILE, &n));
		T(open("/dev/null", O_RDONLY));
		n.rlim_cur = n.rlim_max + 1; T(setrlimit(RLIMIT_NOFILE, &n));
		n.rlim_cur = 32; n.rlim_max = 16; T(setrlimit(RLIMIT_NOFILE, &n));
		n.rlim_cur = 1 << 30; n.rlim_max = 1 << 30; T(setrlimit(RLIMIT_NOFILE, &n));
		/* lowering the hard limit is allowed, raising it back needs CAP_SYS_RESOURCE */
		n.rlim_cur = 64; n.rlim_max = 128; T(setrlimit(RLIMIT_NOFILE, &n));
		n.rlim_max = 256; predicted("raise the hard NOFILE limit", setrlimit(RLIMIT_NOFILE, &n), CAP_SYS_RESOURCE, EPERM);
		_exit(0);
	}
	waitpid(c, &st, 0); status("NOFILE child", st);
	getrlimit(RLIMIT_NOFILE, &rl2); printf("parent's limit unchanged: %d\n", rl2.rlim_cur == rl.rlim_cur);

	printf("-- fd numbers far above the open ones\n");
	{
		struct stat sb; char b[4];
		T(fcntl(1000, F_GETFD)); T(fstat(1000, &sb));
		T(read(1000, b, 1));
		T(dup2(0, 1000)); T(close(1000));
		printf("-- and after close\n");
		T(fcntl(1000, F_GETFL));
		int hi = fcntl(0, F_DUPFD, 1000); printf("F_DUPFD 1000: >= 1000 %d\n", hi >= 1000); close(hi);
	}

	printf("-- prlimit64\n");
	int ready[2]; pipe(ready);
	c = fork();
	if (c == 0) { close(ready[1]); char b; read(ready[0], &b, 1); getrlimit(RLIMIT_NOFILE, &rl2); _exit(rl2.rlim_cur == 100 ? 0 : 1); }
	close(ready[0]);
	struct rlimit nl = { 100, rl.rlim_max }, ol;
	T(prlimit(c, RLIMIT_NOFILE, &nl, &ol)); printf("old limit was the parent's: %d\n", ol.rlim_cur == rl.rlim_cur);
	T(prlimit(c, RLIMIT_NOFILE, 0, &ol)); printf("read back: %s\n", lim(ol.rlim_cur));
	write(ready[1], "g", 1); close(ready[1]);
	waitpid(c, &st, 0); status("child saw the limit set by its parent", st);
	T(prlimit(c, RLIMIT_NOFILE, 0, &ol));
	T(prlimit(getpid(), RLIMIT_NOFILE, 0, &ol)); printf("own pid same as 0: %d\n", ol.rlim_cur == rl.rlim_cur);
	T(prlimit(0, 99, 0, &ol));

	printf("-- RLIMIT_FSIZE\n");
	c = fork();
	if (c == 0) {
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit f = { 100, RLIM_INFINITY };
		getrlimit(RLIMIT_FSIZE, &rl2); f.rlim_max = rl2.rlim_max;
		T(setrlimit(RLIMIT_FSIZE, &f));
		int fd = open("fsize", O_CREAT | O_WRONLY | O_TRUNC, 0644);
		char b[200]; memset(b, 'f', sizeof b);
		T(write(fd, b, 200)); T(write(fd, b, 10)); T(ftruncate(fd, 50)); T(ftruncate(fd, 500));
		T(pwrite(fd, b, 1, 99)); T(pwrite(fd, b, 1, 100));
		signal(SIGXFSZ, SIG_DFL);
		write(fd, b, 200);   /* at the limit: SIGXFSZ kills */
		_exit(0);
	}
	waitpid(c, &st, 0); status("FSIZE child", st);

	printf("-- RLIMIT_AS\n");
	c = fork();
	if (c == 0) {
		struct rlimit a = { 256UL << 20, RLIM_INFINITY };
		getrlimit(RLIMIT_AS, &rl2); a.rlim_max = rl2.rlim_max;
		T(setrlimit(RLIMIT_AS, &a));
		void *m = mmap(0, 512UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		printf("mmap 512MiB under a 256MiB AS limit: %s\n", m == MAP_FAILED ? strerrorname_np(errno) : "mapped");
		m = mmap(0, 16UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		printf("mmap 16MiB: %s\n", m == MAP_FAILED ? strerrorname_np(errno) : "mapped");
		void *big = malloc(400UL << 20);
		printf("malloc 400MiB: %s\n", big ? "ok" : "NULL");
		void *b0 = sbrk(0);
		printf("brk +300MiB refused: %d\n", (char *)syscall(SYS_brk, (char *)b0 + (300UL << 20)) == (char *)b0);
		_exit(0);
	}
	waitpid(c, &st, 0); status("AS child", st);

	printf("-- RLIMIT_STACK\n");
	getrlimit(RLIMIT_STACK, &rl2);
	printf("stack soft limit at least 1MiB: %d\n", rl2.rlim_cur == RLIM_INFINITY || rl2.rlim_cur >= (1 << 20));
	c = fork();
	if (c == 0) {
		struct rlimit s = { 1 << 20, rl2.rlim_max };
		setrlimit(RLIMIT_STACK, &s);
		depth(200);   /* ~800 KiB: fits */
		write(1, "800KiB of stack: ok\n", 20);
		depth(2000);  /* ~8 MiB: beyond the limit */
		_exit(0);
	}
	waitpid(c, &st, 0); status("STACK child recursing past 1MiB", st);

	printf("-- RLIMIT_CORE, inherited and changed\n");
	c = fork();
	if (c == 0) {
		struct rlimit z = { 0, 4096 };
		T(setrlimit(RLIMIT_CORE, &z));
		z.rlim_cur = 8192; T(setrlimit(RLIMIT_CORE, &z));               /* soft above hard: EINVAL */
		T(setrlimit(RLIMIT_CORE, (void *)8)); T(getrlimit(RLIMIT_CORE, (void *)8));
		z.rlim_cur = 2048; T(syscall(SYS_prlimit64, 0, RLIMIT_CORE, &z, &rl2));
		printf("old by prlimit64 %s/%s\n", lim(rl2.rlim_cur), lim(rl2.rlim_max));
		int p[2], q[2]; pipe(p); pipe(q);
		pid_t g = fork();
		if (g == 0) {
			getrlimit(RLIMIT_CORE, &z);
			printf("grandchild inherits %s/%s\n", lim(z.rlim_cur), lim(z.rlim_max));
			char x; write(q[1], "x", 1); read(p[0], &x, 1);
			getrlimit(RLIMIT_CORE, &z);
			printf("grandchild after its parent's prlimit64 %s/%s\n", lim(z.rlim_cur), lim(z.rlim_max));
			_exit(0);
		}
		char y; read(q[0], &y, 1);
		z.rlim_cur = 1024; z.rlim_max = 4096; T(syscall(SYS_prlimit64, g, RLIMIT_CORE, &z, 0));
		T(syscall(SYS_prlimit64, g, RLIMIT_CORE, 0, &rl2));
		printf("read by prlimit64 %s/%s\n", lim(rl2.rlim_cur), lim(rl2.rlim_max));
		write(p[1], "x", 1);
		waitpid(g, &st, 0);
		T(syscall(SYS_prlimit64, 999999999, RLIMIT_CORE, 0, &rl2));
		_exit(0);
	}
	waitpid(c, &st, 0); status("core child", st);

	printf("-- RLIMIT_CORE / CPU\n");
	c = fork();
	if (c == 0) {
		struct rlimit z = { 0, 0 };
		T(setrlimit(RLIMIT_CORE, &z)); getrlimit(RLIMIT_CORE, &z); printf("core %s/%s\n", lim(z.rlim_cur), lim(z.rlim_max));
		z.rlim_max = 1; predicted("raise the hard CORE limit", setrlimit(RLIMIT_CORE, &z), CAP_SYS_RESOURCE, EPERM);
		struct rlimit cpu = { 1, 2 };
		T(setrlimit(RLIMIT_CPU, &cpu));
		signal(SIGXCPU, SIG_DFL);
		for (;;) ;
	}
	waitpid(c, &st, 0); status("CPU child (1s limit)", st);

	printf("-- getrusage\n");
	struct rusage ru;
	T(getrusage(RUSAGE_SELF, &ru)); printf("self maxrss>0: %d minflt>0: %d\n", ru.ru_maxrss > 0, ru.ru_minflt > 0);
	T(getrusage(RUSAGE_CHILDREN, &ru)); printf("children user+system >= 0.5s (the CPU child): %d\n", (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec >= 500000);
	T(getrusage(RUSAGE_THREAD, &ru)); T(getrusage(42, &ru));
	c = fork(); if (c == 0) _exit(0);
	struct rusage wru; T(wait4(c, &st, 0, &wru) == c); printf("wait4 rusage maxrss>0: %d\n", wru.ru_maxrss > 0);

	printf("-- priorities\n");
	errno = 0; int pr = getpriority(PRIO_PROCESS, 0); printf("getpriority: %d errno %d\n", pr, errno);
	c = fork();
	if (c == 0) {
		T(setpriority(PRIO_PROCESS, 0, 5)); errno = 0; printf("now %d\n", getpriority(PRIO_PROCESS, 0));
		T(nice(1));
		predicted("lower the nice value", setpriority(PRIO_PROCESS, 0, 0), CAP_SYS_NICE, EACCES);
		_exit(0);
	}
	waitpid(c, &st, 0);
	T(setpriority(42, 0, 0));

	printf("-- umask\n");
	mode_t orig = umask(027);
	printf("inherited umask: %03o\n", orig);
	T(umask(077)); T(umask(0777 | 01000)); T(umask(022));
	umask(027);
	int fd = open("masked", O_CREAT | O_WRONLY, 0666); close(fd);
	T(mkdir("maskdir", 0777));
	struct stat sb; stat("masked", &sb); printf("file mode %03o\n", sb.st_mode & 0777);
	stat("maskdir", &sb); printf("dir mode %03o\n", sb.st_mode & 0777);
	T(mkfifo("maskfifo", 0666)); stat("maskfifo", &sb); printf("fifo mode %03o\n", sb.st_mode & 0777);
	c = fork(); if (c == 0) _exit(umask(0)); waitpid(c, &st, 0); printf("child inherits umask: %03o\n", WEXITSTATUS(st));
	c = fork();
	if (c == 0) { execl("/bin/sh", "sh", "-c", "umask", (char *)0); _exit(127); }
	waitpid(c, &st, 0);
	umask(orig);
	return 0;
}
