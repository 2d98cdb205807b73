/* Time namespaces (issue 13): unshare(CLONE_NEWTIME), /proc/<pid>/timens_offsets
 * and its errors, the clocks a child sees through the vDSO and the syscall,
 * after an exec too, absolute sleeps and timers there, sysinfo's and
 * /proc/uptime's uptime, clone3 with CLONE_NEWTIME.  Times only as
 * relations: an offset seen within a window, never raw values.
 * Usage: conf_timens SCRATCH   (conf_timens SCRATCH exec: the exec'd image) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/sysinfo.h>
#include <sys/timerfd.h>
#include <time.h>

#include "transcript.h"

#define MONO_OFF 100000LL            /* seconds: far past any host's uptime */
#define BOOT_OFF 3600LL
#define NS 1000000000LL

static int64_t libc_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);                          /* the vDSO's */
	return ts.tv_sec * NS + ts.tv_nsec;
}

static int64_t sys_ns(clockid_t c)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, c, &ts);
	return ts.tv_sec * NS + ts.tv_nsec;
}

static int shifted_by(int64_t seen, int64_t host, int64_t off)
{
	int64_t d = seen - host - off * NS;
	return d > -NS && d < 5 * NS;                  /* read a little after the host's */
}

static void write_offsets(const char *text)
{
	int fd = open("/proc/self/timens_offsets", O_WRONLY);
	if (fd < 0) { printf("open timens_offsets: %s\n", strerrorname_np(errno)); return; }
	long r = write(fd, text, strlen(text));
	if (r < 0) printf("write \"%.*s\" = -1 %s\n", (int)strcspn(text, "\n"), text, strerrorname_np(errno));
	else printf("write \"%.*s\" = %ld\n", (int)strcspn(text, "\n"), text, r);
	close(fd);
}

static void show_offsets(void)
{
	char buf[256] = "";
	int fd = open("/proc/self/timens_offsets", O_RDONLY);
	long n = read(fd, buf, sizeof buf - 1);
	close(fd);
	printf("timens_offsets:\n%.*s", (int)(n > 0 ? n : 0), buf);
}

static int same_link(const char *a, const char *b)
{
	char x[64] = "", y[64] = "";
	readlink(a, x, sizeof x - 1);
	readlink(b, y, sizeof y - 1);
	return strcmp(x, y) == 0 && strncmp(x, "time:[", 6) == 0;
}

static void clocks(const char *who, int64_t host_mono, int64_t host_boot)
{
	printf("%s: vDSO MONOTONIC shifted: %d\n", who, shifted_by(libc_ns(CLOCK_MONOTONIC), host_mono, MONO_OFF));
	printf("%s: syscall MONOTONIC shifted: %d\n", who, shifted_by(sys_ns(CLOCK_MONOTONIC), host_mono, MONO_OFF));
	printf("%s: MONOTONIC_COARSE shifted: %d\n", who,
	       shifted_by(libc_ns(CLOCK_MONOTONIC_COARSE), host_mono, MONO_OFF));
	printf("%s: BOOTTIME shifted: %d\n", who, shifted_by(libc_ns(CLOCK_BOOTTIME), host_boot, BOOT_OFF));
	printf("%s: REALTIME not shifted: %d\n", who, shifted_by(libc_ns(CLOCK_REALTIME), libc_ns(CLOCK_REALTIME), 0));
}

static int64_t real_since(int64_t start) { return libc_ns(CLOCK_REALTIME) - start; }

static void sleeps_and_timers(void)
{
	/* each wakes 50 ms ahead on the namespace's clock: a host-time reading
	 * would be MONO_OFF seconds off (at once, or a day later) */
	struct timespec at;
	int64_t start = libc_ns(CLOCK_REALTIME), t = libc_ns(CLOCK_MONOTONIC) + NS / 20;
	at.tv_sec = t / NS; at.tv_nsec = t % NS;
	printf("clock_nanosleep abs = %d\n", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL));
	int64_t slept = real_since(start);
	printf("slept 40ms..5s: %d\n", slept > NS / 25 && slept < 5 * NS);

	int tfd = timerfd_create(CLOCK_BOOTTIME, 0);
	start = libc_ns(CLOCK_REALTIME);
	t = libc_ns(CLOCK_BOOTTIME) + NS / 20;
	struct itimerspec its = { { 0, 0 }, { t / NS, t % NS } }, old;
	T(timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, &old));
	uint64_t n = 0;
	T(read(tfd, &n, sizeof n));
	slept = real_since(start);
	printf("timerfd expirations %llu, 40ms..5s: %d\n", (unsigned long long)n, slept > NS / 25 && slept < 5 * NS);
	its.it_value.tv_nsec = NS;                              /* invalid */
	T(timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL));
	T(timerfd_settime(tfd, 8 | TFD_TIMER_ABSTIME, &its, NULL));
	T(timerfd_settime(tfd, TFD_TIMER_ABSTIME, (void *)8, NULL));
	close(tfd);

	sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	timer_t timer;
	T(timer_create(CLOCK_MONOTONIC, &ev, &timer));
	start = libc_ns(CLOCK_REALTIME);
	t = libc_ns(CLOCK_MONOTONIC) + NS / 20;
	its.it_value.tv_sec = t / NS; its.it_value.tv_nsec = t % NS;
	T(timer_settime(timer, TIMER_ABSTIME, &its, NULL));
	int sig = 0;
	sigwait(&set, &sig);
	slept = real_since(start);
	printf("timer signal %s, 40ms..5s: %d\n", sigabbrev_np(sig), slept > NS / 25 && slept < 5 * NS);
}

