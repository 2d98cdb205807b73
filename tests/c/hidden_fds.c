/* Every call that takes an fd, given one of the numbers the Sentry keeps
 * its own fds at (1000 and up), with the empty path or none: each must fail
 * as for a closed fd.  Prints one line per call; run natively (where the
 * numbers are closed) and in the sandbox, the output must be the same. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TRY(call) report(#call, (long)(call))

static int fd;

static void report(const char *what, long r)
{
    printf("%d %s = %ld %s\n", fd, what, r, r < 0 ? strerror(errno) : "");
}

int main(void)
{
    char buf[256];
    struct stat st;
    struct statx sx;
    for (fd = 1000; fd < 1024; fd++) {
        TRY(statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx));
        TRY(fstatat(fd, "", &st, AT_EMPTY_PATH));
        TRY(fstat(fd, &st));
        TRY(readlinkat(fd, "", buf, sizeof buf));
        TRY(fchownat(fd, "", 0, 0, AT_EMPTY_PATH));
        TRY(utimensat(fd, "", NULL, AT_EMPTY_PATH));
        TRY(syscall(SYS_utimensat, fd, NULL, NULL, 0));
        TRY(fchmod(fd, 0644));
        TRY(fchdir(fd));
        TRY(openat(fd, "x", O_RDONLY));
        TRY(openat(fd, ".", O_RDONLY));
        TRY(fgetxattr(fd, "user.x", buf, sizeof buf));
        TRY(flistxattr(fd, buf, sizeof buf));
        TRY(fcntl(fd, F_GETFL));
        TRY(fcntl(fd, F_DUPFD, 0));
        TRY(dup(fd));
        TRY(lseek(fd, 0, SEEK_SET));
        TRY(read(fd, buf, 1));
        TRY(fsync(fd));
        TRY(flock(fd, LOCK_SH | LOCK_NB));
        TRY(linkat(fd, "", AT_FDCWD, "/tmp/hidden-link", AT_EMPTY_PATH));
        TRY(syscall(SYS_execveat, fd, "", NULL, NULL, AT_EMPTY_PATH));
    }
    return 0;
}
