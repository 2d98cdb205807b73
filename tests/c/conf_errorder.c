/* Conformance: which error a call gives when several apply.  Linux checks a
 * call's flags and other arguments before it reads or looks up a path; the
 * Sentry, which resolves paths itself, must answer in the same order.  Each
 * call runs on a missing path, an existing file and an existing directory.
 * Usage: conf_errorder SCRATCH */
#include "transcript.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

int main(int argc, char **argv)
{
	if (argc < 2 || chdir(argv[1])) return 2;
	setvbuf(stdout, 0, _IONBF, 0);
	if (mkdir("d", 0755) || close(open("f", O_CREAT | O_WRONLY, 0644)) || symlink("f", "l")) return 3;
	char buf[64];
	struct timespec bad_ts[2] = {{0, 1000000000L}, {0, 0}}, ts[2] = {{0, 0}, {0, 0}};
	struct stat st;
	struct statx sx;
	int ino = inotify_init1(IN_CLOEXEC);
	const char *paths[] = { "missing/x", "f", "d", "l" };
	for (unsigned k = 0; k < sizeof paths / sizeof *paths; k++) {
		const char *p = paths[k];
		printf("-- %s\n", p);
		T(syscall(SYS_renameat2, AT_FDCWD, p, AT_FDCWD, "new", 3));          /* NOREPLACE|EXCHANGE */
		T(syscall(SYS_renameat2, AT_FDCWD, p, AT_FDCWD, "new", 6));          /* EXCHANGE|WHITEOUT */
		T(syscall(SYS_renameat2, AT_FDCWD, p, AT_FDCWD, "new", 1 << 5));     /* unknown */
		T(linkat(AT_FDCWD, p, AT_FDCWD, "new", 0x1));
		T(unlinkat(AT_FDCWD, p, 0x1));
		T(fchownat(AT_FDCWD, p, 0, 0, 0x2));
		T(syscall(SYS_faccessat2, AT_FDCWD, p, F_OK, 0x1));
		T(faccessat(AT_FDCWD, p, 8, 0));
		T(utimensat(AT_FDCWD, p, ts, 0x2));
		T(utimensat(AT_FDCWD, p, bad_ts, 0));
		T(syscall(SYS_statx, AT_FDCWD, p, 0x8, 0xfff, &sx));
		T(syscall(SYS_statx, AT_FDCWD, p, 0x6000, 0xfff, &sx));
		T(syscall(SYS_statx, AT_FDCWD, p, 0, 0x80000000u, &sx));
		T(syscall(SYS_newfstatat, AT_FDCWD, p, &st, 0x2));
		T(readlinkat(AT_FDCWD, p, buf, 0));
		T(syscall(SYS_fchmodat2, AT_FDCWD, p, 0644, 0x2));
		T(open(p, O_TMPFILE | O_RDONLY));
		T(open(p, O_TMPFILE | O_CREAT | O_RDWR, 0600));
		T(open(p, __O_TMPFILE | O_RDWR, 0600));
		T(open(p, O_CREAT | O_DIRECTORY | O_RDWR, 0644));
		struct open_how how = { .flags = O_RDONLY, .resolve = 0x80 };
		T(syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof how));
		how = (struct open_how){ .flags = O_RDONLY, .mode = 0644 };
		T(syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof how));
		how = (struct open_how){ .flags = O_PATH | O_RDWR };
		T(syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof how));
		how = (struct open_how){ .flags = O_RDONLY, .resolve = RESOLVE_BENEATH | RESOLVE_IN_ROOT };
		T(syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof how));
		T(mknodat(AT_FDCWD, p, S_IFDIR | 0755, 0));
		T(mknodat(AT_FDCWD, p, 0170000 | 0755, 0));
		T(setxattr(p, "user.x", "v", 1, 4));
		T(setxattr(p, "", "v", 1, 0));
		T(getxattr(p, "", buf, sizeof buf));
		T(inotify_add_watch(ino, p, 0));
		T(inotify_add_watch(ino, p, IN_MASK_ADD | IN_MASK_CREATE | IN_ATTRIB));
		T(inotify_add_watch(999, p, IN_ATTRIB));
		T(syscall(SYS_execveat, AT_FDCWD, p, 0, 0, 0x2));
		/* f is not executable (EACCES), l a symlink (ELOOP) */
		char *args[] = { "x", 0 };
		T(syscall(SYS_execveat, AT_FDCWD, p, args, args + 1, AT_SYMLINK_NOFOLLOW));
		T(syscall(SYS_mkdirat, -5, p, 0755));
	}
	/* O_CREAT of a file that exists on a read-only file system opens it;
	 * openat2 refuses a mode beyond S_IALLUGO */
	struct open_how ch = { .flags = O_RDONLY | O_CREAT, .mode = 0400 };
	int pf = syscall(SYS_openat2, AT_FDCWD, "/proc/version", &ch, sizeof ch);
	T(pf >= 0); close(pf);
	pf = open("/proc/version", O_RDONLY | O_CREAT, 0400);
	T(pf >= 0); close(pf);
	ch = (struct open_how){ .flags = O_RDWR | O_CREAT, .mode = 010777 };
	T(syscall(SYS_openat2, AT_FDCWD, "new", &ch, sizeof ch));
	ch.mode = ~0ULL;
	T(syscall(SYS_openat2, AT_FDCWD, "new", &ch, sizeof ch));
	T(access("new", F_OK));
	/* IN_DONT_FOLLOW watches the symlink itself: a change to its target is not seen */
	int w = inotify_add_watch(ino, "l", IN_ATTRIB | IN_DONT_FOLLOW);
	printf("watch on the link: %d\n", w > 0);
	chmod("f", 0600);
	struct inotify_event ev[4];
	fcntl(ino, F_SETFL, O_NONBLOCK);
	T(read(ino, ev, sizeof ev) > 0);
	int w2 = inotify_add_watch(ino, "l", IN_ATTRIB);
	printf("watch through the link: %d, another: %d\n", w2 > 0, w2 != w);
	chmod("f", 0644);
	T(read(ino, ev, sizeof ev) > 0);
	T(inotify_add_watch(ino, "f", IN_ATTRIB | IN_ONLYDIR));
	T(inotify_add_watch(ino, "l", IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW));
	return 0;
}
