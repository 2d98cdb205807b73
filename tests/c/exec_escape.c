/* Exec attacks of a hostile guest on the Sentry's interpreter handling
 * (tests/test_exec_escape.py).  Usage:
 *
 *   exec_escape run TARGET [SRC DST]...
 *       copy each SRC to DST (the guest writes its files), then exec TARGET
 *       in a child and report how that went
 *   exec_escape cache SRC DST
 *       DST := SRC, a PIE with a PT_INTERP; turn its PT_INTERP header into
 *       PT_NULL, exec it (a static program now), write the header back in
 *       place, restore the mtime, exec it again
 *   exec_escape race SRC DST SECONDS
 *       the same, racing: after one exec as a static program, one thread
 *       flips the header (restoring the mtime each time) while the main
 *       thread execs DST again and again
 *   exec_escape threadexec N MARK
 *       exec itself from a new (non-leader) thread, N times; stops twice to
 *       read a line from stdin, after MARK execs are left and at the end
 *
 * A child's report: "exit=N", "signal=N" or "errno=N" (its exec failed);
 * what the exec'd program printed comes before it. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	printf("fail: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void copy(const char *src, const char *dst)
{
	char buf[65536];
	int in = open(src, O_RDONLY), out;
	if (in < 0) die(src);
	unlink(dst);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (out < 0) die(dst);
	for (ssize_t n; (n = read(in, buf, sizeof buf)) > 0;)
		if (write(out, buf, n) != n) die("write");
	close(in);
	close(out);
}

/* Offset of the type field of the file's PT_INTERP program header. */
static off_t interp_header(const char *path)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd = open(path, O_RDONLY);
	if (fd < 0 || pread(fd, &eh, sizeof eh, 0) != sizeof eh) die(path);
	for (int i = 0; i < eh.e_phnum; i++) {
		off_t off = eh.e_phoff + (off_t)i * eh.e_phentsize;
		if (pread(fd, &ph, sizeof ph, off) != sizeof ph) die("pread");
		if (ph.p_type == PT_INTERP) {
			close(fd);
			return off;
		}
	}
	errno = ENOEXEC;
	die("no PT_INTERP");
	return 0;
}

/* Writes the header's type in place and gives the file its mtime back:
 * same inode, size and mtime, other content.  0, or -1 with ETXTBSY while
 * the file is being executed. */
static int set_type(const char *path, off_t off, uint32_t type, const struct timespec *times)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0) return -1;
	if (pwrite(fd, &type, sizeof type, off) != sizeof type) die("pwrite");
	if (times && futimens(fd, times)) die("futimens");
	close(fd);
	return 0;
}

/* Execs path in a child whose stdout is a pipe; returns what it printed
 * followed by its report. */
static char *run(const char *path, char *out, size_t size)
{
	int p[2], status;
	size_t len = 0;
	fflush(stdout);
	if (pipe(p)) die("pipe");
	pid_t pid = fork();
	if (pid < 0) die("fork");
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		char *argv[] = { (char *)path, NULL };
		execv(path, argv);
		printf("errno=%d\n", errno);
		fflush(stdout);
		_exit(100);
	}
	close(p[1]);
	for (ssize_t n; len < size - 1 && (n = read(p[0], out + len, size - 1 - len)) > 0;)
		len += n;
	close(p[0]);
	out[len] = 0;
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status))
		snprintf(out + len, size - len, "signal=%d\n", WTERMSIG(status));
	else if (WEXITSTATUS(status) != 100)
		snprintf(out + len, size - len, "exit=%d\n", WEXITSTATUS(status));
	return out;
}

static int cache(const char *src, const char *dst)
{
	char out[4096];
	struct stat st;
	copy(src, dst);
	off_t off = interp_header(dst);
	if (set_type(dst, off, PT_NULL, NULL)) die("set_type");
	if (stat(dst, &st)) die("stat");
	fputs(run(dst, out, sizeof out), stdout);          /* static: base=0 */
	struct timespec times[2] = { st.st_atim, st.st_mtim };
	if (set_type(dst, off, PT_INTERP, times)) die("set_type");
	struct stat now;
	if (stat(dst, &now)) die("stat");
	if (now.st_ino == st.st_ino && now.st_size == st.st_size &&
	    now.st_mtim.tv_sec == st.st_mtim.tv_sec && now.st_mtim.tv_nsec == st.st_mtim.tv_nsec)
		puts("restored");
	fputs(run(dst, out, sizeof out), stdout);
	return 0;
}

static const char *race_path;
static off_t race_off;
static struct timespec race_times[2];
static volatile int stop;

static void *flipper(void *arg)
{
	uint32_t type = PT_NULL;
	while (!stop) {
		if (set_type(race_path, race_off, type, race_times) == 0)
			type = type == PT_NULL ? PT_INTERP : PT_NULL;
	}
	return arg;
}

static int race(const char *src, const char *dst, int seconds)
{
	char out[4096];
	struct stat st;
	long stat_ = 0, killed = 0, failed = 0, escaped = 0, other = 0;
	long errnos[256] = { 0 };
	copy(src, dst);
	race_path = dst;
	race_off = interp_header(dst);
	/* first a static program, once: what a cache of the Sentry would keep */
	if (set_type(dst, race_off, PT_NULL, NULL)) die("set_type");
	if (stat(dst, &st)) die("stat");
	race_times[0] = st.st_atim;
	race_times[1] = st.st_mtim;
	if (strcmp(run(dst, out, sizeof out), "base=0\nexit=0\n")) {
		printf("first run: %s", out);
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, flipper, NULL);
	time_t end = time(NULL) + seconds;
	while (time(NULL) < end) {
		run(dst, out, sizeof out);
		int e, n = 0;
		if (strstr(out, "ESCAPED")) escaped++;
		else if (!strcmp(out, "base=0\nexit=0\n")) stat_++;
		else if (!strcmp(out, "signal=9\n")) killed++;
		else if (sscanf(out, "errno=%d\n%n", &e, &n) == 1 && n && !out[n]) {
			failed++;
			errnos[e & 255]++;
		} else {
			other++;
			fprintf(stderr, "other: %s", out);
		}
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("static=%ld killed=%ld failed=%ld escaped=%ld other=%ld", stat_, killed, failed, escaped, other);
	for (int e = 0; e < 256; e++)
		if (errnos[e]) printf(" errno%d=%ld", e, errnos[e]);
	printf("\n");
	return 0;
}

static char *self, *left, *mark;

static void *exec_self(void *arg)
{
	char n[16];
	snprintf(n, sizeof n, "%d", atoi(left) - 1);
	char *argv[] = { self, "threadexec", n, mark, NULL };
	execv(self, argv);
	die("execv");
	return arg;
}

static void wait_for_line(const char *say)
{
	char line[16];
	puts(say);
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin)) exit(0);
}

static int threadexec(void)
{
	if (atoi(left) == atoi(mark)) wait_for_line("mark");
	if (atoi(left) == 0) {
		wait_for_line("end");
		return 0;
	}
	pthread_t t;
	pthread_create(&t, NULL, exec_self, NULL);
	pthread_join(t, NULL);      /* the exec ends this thread */
	return 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "run")) {
		char out[4096];
		for (int i = 3; i + 1 < argc; i += 2)
			copy(argv[i], argv[i + 1]);
		fputs(run(argv[2], out, sizeof out), stdout);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "cache"))
		return cache(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "race"))
		return race(argv[2], argv[3], atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "threadexec")) {
		self = argv[0], left = argv[2], mark = argv[3];
		return threadexec();
	}
	fprintf(stderr, "usage: see the comment at the top of exec_escape.c\n");
	return 2;
}
