/* Opens, listings, creations and access checks a capability-holding root
 * makes past the mode bits (and a plain user does not): one line per
 * operation, its result or its errno, for tests/test_dac.py to compare
 * with Linux.  argv[1]: a fresh directory to work in. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void result(const char *what, long r)
{
	if (r < 0) printf("%s: %s\n", what, strerrorname_np(errno));
	else printf("%s: ok\n", what);
}

static void readall(const char *what, const char *path, int flags)
{
	int fd = open(path, flags);
	if (fd < 0) { result(what, -1); return; }
	char buf[256];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n < 0) { result(what, -1); close(fd); return; }
	buf[n] = 0;
	for (char *p = buf; *p; p++) if (*p == '\n') *p = '|';
	printf("%s: read \"%s\" cloexec=%d\n", what, buf, !!(fcntl(fd, F_GETFD) & FD_CLOEXEC));
	close(fd);
}

static void writeto(const char *what, const char *path, int flags, const char *text)
{
	int fd = open(path, flags, 0640);
	if (fd < 0) { result(what, -1); return; }
	result(what, write(fd, text, strlen(text)));
	close(fd);
}

static void access_all(const char *what, const char *path)
{
	static const struct { int mode; const char *name; } m[] = { {R_OK, "R"}, {W_OK, "W"}, {X_OK, "X"} };
	printf("%s:", what);
	for (int i = 0; i < 3; i++) {
		long a = access(path, m[i].mode);
		int ea = errno;
		long b = syscall(SYS_faccessat2, AT_FDCWD, path, m[i].mode, AT_EACCESS);
		int eb = errno;
		long c = syscall(SYS_faccessat, AT_FDCWD, path, m[i].mode);
		int ec = errno;
		printf(" %s=%s/%s/%s", m[i].name, a ? strerrorname_np(ea) : "ok", b ? strerrorname_np(eb) : "ok",
		       c ? strerrorname_np(ec) : "ok");
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	umask(022);
	if (mkdir(argv[1], 0755) || chdir(argv[1])) { perror(argv[1]); return 2; }
	writeto("make f", "f", O_WRONLY | O_CREAT | O_TRUNC, "hello\n");
	chmod("f", 0);
	readall("cat 000", "f", O_RDONLY);
	readall("cat 000 cloexec", "f", O_RDONLY | O_CLOEXEC);
	writeto("append 000", "f", O_WRONLY | O_APPEND, "more\n");
	readall("rdwr 000", "f", O_RDWR);
	writeto("creat existing 000", "f", O_WRONLY | O_CREAT | O_APPEND, "again\n");
	result("O_EXCL existing", open("f", O_WRONLY | O_CREAT | O_EXCL, 0600));
	result("O_DIRECTORY on file", open("f", O_RDONLY | O_DIRECTORY));
	readall("cat after", "f", O_RDONLY);
	writeto("trunc 000", "f", O_WRONLY | O_TRUNC, "");
	struct stat st;
	if (stat("f", &st) == 0) printf("size after trunc: %ld mode %o\n", (long)st.st_size, st.st_mode & 07777);
	access_all("access f 000", "f");
	chmod("f", 0700);
	access_all("access f 700", "f");

	mkdir("d", 0755);
	writeto("make d/in", "d/in", O_WRONLY | O_CREAT, "inside\n");
	chmod("d", 0);
	int dfd = open("d", O_RDONLY | O_DIRECTORY);
	if (dfd < 0) result("list d 000", -1);
	else {
		DIR *dir = fdopendir(dfd);
		struct dirent *e;
		int n = 0;
		while ((e = readdir(dir))) if (e->d_name[0] != '.') n++;
		printf("list d 000: %d entries\n", n);
		closedir(dir);
	}
	readall("cat d/in under 000", "d/in", O_RDONLY);
	writeto("append d/in under 000", "d/in", O_WRONLY | O_APPEND, "x\n");
	int p = open("d/in", O_PATH);
	result("O_PATH d/in under 000", p);
	if (p >= 0) close(p);
	access_all("access d 000", "d");
	access_all("access d/in", "d/in");
	chmod("d", 0755);

	mkdir("ro", 0555);
	chmod("ro", 0555);
	writeto("create in 555", "ro/new", O_WRONLY | O_CREAT | O_EXCL, "new\n");
	if (stat("ro/new", &st) == 0) printf("ro/new: mode %o uid %d\n", st.st_mode & 07777, st.st_uid);
	result("creat() in 555", creat("ro/new2", 0600));
	result("O_TMPFILE in 555", open("ro", O_TMPFILE | O_RDWR, 0600));
	access_all("access ro", "ro");
	chmod("ro", 0755);
	return 0;
}
