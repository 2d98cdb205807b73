/* File-system workload with a deterministic transcript: every call's result
 * or errno.  Run natively (chroot) and in sentry; the transcripts must match.
 * Usage: fileops DIR   (DIR: an empty scratch directory) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "transcript.h"

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static void list(const char *dir)
{
	DIR *d = opendir(dir);
	char *names[2000];
	int n = 0;
	struct dirent *e;
	if (!d) { printf("opendir %s: %s\n", dir, strerrorname_np(errno)); return; }
	while ((e = readdir(d)) && n < 2000) names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof *names, cmp);
	printf("ls %s (%d):", dir, n);
	for (int i = 0; i < n && i < 12; i++) printf(" %s", names[i]);
	printf("\n");
}

static void show(const char *path)
{
	struct stat st;
	if (lstat(path, &st)) { printf("lstat %s: %s\n", path, strerrorname_np(errno)); return; }
	printf("lstat %s: mode=%o nlink=%lu size=%ld\n", path, st.st_mode, (unsigned long)st.st_nlink, (long)st.st_size);
}

static void cat(const char *path)
{
	char buf[256];
	int fd = open(path, O_RDONLY);
	if (fd < 0) { printf("cat %s: %s\n", path, strerrorname_np(errno)); return; }
	long n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	printf("cat %s: %ld [%s]\n", path, n, buf);
}

static void rm_rf(const char *path)
{
	char sub[4096];
	DIR *d = opendir(path);
	struct dirent *e;
	if (!d) { unlink(path); return; }
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
			rm_rf(sub);
		}
	closedir(d);
	T(rmdir(path));
}

/* Every name of a directory exactly once, as getdents64 returns them. */
static void dents(const char *dir)
{
	char buf[8192], *names[4000];
	int n = 0, dups = 0, fd = open(dir, O_RDONLY | O_DIRECTORY);
	long got;
	while (fd >= 0 && (got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
		for (long off = 0; off < got && n < 4000; ) {
			struct { unsigned long ino; long off; unsigned short reclen; unsigned char type; char name[]; } *e = (void *)(buf + off);
			for (int i = 0; i < n; i++) dups += !strcmp(names[i], e->name);
			names[n++] = strdup(e->name);
			off += e->reclen;
		}
	close(fd);
	printf("getdents64 %s: %d names, %d twice\n", dir, n, dups);
}

static unsigned long sum(const char *path, long *size)
{
	unsigned char buf[65536];
	unsigned long s = 0;
	long n;
	int fd = open(path, O_RDONLY);
	*size = 0;
	while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0)
		for (long i = 0; i < n; i++) { s = s * 31 + buf[i]; (*size)++; }
	close(fd);
	return s;
}

/* Changes to entries that existed before the workload (DIR/pre, made by the
 * test): on an overlay they live in the lower layer until copied up. */
static void preexisting(const char *top)
{
	char buf[256];
	struct stat st, st2;
	long size;
	if (chdir(top) || access("pre", F_OK)) return;
	printf("-- pre-existing entries\n");
	list("pre"); dents("pre"); dents("pre/many"); cat("pre/file");
	int fd = open("pre/file", O_WRONLY | O_APPEND); T(fd >= 0); T(write(fd, "more\n", 5));
	fstat(fd, &st); stat("pre/file", &st2);
	printf("same file while open: %d\n", st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
	int fd2 = open("pre/file", O_RDWR); fstat(fd2, &st2);
	printf("opened again, same file: %d\n", st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
	T(pwrite(fd2, "L", 1, 0)); close(fd2); close(fd);
	fstat(fd = open("pre/file", O_RDONLY), &st2); close(fd);
	printf("reopened, same file: %d\n", st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
	cat("pre/file"); show("pre/file");
	fd = open("pre/dir/a", O_WRONLY | O_TRUNC); T(write(fd, "new", 3)); close(fd); cat("pre/dir/a");
	T(truncate("pre/dir/b", 2)); show("pre/dir/b"); cat("pre/dir/b");
	T(chmod("pre/dir/sub/c", 0600)); show("pre/dir/sub/c");
	T(chown("pre/dir/sub/c", 1, 2)); stat("pre/dir/sub/c", &st); printf("uid=%d gid=%d\n", st.st_uid, st.st_gid);
	T(chown("pre/dir/sub/c", 0, 0));     /* the guest holds no CAP_DAC_OVERRIDE to read it otherwise */
	T(chmod("pre/dir", 0700)); show("pre/dir"); show("pre/dir/sub");
	struct timeval tv[2] = { { 1000000000, 0 }, { 1100000000, 0 } };
	T(utimes("pre/ro", tv)); stat("pre/ro", &st); printf("mtime=%ld mode=%o\n", (long)st.st_mtime, st.st_mode);
	T(utimes("pre/suid", tv)); show("pre/suid");
	T(getxattr("pre/xattr", "user.k", buf, sizeof buf)); T(setxattr("pre/xattr", "user.k2", "v2", 2, 0));
	T(listxattr("pre/xattr", buf, sizeof buf)); T(removexattr("pre/xattr", "user.k")); T(listxattr("pre/xattr", buf, sizeof buf));
	T(link("pre/dir/a", "pre/a-link")); show("pre/dir/a"); show("pre/a-link");
	fd = open("pre/a-link", O_WRONLY | O_APPEND); T(write(fd, "+linked", 7)); close(fd); cat("pre/dir/a");
	T(link("pre/dir/b", "pre/dir/sub/b-link")); show("pre/dir/b");
	T(rename("pre/file", "pre/file2")); show("pre/file"); cat("pre/file2");
	T(rename("pre/mv", "pre/moved")); list("pre/moved"); list("pre/moved/sub"); cat("pre/moved/sub/x"); show("pre/mv");
	T(rename("pre/moved", "pre/dir/sub/deeper")); cat("pre/dir/sub/deeper/sub/x");
	T(rename("pre/dir/sub/c", "pre/ro")); cat("pre/ro"); show("pre/ro");
	T(renameat2(AT_FDCWD, "pre/dir/b", AT_FDCWD, "pre/link", RENAME_EXCHANGE)); show("pre/dir/b"); show("pre/link");
	T(rmdir("pre/dir/sub")); T(rmdir("pre/empty")); T(mkdir("pre/empty", 0755)); list("pre/empty");
	T(rename("pre/file2", "pre/dir")); T(rename("pre/gone", "pre/dir")); T(rename("pre/dir/sub", "pre/empty"));
	rm_rf("pre/gone"); show("pre/gone"); T(mkdir("pre/gone", 0755)); list("pre/gone"); dents("pre/gone");
	T(unlink("pre/many/007")); T(unlink("pre/many/007")); dents("pre/many");
	for (int i = 100; i < 150; i++) { snprintf(buf, sizeof buf, "pre/many/n%03d", i); close(open(buf, O_CREAT | O_WRONLY, 0644)); }
	dents("pre/many"); list("pre/many");
	T(open("pre/.wh.link", O_CREAT | O_WRONLY, 0644) >= 0); T(open("pre/.wh..wh..opq", O_CREAT | O_WRONLY, 0644) >= 0);
	T(mkdir("pre/dir/.wh.sub", 0755)); list("pre"); list("pre/dir"); show("pre/link");
	unsigned long s = sum("pre/big", &size); printf("big: %ld bytes, sum %lx\n", size, s);
	fd = open("pre/big", O_RDWR); T(pwrite(fd, "end", 3, size)); close(fd);
	s = sum("pre/big", &size); printf("big: %ld bytes, sum %lx\n", size, s);
	fd = open("pre/sparse", O_RDWR); T(pwrite(fd, "x", 1, 0));
	T(lseek(fd, 0, SEEK_HOLE)); T(lseek(fd, 4096, SEEK_DATA)); T(lseek(fd, 0, SEEK_END)); close(fd);
	int dfd = open("pre/dir2", O_RDONLY | O_DIRECTORY); T(dfd >= 0);
	T(mkdirat(dfd, "new", 0755)); T(openat(dfd, "x", O_RDONLY) >= 0); T(openat(dfd, "y", O_CREAT | O_WRONLY, 0600) >= 0);
	T(fchdir(dfd)); T(unlink("x")); T(mkdir("deep", 0700)); T(chdir("deep")); T(open("f", O_CREAT | O_WRONLY, 0644) >= 0);
	T(getcwd(buf, sizeof buf) != NULL); printf("cwd ends with /pre/dir2/deep: %d\n", strlen(buf) > 14 && !strcmp(buf + strlen(buf) - 14, "/pre/dir2/deep"));
	T(chdir(top)); list("pre/dir2"); list("pre/dir2/deep"); close(dfd);
	fd = open("pre/dir3", O_RDONLY | O_DIRECTORY);
	T(unlinkat(fd, "keep", 0)); T(unlinkat(fd, "keep", 0)); list("pre/dir3"); close(fd);
	fd = open("pre", O_TMPFILE | O_RDWR, 0600); T(fd >= 0); T(write(fd, "t", 1)); close(fd);
	T(symlink("dir2", "pre/newlink")); T(open("pre/newlink/y", O_RDONLY) >= 0);
	T(unlink("pre/link")); T(symlink("nowhere", "pre/link")); show("pre/link");
	T(access("pre/ro", W_OK)); T(access("pre/big", W_OK)); T(faccessat(AT_FDCWD, "pre/ro", W_OK, AT_EACCESS));
	list("pre"); dents("pre");

	/* absolute paths: on an overlay, the native fast path's share */
	char a[4096];
	snprintf(a, sizeof a, "%s/pre/abs/f1", top); T(stat(a, &st)); printf("size=%ld\n", (long)st.st_size);
	fd = open(a, O_RDONLY); T(read(fd, buf, sizeof buf)); close(fd);
	snprintf(a, sizeof a, "%s/pre/abs2/deep/f4", top); T(stat(a, &st)); T(access(a, R_OK));
	snprintf(a, sizeof a, "%s/pre/abs/missing", top); T(stat(a, &st)); T(open(a, O_RDONLY));
	snprintf(a, sizeof a, "%s/pre/abs/f1/x", top); T(stat(a, &st)); T(access(a, F_OK));
	snprintf(a, sizeof a, "%s/pre/abs/f2", top); T(unlink(a)); T(stat(a, &st)); T(open(a, O_RDONLY));
	snprintf(a, sizeof a, "%s/pre/abs/sub/f3", top); T(stat(a, &st)); printf("size=%ld\n", (long)st.st_size);
	snprintf(a, sizeof a, "%s/pre/abs/f1", top); T(lstat(a, &st)); printf("size=%ld mode=%o\n", (long)st.st_size, st.st_mode);
	fd = open(a, O_RDONLY | O_CREAT, 0600); T(fd >= 0); T(read(fd, buf, sizeof buf)); close(fd);
	T(access(a, W_OK)); T(access(a, X_OK));
	fd = open(a, O_WRONLY | O_APPEND); T(write(fd, "+", 1)); close(fd); T(stat(a, &st)); printf("size=%ld\n", (long)st.st_size);
	snprintf(a, sizeof a, "%s/pre/abs/lnk", top); T(lstat(a, &st)); printf("mode=%o\n", st.st_mode);
	T(stat(a, &st)); printf("size=%ld\n", (long)st.st_size); T(open(a, O_RDONLY | O_NOFOLLOW));
	snprintf(a, sizeof a, "%s/pre/abs/sub", top); T(stat(a, &st)); printf("mode=%o\n", st.st_mode);
	snprintf(a, sizeof a, "%s/pre/abs/sub/f3", top); fd = open(a, O_RDWR | O_TRUNC); T(write(fd, "3", 1)); close(fd);
	T(stat(a, &st)); printf("size=%ld\n", (long)st.st_size);
}

int main(int argc, char **argv)
{
	char buf[256];
	if (argc < 2 || chdir(argv[1])) return 2;
	umask(022);
	T(mkdir("d", 0777)); T(mkdir("d", 0777)); T(mkdir("d/x/y", 0777));
	T(open("d/f", O_CREAT | O_WRONLY | O_EXCL, 0666)); show("d/f");
	T(open("d/f", O_CREAT | O_EXCL | O_WRONLY, 0600));
	int fd = open("d/f", O_WRONLY | O_APPEND);
	T(write(fd, "hello\n", 6)); T(write(fd, "world\n", 6)); close(fd);
	fd = open("d/f", O_RDONLY); T(read(fd, buf, sizeof buf)); close(fd);
	T(truncate("d/f", 3)); show("d/f"); T(truncate("d/nonexistent", 0));
	T(link("d/f", "d/hard")); show("d/f"); T(link("d", "d2"));
	T(symlink("f", "d/sym")); T(symlink("../d/f", "d/sym2")); T(symlink("nowhere", "d/dangling"));
	show("d/sym"); T(readlink("d/sym", buf, sizeof buf)); T(readlink("d/f", buf, sizeof buf));
	T(open("d/dangling", O_RDONLY)); T(open("d/sym/", O_RDONLY)); T(open("d/f/", O_RDONLY));
	T(open("d/dangling", O_CREAT | O_WRONLY, 0644)); show("nowhere"); show("d/nowhere");
	T(open("d/sym", O_RDONLY | O_NOFOLLOW)); T(open("d/sym", O_PATH | O_NOFOLLOW) >= 0);
	fd = open("d/sym", O_PATH | O_NOFOLLOW); T(readlinkat(fd, "", buf, sizeof buf)); close(fd);
	fd = open("d", O_RDONLY); T(readlinkat(fd, "", buf, sizeof buf)); close(fd);
	T(chmod("d/f", 0640)); show("d/f"); T(chmod("d/sym", 0600)); show("d/f");
	T(access("d/f", R_OK)); T(access("d/f", X_OK)); T(access("d/missing", F_OK));
	T(faccessat(AT_FDCWD, "d/sym", F_OK, AT_SYMLINK_NOFOLLOW));
	struct timeval tv[2] = { { 1000000000, 0 }, { 1200000000, 500000 } };
	T(utimes("d/f", tv));
	struct stat st; stat("d/f", &st);
	printf("mtime=%ld atime=%ld\n", (long)st.st_mtime, (long)st.st_atime);
	struct timespec ts[2] = { { 5, 0 }, { 0, UTIME_OMIT } };
	T(utimensat(AT_FDCWD, "d/sym", ts, AT_SYMLINK_NOFOLLOW));
	T(rename("d/f", "d/g")); show("d/f"); show("d/g"); T(rename("d/missing", "d/h"));
	T(mkdir("e", 0755)); T(rename("e", "d/x")); T(rename("d", "d/x/inside"));
	T(renameat2(AT_FDCWD, "d/g", AT_FDCWD, "d/hard", RENAME_NOREPLACE));
	T(renameat2(AT_FDCWD, "d/g", AT_FDCWD, "d/hard", RENAME_EXCHANGE));
	T(unlink("d/g")); T(unlink("d/g")); T(unlink("d/x")); T(rmdir("d/x")); T(rmdir("d"));
	T(rmdir("d/x/.")); T(unlinkat(AT_FDCWD, "d/x", AT_REMOVEDIR));
	int dfd = open("d", O_RDONLY | O_DIRECTORY);
	T(openat(dfd, "hard", O_RDONLY) >= 0); T(mkdirat(dfd, "sub", 0700)); T(fchmodat(dfd, "sub", 0750, 0));
	T(fstatat(dfd, "sub", &st, 0)); printf("sub mode=%o\n", st.st_mode);
	T(fchdir(dfd)); T(getcwd(buf, sizeof buf) != NULL); printf("cwd ends with /d: %d\n", strlen(buf) >= 2 && !strcmp(buf + strlen(buf) - 2, "/d"));
	T(chdir("sub")); T(chdir("..")); T(chdir("../d"));
	T(getcwd(buf, 2) != NULL);
	T(chdir("hard")); T(chdir("missing"));
	for (int i = 0; i < 300; i++) { snprintf(buf, sizeof buf, "many/%03d", i); if (i == 0) mkdir("many", 0755); close(open(buf, O_CREAT | O_WRONLY, 0644)); }
	list("many"); list(".");
	T(setxattr("hard", "user.k", "v1", 2, 0)); T(getxattr("hard", "user.k", buf, sizeof buf));
	T(getxattr("hard", "user.k", buf, 0)); T(getxattr("hard", "user.none", buf, sizeof buf));
	T(listxattr("hard", buf, sizeof buf)); T(removexattr("hard", "user.k")); T(removexattr("hard", "user.k"));
	{	/* bad input: the kernel's errnos, and no huge allocation anywhere */
		char longname[300] = "user."; memset(longname + 5, 'a', sizeof longname - 6);
		T(setxattr("hard", longname, "v", 1, 0)); T(getxattr("hard", longname, buf, sizeof buf));
		T(setxattr("hard", "", "v", 1, 0)); T(removexattr("hard", ""));
		T(setxattr("hard", "user.k", "v", (size_t)1 << 40, 0)); T(setxattr("hard", "user.k", "v", 65537, 0));
		T(setxattr("hard", "user.k", (void *)1, 100, 0));
		int xfd = open("hard", O_RDONLY);
		T(fsetxattr(xfd, longname, "v", 1, 0)); T(fsetxattr(xfd, "user.k", "v", (size_t)1 << 40, 0));
		close(xfd);
	}
	fd = open(".", O_TMPFILE | O_RDWR, 0600); T(fd >= 0); T(write(fd, "tmp", 3));
	snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
	close(fd);
	fd = open("big", O_CREAT | O_RDWR, 0644); T(ftruncate(fd, 1 << 20)); T(lseek(fd, 4096, SEEK_DATA));
	T(pwrite(fd, "end", 3, (1 << 20) - 3));
	char *m = mmap(0, 1 << 20, PROT_READ, MAP_SHARED, fd, 0); T(m != MAP_FAILED); T(memcmp(m + (1 << 20) - 3, "end", 3));
	munmap(m, 1 << 20);
	T(flock(fd, LOCK_EX)); struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET }; T(fcntl(fd, F_SETLK, &fl));
	close(fd);
	int in = inotify_init1(0); T(in >= 0); T(inotify_add_watch(in, ".", IN_CREATE) > 0);
	close(open("watched", O_CREAT | O_WRONLY, 0644));
	char ev[512]; long n = read(in, ev, sizeof ev); struct inotify_event *ie = (void *)ev;
	printf("inotify: %ld bytes, mask=%x name=%s\n", n > 0 ? 1L : n, ie->mask, ie->len ? ie->name : "");
	T(inotify_add_watch(in, "missing", IN_CREATE));
	struct statfs sf; T(statfs(".", &sf)); T(statfs("missing", &sf));
	T(mknod("fifo", S_IFIFO | 0644, 0)); show("fifo");
	T(open("", O_RDONLY)); T(mkdir("", 0755)); T(stat("", &st)); T(chdir(""));
	char longname[300]; memset(longname, 'a', 299); longname[299] = 0; T(open(longname, O_RDONLY));
	T(lchown("sub", 0, 0)); T(chown("missing", 0, 0));

	/* absolute paths: the native fast path's share of the work */
	char a[4096], b2[4096];
	snprintf(a, sizeof a, "%s/d/hard", argv[1]);
	T(stat(a, &st)); printf("size=%ld mode=%o\n", (long)st.st_size, st.st_mode);
	T(lstat(a, &st)); T(access(a, R_OK)); T(access(a, W_OK)); T(access(a, X_OK)); T(access(a, 8));
	T(fstatat(AT_FDCWD, a, &st, AT_SYMLINK_NOFOLLOW)); T(fstatat(AT_FDCWD, a, &st, 0x4000));
	struct statx sx; T(statx(AT_FDCWD, a, 0, STATX_SIZE, &sx)); printf("statx size=%llu\n", (unsigned long long)sx.stx_size);
	fd = open(a, O_RDONLY); T(fd >= 0); T(read(fd, buf, 2)); close(fd);
	fd = open(a, O_RDWR | O_TRUNC); T(fd >= 0); close(fd); T(stat(a, &st)); printf("size=%ld\n", (long)st.st_size);
	snprintf(b2, sizeof b2, "%s/d/sym", argv[1]); T(lstat(b2, &st)); printf("mode=%o\n", st.st_mode);
	T(stat(b2, &st)); T(open(b2, O_RDONLY | O_NOFOLLOW)); T(open(b2, O_RDONLY) >= 0);
	snprintf(b2, sizeof b2, "%s/d/missing/x", argv[1]); T(stat(b2, &st)); T(open(b2, O_RDONLY)); T(access(b2, F_OK));
	snprintf(b2, sizeof b2, "%s/d/hard/x", argv[1]); T(stat(b2, &st)); T(open(b2, O_RDONLY));
	snprintf(b2, sizeof b2, "%s/d", argv[1]); T(open(b2, O_RDONLY | O_DIRECTORY) >= 0); T(open(a, O_RDONLY | O_DIRECTORY));
	fd = open(a, O_CREAT | O_WRONLY | O_APPEND, 0600); T(fd >= 0); T(write(fd, "more", 4)); close(fd);
	T(stat(a, &st)); printf("size=%ld mode=%o\n", (long)st.st_size, st.st_mode);
	snprintf(b2, sizeof b2, "%s/d", argv[1]); T(open(b2, O_CREAT | O_RDONLY, 0600)); T(open(b2, O_CREAT | O_WRONLY, 0600));
	T(open("/", O_RDONLY | O_DIRECTORY) >= 0); T(stat("/", &st)); T(access("/", X_OK));
	fd = open("/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0666); T(fd >= 0); T(write(fd, "x", 1)); close(fd);
	T(access("/dev/null", W_OK)); T(stat("/dev/zero", &st)); printf("zero is chr: %d\n", S_ISCHR(st.st_mode));
	T(execve(a, argv, 0)); T(execve(b2, argv, 0));
	snprintf(b2, sizeof b2, "%s/d/nothing", argv[1]); T(execve(b2, argv, 0));
	preexisting(argv[1]);
	return 0;
}
