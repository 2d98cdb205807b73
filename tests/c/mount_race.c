/* Threads mount and unmount a tmpfs on DIR/t, and bind DIR/other there,
 * while others open, stat and list under it (tests/test_guest_mounts.py).
 * Every answer must be one a moment of the table gives: the directory
 * itself ("under"), the tmpfs (its file "tmpfs", or not yet: ENOENT) or
 * the bind ("other"); never anything else, never a crash or a hang.
 * Prints each outcome seen and "bad" lines for any other.
 * Usage: mount_race DIR [unshare] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROUNDS 300
static char t[512], probe[512], other[512];
static atomic_int done, bad, seen_under, seen_tmpfs, seen_other, seen_absent, mounts_made, readers_up;

static void *mounter(void *arg)
{
	(void)arg;
	char file[600];
	snprintf(file, sizeof file, "%s/probe", t);
	while (atomic_load(&readers_up) < 3) sched_yield();     /* they race from the first mount on */
	for (int i = 0; i < ROUNDS; i++) {
		if (i % 3 == 2) {
			if (mount(other, t, NULL, MS_BIND, NULL)) { atomic_fetch_add(&bad, 1); continue; }
		} else {
			if (mount("x", t, "tmpfs", 0, NULL)) { atomic_fetch_add(&bad, 1); continue; }
			int fd = open(file, O_WRONLY | O_CREAT, 0644);
			if (fd >= 0) { if (write(fd, "tmpfs", 5) != 5) atomic_fetch_add(&bad, 1); close(fd); }
		}
		atomic_fetch_add(&mounts_made, 1);
		sched_yield();
		if (umount2(t, i % 2 ? MNT_DETACH : 0) && umount2(t, MNT_DETACH)) atomic_fetch_add(&bad, 1);
	}
	atomic_store(&done, 1);
	return NULL;
}

static void *reader(void *arg)
{
	long kind = (long)arg;
	atomic_fetch_add(&readers_up, 1);
	while (!atomic_load(&done)) {
		char buf[16] = "";
		int fd = open(probe, O_RDONLY);
		if (fd < 0) {
			if (errno == ENOENT) atomic_fetch_add(&seen_absent, 1);
			else { printf("bad open %s\n", strerrorname_np(errno)); atomic_fetch_add(&bad, 1); }
			continue;
		}
		struct stat st;
		if (kind && fstat(fd, &st)) atomic_fetch_add(&bad, 1);
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		if (!strcmp(buf, "under")) atomic_fetch_add(&seen_under, 1);
		else if (!strcmp(buf, "tmpfs") || !strcmp(buf, "")) atomic_fetch_add(&seen_tmpfs, 1);
		else if (!strcmp(buf, "other")) atomic_fetch_add(&seen_other, 1);
		else { printf("bad read '%s'\n", buf); atomic_fetch_add(&bad, 1); }
		struct stat ls;
		if (stat(t, &ls) && errno != ENOENT) { printf("bad stat %s\n", strerrorname_np(errno)); atomic_fetch_add(&bad, 1); }
	}
	return NULL;
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) < 0) { perror(path); exit(2); }
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc < 2) return 2;
	snprintf(t, sizeof t, "%s/t", argv[1]);
	snprintf(probe, sizeof probe, "%s/t/probe", argv[1]);
	snprintf(other, sizeof other, "%s/other", argv[1]);
	if (argc > 2 && (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))) {
		perror("unshare");
		return 2;
	}
	mkdir(t, 0755);
	mkdir(other, 0755);
	put(probe, "under");
	char o[600];
	snprintf(o, sizeof o, "%s/probe", other);
	put(o, "other");
	pthread_t th[4];
	pthread_create(&th[0], NULL, mounter, NULL);
	for (long i = 1; i < 4; i++) pthread_create(&th[i], NULL, reader, (void *)(i % 2));
	for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
	int fd = open(probe, O_RDONLY);
	char buf[16] = "";
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	buf[n > 0 ? n : 0] = 0;
	printf("mounts %d bad %d last '%s'\n", atomic_load(&mounts_made), atomic_load(&bad), buf);
	printf("under %d tmpfs %d other %d absent %d\n", seen_under > 0, seen_tmpfs > 0, seen_other > 0, seen_absent > 0);
	return atomic_load(&bad) != 0;
}
