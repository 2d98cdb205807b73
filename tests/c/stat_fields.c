/* stat_fields DIR: every field of stat, lstat and fstatat (followed, not
 * followed) of a file, a directory, a symlink to each and a name that is
 * not there, in DIR, one line each: what tests/test_faststat.py compares
 * between the C fast path, Python's handlers and Linux. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *how, const char *name, int r, const struct stat *st)
{
	if (r) {
		printf("%s %s: %s\n", how, name, strerror(errno));
		return;
	}
	printf("%s %s: dev %lu ino %lu mode %o nlink %lu uid %u gid %u rdev %lu size %ld blksize %ld "
	       "blocks %ld mtime %ld.%09ld ctime %ld.%09ld\n", how, name,
	       (unsigned long)st->st_dev, (unsigned long)st->st_ino, st->st_mode, (unsigned long)st->st_nlink,
	       st->st_uid, st->st_gid, (unsigned long)st->st_rdev, (long)st->st_size, (long)st->st_blksize,
	       (long)st->st_blocks, (long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
	       (long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

int main(int argc, char **argv)
{
	if (argc != 2 || chdir(argv[1])) return 2;
	int dir = open(".", O_PATH | O_DIRECTORY);
	const char *names[] = { "file", "dir", "link-file", "link-dir", "dir/inner", "absent", "file/", NULL };
	for (int i = 0; names[i]; i++) {
		struct stat st;
		show("stat", names[i], stat(names[i], &st), &st);
		show("lstat", names[i], lstat(names[i], &st), &st);
		show("fstatat", names[i], fstatat(dir, names[i], &st, 0), &st);
		show("fstatat-nofollow", names[i], fstatat(dir, names[i], &st, AT_SYMLINK_NOFOLLOW), &st);
	}
	return 0;
}
