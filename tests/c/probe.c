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
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/utsname.h>
#include <unistd.h>

#define STAGING 0x3FF000000000UL

static void report(const char *what, long r)
{
	if (r < 0) printf("%s: %s\n", what, strerror(errno));
	else printf("%s: ok %ld\n", what, r);
}

static volatile long signals_seen;
static void on_signal(int s) { (void)s; signals_seen++; }

static void *signal_flood(void *arg)
{
	pid_t tid = *(pid_t *)arg;
	for (int i = 0; i < 20000; i++) syscall(SYS_tgkill, getpid(), tid, SIGUSR1);
	return 0;
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
		/* just past the bounds of what BPF lets through untrapped */
		report("munmap edge", munmap((void *)(STAGING - (1UL << 40) - 4096), (1UL << 40) + 8192));
		report("mprotect inside", mprotect((void *)(STAGING + 8192), 4096, PROT_READ | PROT_WRITE));
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
		uint64_t untraced[11] = { 0x00800000, 0, 0, 0, SIGCHLD };   /* struct clone_args */
		report("clone3 untraced", syscall(SYS_clone3, untraced, sizeof untraced));
		report("setpriority user", setpriority(2 /* PRIO_USER */, 0, 5));
	} else if (!strcmp(what, "kill")) {
		pid_t pid = atoi(argv[2]);
		report("kill host pid", kill(pid, 0));
		report("tgkill host pid", syscall(SYS_tgkill, pid, pid, 0));
		report("sigqueue host pid", sigqueue(pid, 0, (union sigval){0}));
		report("pidfd_open host pid", syscall(SYS_pidfd_open, pid, 0));
		report("getpgid host pid", getpgid(pid));
		report("setpgid into host group", setpgid(0, getpgid(pid) > 0 ? getpgid(pid) : pid));
		struct timespec ts;   /* CPU-time clocks carry a pid: (~pid << 3) | 2, thread's | 6 */
		report("clock_gettime of host pid's CPU clock", clock_gettime((~pid << 3) | 2, &ts));
		report("clock_getres of host tid's CPU clock", clock_getres((~pid << 3) | 6, &ts));
		timer_t t;
		report("timer_create on host pid's CPU clock", timer_create((~pid << 3) | 2, 0, &t));
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
	} else if (!strcmp(what, "badptr")) {
		struct stat st;
		report("open(bad)", open((char *)1, O_RDONLY));
		report("open(unmapped)", open((char *)0x7ff000000000UL, O_RDONLY));
		report("stat(path, bad)", stat("/etc/passwd", (void *)1));
		report("uname(bad)", syscall(SYS_uname, 1));
		report("getcwd(bad)", syscall(SYS_getcwd, 1, 100));
		report("readlink(bad)", syscall(SYS_readlink, "/bin/sh", 1, 1L << 40));
		report("readlink(huge)", syscall(SYS_readlink, "/bin/sh", (char[64]){0}, 1L << 62));
		report("execve(bad)", syscall(SYS_execve, 1, 0, 0));
		report("execve(bad argv)", syscall(SYS_execve, "/bin/true", 1, 0));
		report("connect(bad)", connect(socket(AF_UNIX, SOCK_STREAM, 0), (void *)1, 110));
		report("sendmsg(bad)", sendmsg(socket(AF_UNIX, SOCK_DGRAM, 0), (void *)1, 0));
		report("getxattr(huge)", syscall(SYS_getxattr, "/bin/sh", "user.x", 1, 1L << 50));
		report("openat2(bad how)", syscall(SYS_openat2, AT_FDCWD, "/etc/passwd", 1, 24));
		char longpath[8192];
		memset(longpath, 'a', sizeof longpath - 1); longpath[sizeof longpath - 1] = 0;
		report("open(8k path)", open(longpath, O_RDONLY));
		report("stat(8k path)", stat(longpath, &st));
		printf("still alive\n");
	} else if (!strcmp(what, "seccomp")) {
		/* the guest's own filter: uname -> EPERM, everything else allowed */
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_uname, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { 4, f };
		report("listener filter", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		       SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
		report("own filter", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
		struct utsname u;
		report("uname", uname(&u));
		report("open /../secret", open("/../secret", O_RDONLY));
		report("open /etc/passwd", open("/etc/passwd", O_RDONLY) >= 0 ? 0 : -1);
	} else if (!strcmp(what, "sigflood")) {
		struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
		sigaction(SIGUSR1, &sa, 0);
		pid_t me = syscall(SYS_gettid);
		pthread_t t;
		pthread_create(&t, 0, signal_flood, &me);
		struct stat st;
		long ok = 0;
		for (int i = 0; i < 3000; i++) ok += stat("/etc/passwd", &st) == 0;
		pthread_join(t, 0);
		printf("stats ok %ld, signals seen %d\n", ok, signals_seen > 0);
	} else if (!strcmp(what, "restart")) {
		/* a rewritten open (of a FIFO: it blocks) interrupted by a signal
		 * with SA_RESTART restarts with its rewritten arguments */
		mkfifo("/tmp/fifo", 0644);
		struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
		sigaction(SIGALRM, &sa, 0);
		pid_t p = fork();
		if (p == 0) { usleep(300000); int w = open("/tmp/fifo", O_WRONLY); write(w, "x", 1); _exit(0); }
		ualarm(100000, 0);
		int fd = open("/tmp/fifo", O_RDONLY);
		char c = 0;
		read(fd, &c, 1);
		printf("fifo open restarted: fd %s, read %c, signals %ld\n", fd >= 0 ? "ok" : "bad", c, signals_seen);
		wait(0);
	} else {
		fprintf(stderr, "probe: unknown test %s\n", what);
		return 2;
	}
	return 0;
}
