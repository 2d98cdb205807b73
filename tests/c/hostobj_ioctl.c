/* ioctl requests on a file the guest may only read, a pipe and a pty:
 * the ones sentry offers answer as natively, any other is ENOTTY.
 * Usage: hostobj_ioctl PATH [setters]  (setters: also the requests that
 * would change PATH's inode, which natively root may make) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pty.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include "transcript.h"

int main(int argc, char **argv)
{
	int fd = open(argv[1], O_RDONLY);
	long v = 0;
	int i = 0, p[2];
	struct termios t;
	char fiemap[sizeof(struct fiemap) + 4 * sizeof(struct fiemap_extent)] = { 0 };
	((struct fiemap *)fiemap)->fm_length = ~0ULL;
	((struct fiemap *)fiemap)->fm_extent_count = 4;
	T(fd >= 0);
	T(ioctl(fd, FS_IOC_GETVERSION, &v) >= 0);
	T(ioctl(fd, FS_IOC_GETFLAGS, &i) >= 0);
	T(ioctl(fd, FIGETBSZ, &i));
	T(ioctl(fd, FS_IOC_FIEMAP, fiemap));
	T(ioctl(fd, FIONREAD, &i));
	T(ioctl(fd, FIOCLEX));
	T(ioctl(fd, FIONCLEX));
	T(ioctl(fd, TCGETS, &t));
	T(pipe(p));
	T(write(p[1], "abc", 3));
	T(ioctl(p[0], FIONREAD, &i));
	printf("FIONREAD says %d\n", i);
	T(ioctl(p[0], FIONBIO, &(int){1}));
	int m, s;
	T(openpty(&m, &s, NULL, NULL, NULL));
	T(ioctl(s, TCGETS, &t));
	T(ioctl(m, TIOCGPTN, &i));
	struct winsize ws = { 24, 80, 0, 0 };
	T(ioctl(m, TIOCSWINSZ, &ws));
	T(ioctl(s, TIOCGWINSZ, &ws));
	printf("winsize %d %d\n", ws.ws_row, ws.ws_col);
	T(ioctl(m, TIOCGPKT, &i));
	T(ioctl(s, TCSBRK, 1));
	T(ioctl(fd, 0x1234ABCD, 0));                  /* no such request */
	T(ioctl(1000, 0x1234ABCD, 0));                /* the Sentry's fd: EBADF first */
	T(ioctl(-1, 0x1234ABCD, 0));
	if (argc > 2) {
		T(ioctl(fd, _IO('X', 119), 0));       /* FITHAW */
		T(ioctl(m, TIOCSIG, SIGINT));
		v = 4242;
		T(ioctl(fd, FS_IOC_SETVERSION, &v));
		T(syscall(SYS_ioctl, fd, 0xFFFFFFFF00000000UL | FS_IOC_SETVERSION, &v));
		T(ioctl(fd, FS_IOC32_SETVERSION, &v));
		i = FS_NOATIME_FL;
		T(ioctl(fd, FS_IOC_SETFLAGS, &i));
	}
	return 0;
}
