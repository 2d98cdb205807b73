/* Attempts that must fail inside sentry; each prints what happened.
 * Usage: probe WHAT [ARG]  (see main) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define STAGING 0x3FF000000000UL

static void report(const char *what, long r)
{
	if (r < 0) printf("%s: %s\n", what, strerror(errno));
	else printf("%s: ok %ld\n", what, r);
}

static void *stat_loop(void *arg)
{
	struct stat st;
	for (;;) stat("/", &st);
	return arg;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	if (!strcmp(what, "int80")) {
		long ret;
		/* i386 getpid through the 32-bit gate: a foreign arch for the filter */
		__asm__ volatile ("int $0x80" : "=a"(ret) : "a"(20) : "memory");
		printf("int80 returned %ld\n", ret);
	} else if (!strcmp(what, "x32")) {
		long r = syscall(0x40000000 | 39);     /* x32 getpid */
		printf("x32 returned %ld\n", r);
	} else if (!strcmp(what, "caps")) {
		struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct d[2];
		syscall(SYS_capget, &h, d);
		int bounding = 0;
		for (int c = 0; c < 64; c++) if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) bounding++;
		printf("uid=%d euid=%d eff=%x,%x prm=%x,%x bounding=%d nnp=%d\n", getuid(), geteuid(),
		       d[0].effective, d[1].effective, d[0].permitted, d[1].permitted, bounding,
		       prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	} else if (!strcmp(what, "hidden")) {
		report("close(1000)", close(1000));
		report("dup2(0,1000)", dup2(0, 1000));
		report("dup3(0,1001,0)", dup3(0, 1001, 0));
		report("close_range(3,~0)", syscall(SYS_close_range, 3, ~0U, 0));
		int fd = open("/etc/passwd", O_RDONLY);
		report("open after close_range", fd >= 0 ? 0 : -1);
	} else if (!strcmp(what, "staging")) {
		report("munmap", munmap((void *)STAGING, 4096));
		report("mprotect", mprotect((void *)STAGING, 4096, PROT_READ | PROT_WRITE));
		report("madvise", madvise((void *)STAGING, 4096, MADV_DONTNEED));
		report("mmap fixed", mmap((void *)STAGING, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ? -1 : 0);
		report("mremap onto", mremap(mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
		       4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)STAGING) == MAP_FAILED ? -1 : 0);
		report("munmap wide", munmap((void *)(STAGING - (1UL << 30)), 1UL << 31));
		/* unrelated memory calls still work */
		void *p = mmap(0, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		report("mprotect own", mprotect(p, 4096, PROT_READ | PROT_WRITE));
		report("munmap own", munmap(p, 8192));
		fflush(stdout);
		/* the page is read-only to the guest */
		if (fork() == 0) { *(volatile char *)STAGING = 1; _exit(0); }
		int st; wait(&st);
		printf("write to staging: %s\n", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "survived");
	} else if (!strcmp(what, "tiocsti")) {
		char c = 'x';
		report("TIOCSTI", ioctl(0, TIOCSTI, &c));
		report("TIOCSTI high bits", syscall(SYS_ioctl, 0, 0xffffffff00000000UL | TIOCSTI, &c));
		report("TIOCLINUX", ioctl(0, TIOCLINUX, &c));
	} else if (!strcmp(what, "unknown")) {
		report("syscall 500", syscall(500));
		report("syscall 500 again", syscall(500));
		report("syscall 100000", syscall(100000));
	} else if (!strcmp(what, "forbidden")) {
		report("ptrace", ptrace(PTRACE_TRACEME, 0, 0, 0));
		report("io_uring_setup", syscall(SYS_io_uring_setup, 1, calloc(1, 120)));
		report("bpf", syscall(SYS_bpf, 0, 0, 0));
		report("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, 0, 0));
		report("unshare", syscall(SYS_unshare, 0x20000));
		report("mount", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0));
		report("clone untraced", syscall(SYS_clone, 0x00800000 | SIGCHLD, 0, 0, 0, 0));
		report("clone3", syscall(SYS_clone3, 0, 0));
		report("setpriority user", setpriority(2 /* PRIO_USER */, 0, 5));
	} else if (!strcmp(what, "kill")) {
		pid_t pid = atoi(argv[2]);
		report("kill host pid", kill(pid, 0));
		report("tgkill host pid", syscall(SYS_tgkill, pid, pid, 0));
		report("sigqueue host pid", sigqueue(pid, 0, (union sigval){0}));
		report("pidfd_open host pid", syscall(SYS_pidfd_open, pid, 0));
		report("getpgid host pid", getpgid(pid));
		report("setpgid into host group", setpgid(0, getpgid(pid) > 0 ? getpgid(pid) : pid));
		report("kill(-1, SIGKILL)", kill(-1, SIGKILL));
		report("kill(0, 0)", kill(0, 0));
	} else if (!strcmp(what, "abstract")) {
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un a = { AF_UNIX };
		strcpy(a.sun_path + 1, argv[2]);
		report("connect host abstract", connect(s, (void *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + strlen(argv[2])));
	} else if (!strcmp(what, "selfkill")) {
		pthread_t t;
		for (int i = 0; i < 4; i++) pthread_create(&t, 0, stat_loop, 0);
		usleep(100000);
		kill(getpid(), SIGKILL);
		pause();
	} else {
		fprintf(stderr, "probe: unknown test %s\n", what);
		return 2;
	}
	return 0;
}
