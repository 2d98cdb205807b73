/* fchmod, fchown and futimens (utimensat(fd, NULL, ...)) on fds of files
 * the guest made itself, and chmod, fchmodat, chown, lchown, fchownat and
 * utimensat on their paths, with their errors: the calls native/fastpath.c
 * answers in C, and the cases it leaves to Python.  Prints one line per
 * call (its result, errno name) and the file's attributes after each group,
 * on stdout; nothing that differs from run to run (inodes, "now").
 *
 * Usage: fd_attrs DIR             the cases to compare with Linux
 *        fd_attrs DIR LOWERFILE   and those only a sandbox has: a pipe,
 *                                 a hidden fd number, /dev/null, a file of a
 *                                 read-only layer (LOWERFILE, opened O_RDONLY)
 *        fd_attrs race DIR N [HOSTFILE]
 *                                 N threads swap a file of DIR and stdin (a
 *                                 host file) at one fd number while the calls
 *                                 run on that number for 2 s */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define T(expr) do { errno = 0; long r_ = (long)(expr); \
	if (r_ < 0) printf("%s = -1 %s\n", #expr, strerrorname_np(errno)); \
	else printf("%s = %ld\n", #expr, r_); } while (0)

static void print_st(const char *what, const struct stat *st)
{
	/* times set by the calls are before 2020; others are the clock's */
	printf("%s: mode %o uid %u gid %u", what, st->st_mode & 07777, st->st_uid, st->st_gid);
	if (st->st_atim.tv_sec < 1600000000) printf(" atime %ld.%09ld", (long)st->st_atim.tv_sec, st->st_atim.tv_nsec);
	else printf(" atime recent");
	if (st->st_mtim.tv_sec < 1600000000) printf(" mtime %ld.%09ld\n", (long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	else printf(" mtime recent\n");
}

static void show(const char *what, int fd)
{
	struct stat st;
	if (fstat(fd, &st)) { printf("%s: fstat %s\n", what, strerrorname_np(errno)); return; }
	print_st(what, &st);
}

/* times set to now: they moved past `before` */
static void print_now(const char *what, const struct stat *st, time_t before)
{
	printf("%s: atime now %d mtime now %d\n", what, st->st_atim.tv_sec >= before, st->st_mtim.tv_sec >= before);
}

static void show_now(const char *what, int fd, time_t before)
{
	struct stat st;
	fstat(fd, &st);
	print_now(what, &st, before);
}

static long utimens(int fd, const void *path, const void *times, int flags)
{
	return syscall(SYS_utimensat, fd, path, times, flags);
}

static void show_path(const char *what)
{
	struct stat st;
	if (lstat(what, &st)) { printf("%s: lstat %s\n", what, strerrorname_np(errno)); return; }
	print_st(what, &st);
}

/* The same changes by path: the last name followed or not as each call
 * says, through a dirfd, and their errors. */
static void paths(const char *dir)
{
	if (chdir(dir)) { printf("chdir: %s\n", strerrorname_np(errno)); return; }
	uid_t uid = getuid();
	gid_t gid = getgid();
	unlink("pa_file"); unlink("pa_link"); rmdir("pa_dir");
	int f = open("pa_file", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (f < 0 || symlink("pa_file", "pa_link") || mkdir("pa_dir", 0700)) { printf("paths: setup failed\n"); return; }
	close(f);
	int d = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct timespec ts[2] = { { 1000000000, 123456789 }, { 1100000000, 987654321 } };
	struct timespec ts2[2] = { { 1200000000, 1 }, { 1300000000, 2 } };

	T(chmod("pa_file", 0640));
	T(chmod("pa_link", 0604));                 /* its target */
	T(syscall(SYS_fchmodat, AT_FDCWD, "pa_dir", 0750));
	T(syscall(SYS_fchmodat, d, "pa_file", 0170644));   /* the type bits are ignored */
	T(chmod("pa_file", 04755));
	show_path("pa_file");
	show_path("pa_dir");
	T(chmod("pa_file", 0600));
	T(chmod("missing", 0600));                 /* ENOENT */
	T(chmod("pa_file/x", 0600));               /* ENOTDIR */
	T(chmod("", 0600));                        /* ENOENT */
	T(chmod("pa_dir/", 0700));

	T(chown("pa_file", uid, gid));
	T(chown("pa_link", -1, -1));
	T(lchown("pa_link", uid, gid));
	T(chown("pa_file", 4242, -1));             /* root: done; another user: EPERM */
	T(lchown("pa_link", -1, 4243));
	show_path("pa_file");
	show_path("pa_link");
	T(chown("pa_file", uid, gid));
	T(lchown("pa_link", uid, gid));
	T(syscall(SYS_fchownat, d, "pa_dir", uid, gid, 0));
	T(syscall(SYS_fchownat, AT_FDCWD, "pa_link", uid, -1, AT_SYMLINK_NOFOLLOW));
	T(syscall(SYS_fchownat, AT_FDCWD, "pa_link", uid, -1, 0x4));    /* EINVAL */
	T(syscall(SYS_fchownat, AT_FDCWD, "missing", uid, -1, 0));      /* ENOENT */
	T(syscall(SYS_fchownat, d, "", uid, -1, 0));                    /* ENOENT */

	T(utimens(AT_FDCWD, "pa_file", ts, 0));
	T(utimens(AT_FDCWD, "pa_link", ts2, AT_SYMLINK_NOFOLLOW));     /* the link's own */
	T(utimens(d, "pa_dir", ts2, 0));
	show_path("pa_file");
	show_path("pa_link");
	show_path("pa_dir");
	struct timespec omit[2] = { { 5, UTIME_OMIT }, { 1400000000, 5 } };
	T(utimens(AT_FDCWD, "pa_link", omit, 0));  /* its target */
	show_path("pa_file");
	time_t before = time(NULL) - 1;
	T(utimens(AT_FDCWD, "pa_file", NULL, 0));
	struct stat st;
	lstat("pa_file", &st);
	print_now("pa_file", &st, before);
	struct timespec bad[2] = { { 0, 1000000000 }, { 0, 0 } };
	T(utimens(AT_FDCWD, "pa_file", bad, 0));           /* EINVAL */
	T(utimens(AT_FDCWD, "pa_file", (void *)8, 0));     /* EFAULT */
	T(utimens(AT_FDCWD, "pa_file", ts, 0x8000));       /* EINVAL */
	T(utimens(AT_FDCWD, "missing", ts, 0));            /* ENOENT */
	T(utimens(AT_FDCWD, "pa_file/x", ts, 0));          /* ENOTDIR */
	T(utimens(987, "pa_file", ts, 0));                 /* relative to nothing: EBADF */
	close(d);
	if (chdir("/")) printf("chdir /: %s\n", strerrorname_np(errno));
}

static void common(const char *dir)
{
	char p[4096];
	uid_t uid = getuid();
	gid_t gid = getgid();
	snprintf(p, sizeof p, "%s/fa_file", dir);
	unlink(p);
	int f = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int o = open(p, O_PATH | O_CLOEXEC);
	snprintf(p, sizeof p, "%s/fa_dir", dir);
	rmdir(p);
	mkdir(p, 0700);
	int d = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(p, sizeof p, "%s/fa_gone", dir);
	int g = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	unlink(p);
	if (f < 0 || o < 0 || d < 0 || g < 0) { printf("setup failed: %s\n", strerrorname_np(errno)); exit(1); }

	T(fchmod(f, 0640));
	T(fchmod(f, 0170755));                /* the type bits are ignored */
	T(fchmod(f, 04755));
	show("file", f);
	T(fchmod(f, 0600));
	T(fchmod(d, 0750));
	show("dir", d);
	T(fchmod(o, 0644));                   /* O_PATH: EBADF */
	T(fchmod(-1, 0644));
	T(fchmod(987, 0644));
	T(fchmod(g, 0604));                   /* a deleted file */
	show("gone", g);

	T(fchown(f, -1, -1));
	T(fchown(f, uid, gid));
	T(fchown(f, uid, -1));
	T(fchown(f, -1, gid));
	show("file", f);
	T(fchown(f, 4242, -1));               /* root: done; another user: EPERM */
	T(fchown(f, -1, 4243));
	show("file", f);
	T(fchown(f, uid, gid));
	T(fchown(d, uid, gid));
	T(fchown(o, uid, gid));
	T(fchown(-1, uid, gid));
	T(fchown(g, -1, -1));

	struct timespec ts[2] = { { 1000000000, 123456789 }, { 1100000000, 987654321 } };
	T(utimens(f, NULL, ts, 0));
	show("file", f);
	struct timespec omit[2] = { { 5, UTIME_OMIT }, { 1200000000, 5 } };
	T(utimens(f, NULL, omit, 0));
	show("file", f);
	struct timespec omit2[2] = { { 5, UTIME_OMIT }, { 6, UTIME_OMIT } };
	T(utimens(f, NULL, omit2, 0));
	show("file", f);
	time_t before = time(NULL) - 1;
	T(utimens(f, NULL, NULL, 0));
	show_now("file", f, before);
	struct timespec now_omit[2] = { { 0, UTIME_NOW }, { 0, UTIME_OMIT } };
	T(utimens(f, NULL, ts, 0));
	T(utimens(f, NULL, now_omit, 0));
	show_now("file", f, before);
	struct timespec bad[2] = { { 0, 1000000000 }, { 0, 0 } };
	T(utimens(f, NULL, bad, 0));          /* EINVAL */
	T(utimens(f, NULL, (void *)8, 0));    /* EFAULT */
	T(utimens(AT_FDCWD, NULL, ts, 0));    /* EFAULT */
	T(utimens(f, NULL, ts, AT_SYMLINK_NOFOLLOW));   /* EINVAL */
	T(utimens(f, NULL, ts, 0x8000));      /* EINVAL */
	T(utimens(o, NULL, ts, 0));           /* O_PATH: EBADF */
	T(utimens(-1, NULL, ts, 0));
	T(utimens(987, NULL, ts, 0));
	T(utimens(d, NULL, ts, 0));
	show("dir", d);
	T(utimens(g, NULL, ts, 0));
	show("gone", g);
	show("file", f);
	close(f); close(o); close(d); close(g);
	paths(dir);
}

static void sandbox_only(const char *lower)
{
	int pipefd[2];
	pipe(pipefd);
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	T(fchmod(pipefd[0], 0600));           /* outside every mount: EPERM */
	T(fchown(pipefd[0], -1, -1));
	T(utimens(pipefd[0], NULL, ts, 0));
	T(fchmod(1000, 0600));                /* a hidden fd number: EBADF */
	T(fchown(1000, -1, -1));
	T(utimens(1000, NULL, ts, 0));
	int n = open("/dev/null", O_RDWR | O_CLOEXEC);
	T(fchmod(n, 0600));
	T(fchown(n, -1, -1));
	T(utimens(n, NULL, ts, 0));
	int l = open(lower, O_RDONLY | O_CLOEXEC);
	if (l < 0) { printf("%s: %s\n", lower, strerrorname_np(errno)); return; }
	T(fchmod(l, 0600));                   /* the read-only layer: EROFS */
	T(fchown(l, -1, -1));
	T(utimens(l, NULL, ts, 0));
	T(utimens(l, NULL, NULL, 0));
	T(chmod("/dev/null", 0666));          /* a read-only mount: EROFS */
	T(utimens(AT_FDCWD, "/dev/null", ts, 0));
}

static int target, host, own;
static volatile int stop;
static char path_raced[4096], path_own[4096];
static const char *host_path;

/* The raced path: a file of DIR, or a symlink to a host file the sandbox
 * shows read-only (HOSTFILE), in turn. */
static void *path_swapper(void *arg)
{
	(void)arg;
	char link[4200];
	snprintf(link, sizeof link, "%s.link", path_raced);
	while (!stop) {
		symlink(host_path, link);
		rename(link, path_raced);
		rename(path_own, path_raced);
		close(open(path_own, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	}
	return 0;
}

static void *swapper(void *arg)
{
	(void)arg;
	while (!stop) {
		dup2(host, target);
		dup2(own, target);
	}
	return 0;
}

static int race(const char *dir, int nthreads, const char *hostfile)
{
	char p[4096];
	pthread_t pt;
	if (hostfile) {
		host_path = hostfile;
		snprintf(path_raced, sizeof path_raced, "%s/fa_path", dir);
		snprintf(path_own, sizeof path_own, "%s/fa_path.own", dir);
		close(open(path_own, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
		pthread_create(&pt, 0, path_swapper, 0);
	}
	snprintf(p, sizeof p, "%s/fa_raced", dir);
	own = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (own < 0) { perror(p); return 1; }
	host = 0;
	target = dup(own);
	pthread_t t[8];
	if (nthreads > 8) nthreads = 8;
	for (int i = 0; i < nthreads; i++) pthread_create(&t[i], 0, swapper, 0);
	long ok = 0, refused = 0;
	struct timespec start, now, ts[2] = { { 0, 0 }, { 0, 0 } };
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		int r[] = {
			fchmod(target, 0777), fchown(target, 4242, 4242),
			(int)utimens(target, NULL, ts, 0), (int)utimens(target, NULL, NULL, 0),
			hostfile ? chmod(path_raced, 0777) : 0, hostfile ? chown(path_raced, 4242, 4242) : 0,
			hostfile ? (int)utimens(AT_FDCWD, path_raced, ts, 0) : 0,
			hostfile ? lchown(path_raced, 4242, 4242) : 0,
		};
		for (unsigned i = 0; i < (hostfile ? sizeof r / sizeof *r : 4); i++) {
			if (r[i] == 0) ok++; else refused++;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < 2);
	stop = 1;
	for (int i = 0; i < nthreads; i++) pthread_join(t[i], 0);
	if (hostfile) pthread_join(pt, 0);
	printf("race: ok %s, refused %s\n", ok ? "some" : "none", refused ? "some" : "none");
	printf("calls: %ld\n", ok + refused);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	umask(022);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "race"))
		return race(argv[2], atoi(argv[3]), argc == 5 ? argv[4] : NULL);
	if (argc < 2) return 2;
	common(argv[1]);
	if (argc == 3) sandbox_only(argv[2]);
	return 0;
}