static long proc_uptime(void)
{
	char buf[64] = "";
	int fd = open("/proc/uptime", O_RDONLY);
	read(fd, buf, sizeof buf - 1);
	close(fd);
	return atol(buf);
}

/* field 22 of /proc/self/stat, in clock ticks since boot, against /proc/uptime */
static int started_lately(void)
{
	char buf[1024] = "";
	int fd = open("/proc/self/stat", O_RDONLY);
	read(fd, buf, sizeof buf - 1);
	close(fd);
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++) p = strchr(p + 1, ' ');
	long long start = p ? atoll(p + 1) / sysconf(_SC_CLK_TCK) : -1;
	long up = proc_uptime();
	return start >= 0 && start <= up && up - start < 60;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[2], "exec") == 0) {
		/* the host's clocks from the environment the parent left */
		clocks("after exec", atoll(getenv("HOST_MONO")), atoll(getenv("HOST_BOOT")));
		return 0;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	int sandbox_ns = open("/proc/self/ns/time_for_children", O_RDONLY);
	printf("-- unshare\n");
	T(unshare(CLONE_NEWTIME));
	printf("time and time_for_children differ: %d\n",
	       !same_link("/proc/self/ns/time", "/proc/self/ns/time_for_children"));
	show_offsets();
	/* a child sharing the memory stays in the caller's namespace, which
	 * therefore takes offsets still */
	pid_t vpid = vfork();
	if (vpid == 0) _exit(same_link("/proc/self/ns/time", "/proc/self/ns/time_for_children") ? 1 : 0);
	int vst;
	waitpid(vpid, &vst, 0);
	status("vfork child (time is not time_for_children)", vst);
	write_offsets("2 1 0\n");
	write_offsets("1 1 1000000000\n");
	write_offsets("monotonic x 0\n");
	write_offsets("1 -9999999999 0\n");
	write_offsets("1 100000 0\n7 3600 0\n");
	show_offsets();
	int64_t host_mono = libc_ns(CLOCK_MONOTONIC), host_boot = libc_ns(CLOCK_BOOTTIME);
	printf("the caller's own clocks are not shifted: %d\n",
	       shifted_by(sys_ns(CLOCK_MONOTONIC), host_mono, 0));
	struct sysinfo si;
	sysinfo(&si);
	long host_uptime = si.uptime;

	printf("-- a child enters it\n");
	pid_t pid = fork();
	if (pid == 0) {
		printf("child's time is the parent's time_for_children: %d\n",
		       same_link("/proc/self/ns/time", "/proc/self/ns/time_for_children"));
		write_offsets("1 5 0\n");
		clocks("child", host_mono, host_boot);
		sysinfo(&si);
		printf("sysinfo uptime shifted: %d\n", si.uptime - host_uptime >= BOOT_OFF
		       && si.uptime - host_uptime <= BOOT_OFF + 5);
		printf("/proc/uptime agrees: %d\n", si.uptime - proc_uptime() >= 0 && si.uptime - proc_uptime() <= 1);
		printf("/proc/self/stat's start time within the last minute of uptime: %d\n", started_lately());
		sleeps_and_timers();
		char m[32], b[32];
		snprintf(m, sizeof m, "%lld", (long long)host_mono);
		snprintf(b, sizeof b, "%lld", (long long)host_boot);
		setenv("HOST_MONO", m, 1);
		setenv("HOST_BOOT", b, 1);
		execl("/proc/self/exe", argv[0], argv[1], "exec", (char *)NULL);
		_exit(99);
	}
	int st;
	waitpid(pid, &st, 0);
	status("child", st);
	write_offsets("1 7 0\n");

	printf("-- clone3 with CLONE_NEWTIME\n");
	struct clone_args a = { .flags = CLONE_NEWTIME, .exit_signal = SIGCHLD };
	pid = syscall(SYS_clone3, &a, sizeof a);
	if (pid == 0) {
		write_offsets("1 5 0\n");
		show_offsets();
		clocks("clone3 child", host_mono, host_boot);
		printf("-- setns back to the first namespace\n");
		T(setns(sandbox_ns, CLONE_NEWUTS));
		T(setns(open("/proc/self/exe", O_RDONLY), 0));
		T(setns(sandbox_ns, CLONE_NEWTIME));
		int64_t mono = sys_ns(CLOCK_MONOTONIC);
		printf("clocks not shifted: %d %d\n", shifted_by(libc_ns(CLOCK_MONOTONIC), mono, 0),
		       shifted_by(libc_ns(CLOCK_BOOTTIME), sys_ns(CLOCK_BOOTTIME), 0));
		printf("time and time_for_children the same: %d\n",
		       same_link("/proc/self/ns/time", "/proc/self/ns/time_for_children"));
		_exit(0);
	}
	waitpid(pid, &st, 0);
	status("clone3 child", st);
	return 0;
}
