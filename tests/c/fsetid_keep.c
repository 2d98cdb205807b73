/* CAP_FSETID (issue 13): a write, truncate or fallocate by root keeps a
 * file's set-user-ID and set-group-ID bits; by a user without the
 * capability it clears them (set-group-ID only with group execute).
 * Prints each file's mode after each call.  Usage: fsetid_keep DIR */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "transcript.h"

static void mode_of(const char *what, int fd)
{
	struct stat st;
	fstat(fd, &st);
	printf("%s: %04o\n", what, st.st_mode & 07777);
}

static void writes(const char *name, mode_t mode)
{
	int fd = open(name, O_RDWR);
	if (fd < 0) { printf("open %s: %s\n", name, strerrorname_np(errno)); return; }
	fchmod(fd, mode);
	T(write(fd, "x", 1)); mode_of("after write", fd);
	fchmod(fd, mode);
	T(pwrite(fd, "y", 1, 5)); mode_of("after pwrite", fd);
	fchmod(fd, mode);
	struct iovec iov = { "z", 1 };
	T(writev(fd, &iov, 1)); mode_of("after writev", fd);
	fchmod(fd, mode);
	T(ftruncate(fd, 2)); mode_of("after ftruncate", fd);
	fchmod(fd, mode);
	T(fallocate(fd, 0, 0, 4096)); mode_of("after fallocate", fd);
	fchmod(fd, mode);
	int copy = dup(fd);
	T(write(copy, "w", 1)); mode_of("after write through a dup", fd);
	close(copy);
	close(fd);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (chdir(argv[1])) return 1;
	umask(0);
	printf("-- created with 06755\n");
	int fd = open("made", O_CREAT | O_EXCL | O_WRONLY, 06755);
	T(write(fd, "x", 1)); mode_of("after write", fd);
	close(fd);
	printf("-- O_TMPFILE with 07777\n");
	fd = open(".", O_TMPFILE | O_RDWR, 07777);
	T(write(fd, "x", 1)); mode_of("after write", fd);
	close(fd);
	printf("-- an existing 04644 file\n");
	close(open("plain", O_CREAT | O_WRONLY, 0666));
	writes("plain", 04644);
	printf("-- 06755\n");
	writes("plain", 06755);
	printf("-- 02644 (no group execute: kept by anyone)\n");
	writes("plain", 02644);
	printf("-- as uid 1000\n");
	chmod("plain", 06777);
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(1000) || setuid(1000)) _exit(1);
		writes("plain", 06777);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	status("uid 1000", st);
	unlink("made");
	unlink("plain");
	return 0;
}
