/* Attribute changes through an fd the guest was handed (stdin, stdout):
 * every call that changes an inode's mode, owner, times, xattrs or flags
 * without a path.  The transcript goes to stderr (stdout may be the file).
 *
 * Usage: hostobj_attrs FD            each call once on FD
 *        hostobj_attrs race FD PATH  a thread swaps FD and PATH (a file of the
 *                                    sandbox) at one fd number while the
 *                                    calls run on that number for 2 s */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

#define T(expr) do { long r_ = (long)(expr); \
	if (r_ < 0) fprintf(stderr, "%s = -1 %s\n", #expr, strerrorname_np(errno)); \
	else fprintf(stderr, "%s = %ld\n", #expr, r_); } while (0)

static const struct timespec epoch[2] = { { 0, 0 }, { 0, 0 } };
static const struct timeval epoch_tv[2] = { { 0, 0 }, { 0, 0 } };

static void each_call(int fd)
{
	int flags = FS_NOATIME_FL;
	T(fchmod(fd, 0777));
	T(fchown(fd, 4242, 4242));
	T(fchown(fd, -1, -1));
	T(fchownat(fd, "", 4242, -1, AT_EMPTY_PATH));
	T(syscall(SYS_fchmodat2, fd, "", 0777, AT_EMPTY_PATH));
	T(fsetxattr(fd, "user.evil", "1", 1, 0));
	T(fremovexattr(fd, "user.keep"));
	T(utimensat(fd, NULL, epoch, 0));
	T(syscall(SYS_utimensat, fd, "", epoch, AT_EMPTY_PATH));
	T(syscall(SYS_futimesat, fd, NULL, epoch_tv));
	T(ioctl(fd, FS_IOC_SETFLAGS, &flags));
}

static int target, host, own;
static volatile int stop;

static void *swapper(void *arg)
{
	(void)arg;
	while (!stop) {
		dup2(host, target);
		dup2(own, target);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2) {
		each_call(atoi(argv[1]));
		return 0;
	}
	if (argc != 4 || strcmp(argv[1], "race")) return 2;
	host = atoi(argv[2]);
	own = open(argv[3], O_RDWR);
	if (own < 0) { perror(argv[3]); return 1; }
	target = dup(own);
	pthread_t t;
	pthread_create(&t, 0, swapper, 0);
	long ok = 0, refused = 0;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	int flags = FS_NOATIME_FL;
	do {
		int r[] = {
			fchmod(target, 0777), fchown(target, 4242, 4242),
			fchownat(target, "", 4242, -1, AT_EMPTY_PATH),
			(int)syscall(SYS_fchmodat2, target, "", 0777, AT_EMPTY_PATH),
			fsetxattr(target, "user.evil", "1", 1, 0), fremovexattr(target, "user.keep"),
			utimensat(target, NULL, epoch, 0), ioctl(target, FS_IOC_SETFLAGS, &flags),
		};
		for (unsigned i = 0; i < sizeof r / sizeof *r; i++) {
			if (r[i] == 0) ok++; else refused++;
		}
		fsetxattr(own, "user.keep", "1", 1, 0);     /* for the next fremovexattr */
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < 2);
	stop = 1;
	pthread_join(t, 0);
	fprintf(stderr, "race: ok %s, refused %s\n", ok ? "some" : "none", refused ? "some" : "none");
	return 0;
}
